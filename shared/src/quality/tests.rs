//! Each rule type on a small run: passing, failing, with a threshold, with `where`; the
//! evaluator driven as validate drives it (count, settle, judge, keep, measure, finish).

use arrow::array::{BooleanArray, StringArray};

use super::*;
use crate::contract::Contract;
use crate::validate::DatasetPlan;

const COLUMNS: [&str; 5] = ["id", "country", "amount", "placed", "note"];

fn contract(dqdl: &str, warn: &str) -> Contract {
    let mut text = String::from(
        r#"
[datasets.orders]
match = ["landing/orders/*.csv"]

[datasets.orders.table]
name = "fact_order"
kind = "fact"
natural_key = ["id"]

[[datasets.orders.columns]]
name = "id"
type = "integer"

[[datasets.orders.columns]]
name = "country"

[[datasets.orders.columns]]
name = "amount"
type = "decimal(10,2)"

[[datasets.orders.columns]]
name = "placed"
type = "timestamp"

[[datasets.orders.columns]]
name = "note"

[datasets.other]
match = ["landing/other/*.csv"]

[datasets.other.table]
name = "dim_other"
kind = "dimension"
natural_key = ["id"]

[[datasets.other.columns]]
name = "id"
type = "integer"

[[datasets.other.columns]]
name = "country"

[datasets.orders.quality]
max_reject_ratio = 1.0
"#,
    );
    if !dqdl.is_empty() {
        text.push_str(&format!("dqdl = '''\n{dqdl}\n'''\n"));
    }
    if !warn.is_empty() {
        text.push_str(&format!("dqdl_warn = '''\n{warn}\n'''\n"));
    }
    Contract::parse("pipeline.toml", &text).unwrap_or_else(|error| panic!("{dqdl}: {error}"))
}

/// Rows of (id, country, amount, placed, note); `""` is missing.
const ROWS: [[&str; 5]; 6] = [
    ["1", "UK", "10.00", "2024-06-01T10:00:00Z", "a"],
    ["2", "UK", "20.50", "2024-06-01T11:00:00Z", "bb"],
    ["3", "US", "5.25", "2024-05-01T00:00:00Z", ""],
    ["4", "FR", "100.00", "2024-06-02T00:00:00Z", "dddd"],
    ["5", "", "", "", "e"],
    ["6", "US", "7.00", "2024-06-01T23:00:00Z", "ff"],
];

/// The run's time: DataFreshness and now() measure from it.
fn now() -> chrono::DateTime<chrono::Utc> {
    "2024-06-02T12:00:00Z".parse().expect("a time")
}

