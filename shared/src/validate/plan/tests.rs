//! Column plans and rules on small batches: standardising, typing, checks and their reasons.

use super::*;
use crate::contract::Contract;

fn plan(columns: &str, rules: &str) -> DatasetPlan {
    let text = format!(
        "[datasets.t]\nmatch = [\"landing/**\"]\n[datasets.t.table]\nname = \"dim_t\"\nkind = \"dimension\"\nnatural_key = [\"id\"]\n[[datasets.t.columns]]\nname = \"id\"\n{columns}\n{rules}"
    );
    let contract = Contract::parse("t.toml", &text).unwrap_or_else(|error| panic!("{error}"));
    DatasetPlan::new(&contract.datasets[0]).unwrap_or_else(|error| panic!("{error}"))
}

fn run(plan: &DatasetPlan, rows: &[&[Option<&str>]]) -> (Checked, Reasons) {
    let width = plan.columns.len();
    let arrays: Vec<StringArray> =
        (0..width).map(|column| rows.iter().map(|row| row[column]).collect::<StringArray>()).collect();
    let inputs: Vec<Option<&StringArray>> = arrays.iter().map(Some).collect();
    let mut reasons = Reasons::new(rows.len());
    let checked = plan.check(&inputs, rows.len(), &mut reasons);
    (checked, reasons)
}

#[test]
fn standardisation_trims_nulls_empties_and_applies_case() {
    let plan = plan(
        "[[datasets.t.columns]]\nname = \"code\"\ncase = \"upper\"\nchecks = { allowed = [\"AB\", \"ÉCOLE\"] }\n[[datasets.t.columns]]\nname = \"name\"\ncase = \"title\"",
        "",
    );
    let (checked, reasons) = run(
        &plan,
        &[
            &[Some("1"), Some("  ab "), Some("o'brien-smith")],
            &[Some("2"), Some("école"), Some("   ")],
            &[Some("3"), Some("cd"), None],
        ],
    );
    let codes = checked.columns[1].as_any().downcast_ref::<StringArray>().expect("text");
    assert_eq!(codes.value(0), "AB");
    assert_eq!(codes.value(1), "ÉCOLE", "non-ASCII upper-cased");
    let names = checked.columns[2].as_any().downcast_ref::<StringArray>().expect("text");
    assert_eq!(names.value(0), "O'Brien-Smith");
    assert!(names.is_null(1), "blank is null");
    assert_eq!(checked.nulls, vec![0, 0, 2]);
    assert!(reasons.is_valid(0) && reasons.is_valid(1));
    assert_eq!(reasons.get(2), "code:allowed");
}

#[test]
fn lengths_count_characters_and_long_strings_pass_through() {
    let plan = plan(
        "[[datasets.t.columns]]\nname = \"note\"\nchecks = { min_length = 2, max_length = 5 }\n[[datasets.t.columns]]\nname = \"body\"",
        "",
    );
    let long = "x".repeat(1_000_000);
    let (checked, reasons) = run(
        &plan,
        &[&[Some("1"), Some("ééééé"), Some(&long)], &[Some("2"), Some("é"), None], &[Some("3"), Some("ab😀cdé"), None]],
    );
    assert!(reasons.is_valid(0), "five characters, ten bytes: {}", reasons.get(0));
    assert_eq!(reasons.get(1), "note:min_length(2)");
    assert_eq!(reasons.get(2), "note:max_length(5)");
    let bodies = checked.columns[2].as_any().downcast_ref::<StringArray>().expect("text");
    assert_eq!(bodies.value(0).len(), 1_000_000);
}

#[test]
fn every_reason_of_a_row_is_kept_in_column_order_then_rules() {
    let plan = plan(
        "[[datasets.t.columns]]\nname = \"email\"\nrequired = true\nchecks = { email = true, regex = \".*@example\\\\.com\" }\n[[datasets.t.columns]]\nname = \"qty\"\ntype = \"integer\"\nchecks = { min = 1, max = 10 }\n[[datasets.t.columns]]\nname = \"cap\"\ntype = \"integer\"",
        "[[datasets.t.rules]]\nname = \"qty_within_cap\"\ncheck = \"qty <= cap\"\n[[datasets.t.rules]]\nname = \"qty_not_seven\"\ncheck = \"qty != 7\"",
    );
    let (_, reasons) = run(
        &plan,
        &[
            &[Some("1"), Some("bad"), Some("0"), Some("5")],
            &[Some("2"), None, Some("11"), Some("3")],
            &[Some("3"), Some("a@example.com"), Some("7"), None],
            &[Some("4"), Some("a@example.org"), Some("x"), Some("3")],
            &[Some("5"), Some("b@example.com"), Some("2"), Some("3")],
        ],
    );
    assert_eq!(reasons.get(0), "email:format; email:regex; qty:min(1)");
    assert_eq!(reasons.get(1), "email:required; qty:max(10); qty_within_cap");
    assert_eq!(reasons.get(2), "qty_not_seven", "a null cap lets qty_within_cap pass");
    assert_eq!(reasons.get(3), "email:regex; qty:type(integer)");
    assert!(reasons.is_valid(4));
}

#[test]
fn date_bounds_are_iso_whatever_the_source_format() {
    let plan = plan(
        "[[datasets.t.columns]]\nname = \"born\"\ntype = \"date\"\nformat = \"%d/%m/%Y\"\nchecks = { min = \"1900-01-01\", max = \"2024-12-31\" }",
        "",
    );
    let (_, reasons) = run(
        &plan,
        &[&[Some("1"), Some("31/12/1899")], &[Some("2"), Some("01/01/1900")], &[Some("3"), Some("1900-01-01")]],
    );
    assert_eq!(reasons.get(0), "born:min(1900-01-01)");
    assert!(reasons.is_valid(1));
    assert_eq!(reasons.get(2), "born:type(date %d/%m/%Y)", "the format expected");
}

#[test]
fn a_bad_time_zone_or_literal_is_a_contract_error() {
    let text = "[datasets.t]\nmatch = [\"landing/**\"]\n[datasets.t.table]\nname = \"dim_t\"\nkind = \"dimension\"\nnatural_key = [\"id\"]\n[[datasets.t.columns]]\nname = \"id\"\n[[datasets.t.columns]]\nname = \"at\"\ntype = \"timestamp\"\ntimezone = \"Mars/Base\"\n[[datasets.t.columns]]\nname = \"n\"\ntype = \"integer\"\n[[datasets.t.rules]]\nname = \"r\"\ncheck = \"n > 'ten'\"\n";
    let error = Contract::parse("t.toml", text).expect_err("invalid");
    let shown = error.to_string();
    assert!(shown.contains("(at).timezone: unknown time zone"), "{shown}");
    assert!(shown.contains("`ten` is not a value of `n`'s type"), "{shown}");
}
