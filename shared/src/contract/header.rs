//! How source headers are compared with contract columns, and how free-form headers become
//! column names.

/// The form in which headers and aliases are compared: lower case, letters and digits only,
/// so `Customer ID`, `customer_id` and `CUSTOMER-ID` are all `customerid`.
pub fn normalize_header(header: &str) -> String {
    header.chars().filter(|c| c.is_alphanumeric()).flat_map(char::to_lowercase).collect()
}

/// A header turned into a lower-case identifier (`Loyalty Tier (new)` → `loyalty_tier_new`),
/// for columns the contract does not know. Empty when nothing usable is left.
pub fn sanitize_identifier(header: &str) -> String {
    let mut out = String::with_capacity(header.len());
    for c in header.trim().chars().flat_map(char::to_lowercase) {
        if c.is_ascii_alphanumeric() {
            out.push(c);
        } else if !out.is_empty() && !out.ends_with('_') {
            out.push('_');
        }
    }
    while out.ends_with('_') {
        out.pop();
    }
    if out.starts_with(|c: char| c.is_ascii_digit()) {
        out.insert_str(0, "c_");
    }
    out.truncate(63);
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn headers_compare_without_case_space_or_punctuation() {
        assert_eq!(normalize_header("Customer ID"), "customerid");
        assert_eq!(normalize_header(" customer_id "), "customerid");
        assert_eq!(normalize_header("CUSTOMER-ID"), "customerid");
        assert_eq!(normalize_header("Prénom"), "prénom");
        assert_eq!(normalize_header("--"), "");
    }

    #[test]
    fn free_headers_become_identifiers() {
        assert_eq!(sanitize_identifier("Loyalty Tier (new)"), "loyalty_tier_new");
        assert_eq!(sanitize_identifier("2nd line"), "c_2nd_line");
        assert_eq!(sanitize_identifier("  "), "");
        assert_eq!(sanitize_identifier("a__b"), "a_b");
    }
}