thread_local! {
    /// The previous run's kept rows the next evaluation sees.
    static PREVIOUS: std::cell::Cell<Option<u64>> = const { std::cell::Cell::new(None) };
    /// The keys dataset `other` holds for the next evaluation's ReferentialIntegrity rules,
    /// by its columns (parts apart by the unit separator).
    static OTHER: std::cell::RefCell<Vec<(Vec<&'static str>, Vec<String>)>> = const { std::cell::RefCell::new(Vec::new()) };
}

struct Evaluated {
    /// Each row's reasons from the rules.
    reasons: Vec<String>,
    outcomes: Vec<RuleOutcome>,
}

fn evaluate_rows(dqdl: &str, warn: &str, rows: &[[&str; 5]]) -> Evaluated {
    let contract = contract(dqdl, warn);
    let dataset = contract.dataset("orders").expect("orders");
    let plan = DatasetPlan::new(dataset).expect("a plan");
    let mut evaluator = Evaluator::new(Rules::of(dataset, now()).expect("rules"));
    for reference in evaluator.rules().references() {
        let keys = OTHER.with(|other| {
            other.borrow().iter().find(|(columns, _)| *columns == reference.columns).map(|(_, keys)| keys.clone())
        });
        let keys = keys.unwrap_or_default();
        evaluator.provide(&reference, ReferenceKeys { rows: keys.len() as u64, keys: keys.into_iter().collect() });
    }
    let arrays: Vec<StringArray> = (0..COLUMNS.len())
        .map(|column| StringArray::from(rows.iter().map(|row| Some(row[column])).collect::<Vec<_>>()))
        .collect();
    let inputs: Vec<Option<&StringArray>> = arrays.iter().map(Some).collect();
    // Pass 1 types every column the counted rules read, like validate's first pass.
    let mut scratch = Reasons::new(rows.len());
    let checked = plan.check(&inputs, rows.len(), &mut scratch);
    let row = Row { typed: checked.columns.iter().map(View::of).collect(), raw: inputs.clone() };
    evaluator.count(&row, rows.len());
    evaluator.settle();
    let mut reasons = Reasons::new(rows.len());
    evaluator.judge(&row, rows.len(), &mut reasons);
    let keep: BooleanArray = (0..rows.len()).map(|index| Some(reasons.is_valid(index))).collect();
    evaluator.measure(&row, &keep).expect("measure");
    let raw_columns: Vec<String> = COLUMNS.iter().map(|name| name.to_string()).collect();
    let context = Context {
        columns: &raw_columns,
        contract: &contract,
        dataset,
        previous_rows: PREVIOUS.with(|cell| cell.get()),
    };
    let outcomes = evaluator.finish(&context).expect("finish");
    Evaluated { reasons: (0..rows.len()).map(|index| reasons.get(index).to_string()).collect(), outcomes }
}

fn evaluate(dqdl: &str) -> Evaluated {
    evaluate_rows(&format!("Rules = [ {dqdl} ]"), "", &ROWS)
}

/// The ids of the rows a single rule quarantines.
fn quarantined(rule: &str) -> Vec<usize> {
    let evaluated = evaluate(rule);
    evaluated.reasons.iter().enumerate().filter(|(_, reason)| !reason.is_empty()).map(|(index, _)| index + 1).collect()
}

/// The outcome of a single rule.
fn outcome(rule: &str) -> RuleOutcome {
    evaluate(rule).outcomes.remove(0)
}

fn passes(rule: &str) -> bool {
    outcome(rule).outcome == PASSED
}

#[test]
fn row_level_rules_quarantine_the_rows_that_fail_them() {
    assert_eq!(quarantined(r#"IsComplete "country""#), [5]);
    assert_eq!(quarantined(r#"IsComplete "note""#), [3]);
    assert_eq!(quarantined(r#"IsComplete "id""#), Vec::<usize>::new());
    assert_eq!(quarantined(r#"ColumnValues "country" in ["UK", "US"]"#), [4, 5]);
    assert_eq!(quarantined(r#"ColumnValues "country" in ["UK", "US", NULL]"#), [4]);
    assert_eq!(quarantined(r#"ColumnValues "country" not in ["FR"]"#), [4]);
    assert_eq!(quarantined(r#"ColumnValues "amount" > 7"#), [3, 5, 6]);
    assert_eq!(quarantined(r#"ColumnValues "amount" >= 7.00"#), [3, 5]);
    // DQDL's `between` is exclusive.
    assert_eq!(quarantined(r#"ColumnValues "amount" between 7 and 100"#), [3, 4, 5, 6]);
    assert_eq!(quarantined(r#"ColumnValues "amount" not between 7 and 100"#), [1, 2, 5]);
    assert_eq!(quarantined(r#"ColumnValues "amount" != NULL"#), [5]);
    assert_eq!(quarantined(r#"ColumnValues "country" matches "U[KS]""#), [4, 5]);
    assert_eq!(quarantined(r#"ColumnValues "country" not matches "U.""#), [1, 2, 3, 5, 6]);
    assert_eq!(quarantined(r#"ColumnValues "placed" > "2024-06-01T00:00:00Z""#), [3, 5]);
    assert_eq!(quarantined(r#"ColumnValues "placed" > (now() - 1 days)"#), [1, 2, 3, 5]);
    assert_eq!(quarantined(r#"ColumnLength "note" <= 2"#), [3, 4]);
    assert_eq!(quarantined(r#"ColumnLength "note" between 1 and 4"#), [1, 3, 4, 5]);
    assert_eq!(quarantined(r#"ColumnLength "amount" = 5"#), [3, 4, 5, 6]);
    assert_eq!(quarantined(r#"ColumnDataType "note" = "INTEGER""#), [1, 2, 4, 5, 6]);
    assert_eq!(quarantined(r#"ColumnDataType "amount" in ["DOUBLE", "INTEGER"]"#), Vec::<usize>::new());
    assert_eq!(quarantined(r#"ColumnDataType "placed" = "TIMESTAMP""#), Vec::<usize>::new());
    assert_eq!(quarantined(r#"DataFreshness "placed" <= 24 hours"#), [1, 2, 3, 5]);
    assert_eq!(quarantined(r#"DataFreshness "placed" between 1 hours and 2 days"#), [3, 5]);
    assert_eq!(quarantined(r#"CustomSql "select id from primary where amount > 6""#), [3, 5]);
    assert_eq!(quarantined(r#"CustomSql "select * from primary where country = 'UK' or note is null""#), [4, 5, 6]);
}

#[test]
fn where_limits_the_rows_a_rule_judges() {
    assert_eq!(quarantined(r#"ColumnValues "amount" > 6 where "country = 'US'""#), [3]);
    assert_eq!(quarantined(r#"IsComplete "note" where "id > 3""#), Vec::<usize>::new());
    assert_eq!(quarantined(r#"ColumnLength "note" < 2 where "country in ('UK', 'FR')""#), [2, 4]);
    // Dataset measures too: two of the US rows, one distinct country among UK rows.
    assert!(passes(r#"RowCount = 2 where "country = 'US'""#));
    assert!(passes(r#"DistinctValuesCount "country" = 1 where "id <= 2""#));
}

#[test]
fn the_quarantined_row_carries_the_rule_as_written() {
    let evaluated = evaluate(r#"ColumnValues   "country" in ["UK", "US"], IsComplete "note""#);
    assert_eq!(evaluated.reasons[3], r#"ColumnValues "country" in ["UK", "US"]"#);
    assert_eq!(evaluated.reasons[2], r#"IsComplete "note""#);
    assert_eq!(evaluated.reasons[4], r#"ColumnValues "country" in ["UK", "US"]"#);
    let first = &evaluated.outcomes[0];
    assert_eq!((first.outcome.as_str(), first.rows_failed, first.line), (QUARANTINED, 2, 1));
    assert_eq!(evaluated.outcomes[1].outcome, QUARANTINED);
}

#[test]
fn a_threshold_tolerates_failing_rows_or_quarantines_them_and_fails() {
    // 5 of 6 rows have a country: 0.83.
    let tolerated = evaluate(r#"ColumnValues "country" in ["UK", "US", "FR"] with threshold > 0.8"#);
    assert!(tolerated.reasons.iter().all(String::is_empty), "{:?}", tolerated.reasons);
    assert_eq!(tolerated.outcomes[0].outcome, PASSED);
    assert_eq!(tolerated.outcomes[0].rows_failed, 1);
    let short = evaluate(r#"ColumnValues "country" in ["UK", "US", "FR"] with threshold > 0.9"#);
    assert_eq!(short.reasons.iter().filter(|reason| !reason.is_empty()).count(), 1);
    assert_eq!(short.outcomes[0].outcome, FAILED);
    assert!((short.outcomes[0].measure.unwrap_or(0.0) - 5.0 / 6.0).abs() < 1e-9);
    // Completeness's expression is its threshold.
    assert!(passes(r#"Completeness "note" > 0.8"#));
    assert_eq!(quarantined(r#"Completeness "note" > 0.8"#), Vec::<usize>::new());
    assert!(!passes(r#"Completeness "note" >= 0.9"#));
    assert_eq!(quarantined(r#"Completeness "note" >= 0.9"#), [3]);
    assert!(passes(r#"Completeness "note" = 1.0 where "id <> 3""#));
    // A threshold on a `where`: two US rows, one of them above 7.
    assert!(passes(r#"ColumnValues "amount" > 7 where "country = 'US'" with threshold >= 0.0"#));
    assert!(!passes(r#"ColumnValues "amount" > 6 where "country = 'US'" with threshold > 0.5"#));
    assert!(passes(r#"CustomSql "select id from primary where amount > 6" with threshold > 0.6"#));
}

#[test]
fn dataset_level_rules_measure_the_rows_kept() {
    assert!(passes("RowCount = 6"));
    assert!(!passes("RowCount > 6"));
    assert!(passes("RowCount between 5 and 7"));
    assert!(passes("ColumnCount = 5"));
    assert!(passes(r#"ColumnExists "note""#));
    assert!(!passes(r#"ColumnExists "email""#));
    assert!(passes(r#"ColumnNamesMatchPattern "[a-z]+""#));
    assert!(!passes(r#"ColumnNamesMatchPattern "[a-z]{3,5}""#));
    assert!(passes(r#"IsUnique "id""#));
    assert!(!passes(r#"IsUnique "country""#));
    assert!(passes(r#"IsPrimaryKey "id""#));
    assert!(!passes(r#"IsPrimaryKey "id" "country""#), "row 5 lacks a country");
    assert!(!passes(r#"IsPrimaryKey "country""#));
    // Countries UK UK US FR US: FR occurs once of 5 present values, 1 of 3 distinct.
    assert!((outcome(r#"Uniqueness "country" > 0"#).measure.unwrap_or(0.0) - 0.2).abs() < 1e-9);
    assert!((outcome(r#"UniqueValueRatio "country" > 0"#).measure.unwrap_or(0.0) - 1.0 / 3.0).abs() < 1e-9);
    assert!(passes(r#"DistinctValuesCount "country" = 3"#));
    let entropy = -(0.4f64 * 0.4f64.ln() * 2.0 + 0.2 * 0.2f64.ln());
    assert!((outcome(r#"Entropy "country" > 0"#).measure.unwrap_or(0.0) - entropy).abs() < 1e-9);
    // Amounts 10, 20.5, 5.25, 100, 7: sum 142.75, mean 28.55.
    assert!(passes(r#"Sum "amount" = 142.75"#));
    assert!(passes(r#"Mean "amount" between 28.5 and 28.6"#));
    let deviation = {
        let values = [10.0, 20.5, 5.25, 100.0, 7.0];
        let mean = values.iter().sum::<f64>() / 5.0;
        (values.iter().map(|value| (value - mean).powi(2)).sum::<f64>() / 5.0).sqrt()
    };
    assert!((outcome(r#"StandardDeviation "amount" > 0"#).measure.unwrap_or(0.0) - deviation).abs() < 1e-9);
    assert!(passes(r#"CustomSql "select count(*) from primary where country = 'UK'" = 2"#));
    assert!(passes(r#"CustomSql "select max(amount) from primary" = 100"#));
    assert!(passes(r#"CustomSql "select min(id) from primary" = 1"#));
    assert!(passes(r#"CustomSql "select avg(amount) from primary" > 28"#));
    assert!(passes(r#"CustomSql "select count(distinct country) from primary" = 3"#));
    assert!(passes(r#"CustomSql "select count(note) from primary" = 5"#));
    // `other` has id and country of the same types: 2 of the 5 names.
    assert!((outcome(r#"SchemaMatch "other" > 0"#).measure.unwrap_or(0.0) - 0.4).abs() < 1e-9);
}

#[test]
fn dataset_rules_see_only_the_rows_the_run_keeps() {
    // Row 5 lacks a country and is quarantined: five rows remain, all with an amount.
    let evaluated = evaluate(r#"IsComplete "country", RowCount = 5, Completeness "amount" = 1.0"#);
    assert_eq!(evaluated.outcomes[1].outcome, PASSED, "{:?}", evaluated.outcomes);
    // A threshold's share is over every row received, before quarantine: 5 of 6.
    assert_eq!(evaluated.outcomes[2].outcome, FAILED, "{:?}", evaluated.outcomes);
}

#[test]
fn composites_combine_their_rules() {
    // A row fails an `and` when it fails either rule, an `or` when it fails both.
    assert_eq!(quarantined(r#"(IsComplete "note") and (ColumnValues "amount" > 7)"#), [3, 5, 6]);
    assert_eq!(quarantined(r#"(IsComplete "note") or (ColumnValues "amount" > 7)"#), [3]);
    assert!(passes(r#"(RowCount > 5) and (IsUnique "id")"#));
    assert!(passes(r#"(RowCount > 50) or (IsUnique "id")"#));
    assert!(!passes(r#"(RowCount > 50) or (IsUnique "country")"#));
    // A row-level rule inside a dataset composite holds when every row passes.
    assert!(!passes(r#"(RowCount > 5) and (IsComplete "note")"#));
    assert!(passes(r#"(RowCount > 5) and (IsComplete "id")"#));
    assert!(passes(r#"(RowCount > 5) and ((IsComplete "note") or (IsUnique "id"))"#));
}

#[test]
fn warn_rules_keep_their_rows_and_only_report() {
    let evaluated = evaluate_rows(
        r#"Rules = [ RowCount > 1 ]"#,
        r#"Rules = [ IsComplete "country", RowCount > 100, ColumnValues "amount" > 0 ]"#,
        &ROWS,
    );
    assert!(evaluated.reasons.iter().all(String::is_empty), "{:?}", evaluated.reasons);
    let shown: Vec<(&str, Severity, u64)> = evaluated
        .outcomes
        .iter()
        .map(|outcome| (outcome.outcome.as_str(), outcome.severity, outcome.rows_failed))
        .collect();
    assert_eq!(
        shown,
        [
            (PASSED, Severity::Fail, 0),
            (FAILED, Severity::Warn, 1),
            (FAILED, Severity::Warn, 0),
            (FAILED, Severity::Warn, 1)
        ]
    );
}

#[test]
fn an_empty_run_has_nothing_to_measure() {
    let evaluated = evaluate_rows(
        r#"Rules = [ RowCount = 0, Mean "amount" > 1, IsUnique "id", Completeness "id" > 0.5 ]"#,
        "",
        &[],
    );
    let outcomes: Vec<&str> = evaluated.outcomes.iter().map(|outcome| outcome.outcome.as_str()).collect();
    assert_eq!(outcomes, [PASSED, FAILED, PASSED, PASSED]);
    assert!(evaluated.outcomes[1].message.contains("no rows"), "{:?}", evaluated.outcomes[1]);
}

#[test]
fn mistakes_against_the_dataset_are_named_at_their_rule() {
    let cases = [
        (r#"IsComplete "email""#, "names the column `email`"),
        (r#"ColumnValues "placed" > "soon""#, "\"soon\" is not a timestamp value"),
        (r#"ColumnValues "amount" > "abc""#, "\"abc\" is not a decimal(10,2) value"),
        (r#"Mean "country" > 1"#, "measures a numeric column"),
        (r#"DataFreshness "amount" < 3 days"#, "a date or timestamp column"),
        (r#"DataFreshness "placed" < 3"#, "durations such as `24 hours`"),
        (r#"RowCount > 1 with threshold > 0.5"#, "belongs to row-level rules"),
        (r#"ColumnValues "id" > 1 where "nope = 1""#, "in the `where` of"),
        (r#"CustomSql "select count(*) from orders" > 1"#, "`primary`"),
        (r#"CustomSql "select id from primary" > 1"#, "takes no expression"),
        (r#"CustomSql "select count(*) from primary""#, "needs an expression"),
        (r#"ColumnDataType "note" = "WHOLE""#, "not a type ColumnDataType names"),
        (
            r#"ReferentialIntegrity "id" "nowhere.id" = 1.0"#,
            "compares with the dataset `nowhere`, which the contract lacks",
        ),
        (r#"ReferentialIntegrity "id" "orders.code" = 1.0"#, "`orders.code`, which that dataset does not declare"),
        (r#"ReferentialIntegrity "amount" "orders.id" = 1.0"#, "keys match only between columns of one type"),
        (r#"ReferentialIntegrity "id,country" "orders.id" = 1.0"#, "2 key column(s) against 1 reference column(s)"),
        (r#"ReferentialIntegrity "id" "orders" = 1.0"#, "is not a reference: write"),
        (r#"ReferentialIntegrity "nope" "orders.id" = 1.0"#, "names the column `nope`"),
        (r#"RowCountMatch "reference" >= 0.9"#, "compares the run with the dataset's previous run"),
        (r#"Completeness "note" > 0.5 with threshold > 0.5"#, "Completeness's expression is its threshold"),
        (r#"SchemaMatch "nowhere" = 1.0"#, "compares with the dataset `nowhere`, which the contract lacks"),
    ];
    for (rule, expected) in cases {
        let text = format!(
            "[datasets.orders]\nmatch = [\"landing/*.csv\"]\n[datasets.orders.table]\nname = \"fact_order\"\nkind = \"fact\"\nnatural_key = [\"id\"]\n[[datasets.orders.columns]]\nname = \"id\"\ntype = \"integer\"\n[[datasets.orders.columns]]\nname = \"amount\"\ntype = \"decimal(10,2)\"\n[[datasets.orders.columns]]\nname = \"placed\"\ntype = \"timestamp\"\n[[datasets.orders.columns]]\nname = \"country\"\n[[datasets.orders.columns]]\nname = \"note\"\n[datasets.orders.quality]\ndqdl = '''\nRules = [\n  {rule}\n]\n'''\n"
        );
        let error = match Contract::parse("pipeline.toml", &text) {
            Ok(_) => panic!("{rule} should be refused"),
            Err(error) => error,
        };
        let problem = &error.problems[0];
        assert!(problem.message.contains(expected), "{rule}: {}", problem.message);
        assert!(problem.message.starts_with("line 2 column 3 of the ruleset"), "{rule}: {}", problem.message);
        assert_eq!(problem.line, Some(23), "{rule}: {problem:?}");
        assert_eq!(problem.field, "datasets.orders.quality.dqdl");
    }
}

#[test]
fn aws_documentation_examples_evaluate_as_documented() {
    // From Glue's DQDL reference, on this dataset's columns.
    let evaluated = evaluate(
        r#"(IsComplete "id") and (IsUnique "id"),
           (RowCount > 100) or (IsPrimaryKey "id"),
           DistinctValuesCount "country" > 2,
           ColumnValues "country" in [ "US", "UK", "FR", NULL, EMPTY ],
           Completeness "country" > 0.8,
           CustomSql "select count(*) from primary" between 5 and 20"#,
    );
    assert!(evaluated.outcomes.iter().all(|outcome| outcome.outcome == PASSED), "{:?}", evaluated.outcomes);
}

#[test]
fn a_value_its_type_cannot_read_is_left_to_its_type_check() {
    let rows = [["1", "UK", "abc", "yesterday", "a"], ["2", "UK", "3.00", "2024-06-02T00:00:00Z", "b"]];
    let evaluated = evaluate_rows(
        r#"Rules = [ ColumnValues "amount" > 5, DataFreshness "placed" <= 1 days, IsComplete "amount" ]"#,
        "",
        &rows,
    );
    // Row 1's amount and time are unreadable (their type checks quarantine it): no rule judges
    // them, and the amount is present as written. Row 2's amount is below 5.
    assert_eq!(evaluated.reasons, ["", r#"ColumnValues "amount" > 5"#]);
}

#[test]
fn row_count_match_compares_with_the_previous_run() {
    // No previous run: nothing to compare, the rule holds.
    assert!(passes(r#"RowCountMatch "previous" >= 0.9"#));
    PREVIOUS.with(|cell| cell.set(Some(5)));
    // Six rows kept against five.
    assert!((outcome(r#"RowCountMatch "previous" >= 0.9"#).measure.unwrap_or(0.0) - 1.2).abs() < 1e-9);
    assert!(!passes(r#"RowCountMatch "previous" <= 1.1"#));
    assert!(passes(r#"RowCountMatch "previous" between 0.9 and 1.3"#));
    PREVIOUS.with(|cell| cell.set(None));
}

#[test]
fn referential_integrity_looks_keys_up_in_the_other_dataset() {
    let keys = |values: &[&str]| values.iter().map(|value| value.replace('|', "\u{1f}")).collect::<Vec<_>>();
    OTHER.with(|other| {
        *other.borrow_mut() = vec![
            (vec!["id"], keys(&["1", "2", "3", "4"])),
            (vec!["id", "country"], keys(&["1|UK", "2|UK", "3|US", "4|DE"])),
        ]
    });
    // Ids 5 and 6 are not in `other`: four of six.
    let single = outcome(r#"ReferentialIntegrity "id" "other.id" = 1.0"#);
    assert_eq!(single.outcome, FAILED);
    assert!((single.measure.unwrap_or(0.0) - 4.0 / 6.0).abs() < 1e-9, "{single:?}");
    assert!(single.message.contains("4 of 6 key(s) found in `other`"), "{}", single.message);
    assert!(passes(r#"ReferentialIntegrity "id" "other.id" >= 0.6"#));
    // Only the UK rows, both in `other`.
    assert!(passes(r#"ReferentialIntegrity "id" "other.{id}" = 1.0 where "country = 'UK'""#));
    // Two columns: row 5 lacks a country (not judged); (1, UK), (2, UK), (3, US) are found,
    // (4, FR) and (6, US) are not.
    let pair = outcome(r#"ReferentialIntegrity "id,country" "other.{id, country}" between 0.5 and 0.7"#);
    assert_eq!(pair.outcome, PASSED, "{pair:?}");
    assert!((pair.measure.unwrap_or(0.0) - 0.6).abs() < 1e-9, "{pair:?}");
    // In a composite, as any dataset rule.
    assert!(passes(r#"(ReferentialIntegrity "id" "other.id" = 1.0) or (RowCount = 6)"#));
    // A reference with no rows yet: nothing is found, and the message says why.
    OTHER.with(|other| other.borrow_mut().clear());
    let empty = outcome(r#"ReferentialIntegrity "id" "other.id" > 0.5"#);
    assert_eq!(empty.outcome, FAILED);
    assert!(empty.message.contains("`other` has no processed rows yet"), "{}", empty.message);
}
