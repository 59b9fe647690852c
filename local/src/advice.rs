//! What to do about a failed execution, as `docs/errors.md` says it: the command line prints
//! the same advice as the reference, read from it when `lakestar` is built (one text, not two).

const ERRORS: &str = include_str!("../../docs/errors.md");

/// The reference's "What to do" for `error_type`, with the commands of `home` filled in.
pub fn what_to_do(error_type: &str, run: &str, home_flag: &str) -> String {
    let redrive = format!("`lakestar redrive {run}{home_flag}`");
    let from_reference = ERRORS
        .split("\n## `")
        .find_map(|section| section.strip_prefix(error_type).and_then(|rest| rest.strip_prefix("`\n")))
        .and_then(|section| section.split("What to do: ").nth(1))
        .map(|text| text.split("\n\n").next().unwrap_or(text).trim().replace('\n', " "));
    let text = match (from_reference, error_type) {
        (Some(text), _) => text,
        (None, "InjectedFault" | "Interrupted" | "Aborted" | "States.Timeout") => "re-drive the execution.".to_string(),
        (None, kind) if kind.starts_with("Lambda.") => "re-drive the execution.".to_string(),
        (None, _) => "see docs/errors.md.".to_string(),
    };
    // The reference speaks of re-driving in general; offline that is one command.
    text.replace("re-drive the execution", &format!("re-drive: {redrive}"))
        .replace("then re-drive", &format!("then {redrive}"))
        .replace("and re-drive", &format!("and {redrive}"))
        .replace("`lakestar reprocess <run>` offline", &format!("`lakestar reprocess {run}{home_flag}`"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_advice_is_the_reference_s_with_the_commands_filled_in() {
        let advice = what_to_do("PiiLeak", "people-1", " --home h");
        assert!(advice.starts_with("add `pii = { method = … }` to the column"), "{advice}");
        assert!(advice.ends_with("then `lakestar redrive people-1 --home h`."), "{advice}");
        assert!(what_to_do("S3Unavailable", "r", "").contains("`lakestar redrive r`"));
        assert!(what_to_do("Interrupted", "r", "").contains("`lakestar redrive r`"));
        for error_type in lakestar::Error::TYPES {
            assert!(!what_to_do(error_type, "r", "").contains("docs/errors.md"), "{error_type} has advice");
        }
    }
}
