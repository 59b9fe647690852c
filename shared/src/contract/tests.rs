//! Contract parsing and validation: the example parses, and every kind of mistake is
//! reported with its line and field.

use super::*;

const EXAMPLE: &str = include_str!("../../../examples/retail/pipeline.toml");

fn problems(text: &str) -> Vec<Problem> {
    match Contract::parse("pipeline.toml", text) {
        Ok(_) => panic!("the contract should be rejected"),
        Err(error) => error.problems,
    }
}

const MINIMAL: &str = r#"
[datasets.customers]
match = ["landing/*/customers*.csv"]

[datasets.customers.table]
name = "dim_customer"
kind = "dimension"
natural_key = ["customer_id"]

[[datasets.customers.columns]]
name = "customer_id"
required = true
"#;

#[test]
fn the_retail_example_is_valid() {
    let contract = Contract::parse("pipeline.toml", EXAMPLE).expect("the example contract is valid");
    let names: Vec<&str> = contract.datasets.iter().map(|dataset| dataset.name.as_str()).collect();
    assert_eq!(names, ["customers", "products", "sales", "stores"]);
    let sales = contract.dataset("sales").expect("sales");
    assert_eq!(sales.table.kind, TableKind::Fact);
    assert_eq!(
        sales.column("unit_price").map(|column| column.data_type),
        Some(DataType::Decimal { precision: 10, scale: 2 })
    );
    assert_eq!(sales.rules.len(), 1);
    assert_eq!(sales.rules[0].op, CompareOp::Ge);
    assert_eq!(sales.rules[0].right, Operand::Column("sale_date".to_string()));
    let customers = contract.dataset("customers").expect("customers");
    assert!(customers.column("email").and_then(|column| column.config.pii.as_ref()).is_some());
}

#[test]
fn keys_match_their_dataset_and_unknown_keys_are_named() {
    let contract = Contract::parse("pipeline.toml", EXAMPLE).expect("valid");
    let dataset = |key: &str| contract.dataset_for_key(key).map(|dataset| dataset.name.clone());
    assert_eq!(dataset("landing/2024-01-01/customers.csv").ok().as_deref(), Some("customers"));
    assert_eq!(dataset("landing/2024-01-02/sales.csv.gz").ok().as_deref(), Some("sales"));
    assert_eq!(dataset("landing/2024-01-02/Products_Shop.CSV").ok().as_deref(), Some("products"));
    let error = dataset("landing/2024-01-01/invoices.csv").expect_err("no dataset");
    assert_eq!(error.error_type(), "UnknownDataset");
    assert!(error.to_string().contains("landing/2024-01-01/invoices.csv"), "{error}");
    // `*` does not cross folders.
    assert!(dataset("landing/a/b/customers.csv").is_err());
}

#[test]
fn overlapping_patterns_are_reported_as_ambiguous() {
    let text = format!(
        "{MINIMAL}\n[datasets.more]\nmatch = [\"landing/**\"]\n[datasets.more.table]\nname = \"dim_more\"\nkind = \"dimension\"\nnatural_key = [\"id\"]\n[[datasets.more.columns]]\nname = \"id\"\n"
    );
    // Refused when the contract is checked (issue 23.14), no longer only when a key arrives.
    let problems = problems(&text);
    assert!(
        problems
            .iter()
            .any(|problem| problem.message.contains("datasets `customers` and `more` both match keys such as")),
        "{problems:?}"
    );
}

#[test]
fn a_toml_syntax_error_names_its_line() {
    let problems = problems("[datasets.customers]\nmatch = [\"landing/*\"\n");
    assert_eq!(problems.len(), 1);
    assert_eq!(problems[0].line, Some(2));
}

#[test]
fn an_unknown_field_is_named_with_its_line() {
    let text = MINIMAL.replace("required = true", "required = true\nrequird = false");
    let problems = problems(&text);
    assert_eq!(problems.len(), 1, "{problems:?}");
    assert!(problems[0].message.contains("requird"), "{problems:?}");
    assert_eq!(problems[0].line, Some(13));
}

#[test]
fn semantic_mistakes_are_all_reported_with_field_and_line() {
    let text = r#"
[datasets.Sales]
match = ["sales/*.csv"]

[datasets.Sales.table]
name = "sales"
kind = "fact"
natural_key = ["order_id", "nope"]
date_column = "amount"
references = [{ dimension = "dim_ghost", columns = ["customer_id"] }]

[[datasets.Sales.columns]]
name = "order_id"

[[datasets.Sales.columns]]
name = "amount"
type = "decimal(40,2)"

[[datasets.Sales.columns]]
name = "email"
checks = { regex = "([a-z" }
pii = { method = "token" }

[[datasets.Sales.rules]]
name = "positive"
check = "amount >>> 0"
"#;
    let problems = problems(text);
    let fields: Vec<&str> = problems.iter().map(|problem| problem.field.as_str()).collect();
    let expect = [
        "datasets.Sales",
        "datasets.Sales.match",
        "datasets.Sales.columns[1] (amount).type",
        "datasets.Sales.columns[2] (email).checks.regex",
        "datasets.Sales.columns[2] (email).pii.prefix",
        "datasets.Sales.table.name",
        "datasets.Sales.table.natural_key",
        "datasets.Sales.table.date_column",
        "datasets.Sales.rules[0].check",
        "datasets.Sales.table.references[0]",
    ];
    for field in expect {
        assert!(fields.contains(&field), "missing a problem for {field}: {problems:#?}");
    }
    let regex = problems.iter().find(|problem| problem.field.ends_with("checks.regex")).expect("regex problem");
    assert_eq!(regex.line, Some(19), "the line of the column's section");
}

#[test]
fn the_error_text_lists_file_line_and_field() {
    let text = MINIMAL.replace("natural_key = [\"customer_id\"]", "natural_key = [\"id\"]");
    let error = Contract::parse("examples/pipeline.toml", &text).expect_err("invalid");
    let shown = error.to_string();
    assert!(
        shown.contains("examples/pipeline.toml:5: datasets.customers.table.natural_key: `id` is not a column"),
        "{shown}"
    );
}

#[test]
fn headers_and_aliases_may_not_collide() {
    let text = format!("{MINIMAL}\n[[datasets.customers.columns]]\nname = \"cust_id\"\naliases = [\"Customer-ID\"]\n");
    let problems = problems(&text);
    assert!(problems.iter().any(|problem| problem.message.contains("claimed by both")), "{problems:?}");
}

#[test]
fn a_fact_reference_must_cover_the_dimension_key() {
    let text = format!(
        "{MINIMAL}\n[datasets.sales]\nmatch = [\"landing/*/sales.csv\"]\n[datasets.sales.table]\nname = \"fact_sales\"\nkind = \"fact\"\nnatural_key = [\"order_id\"]\nreferences = [{{ dimension = \"dim_customer\", columns = [\"order_id\", \"customer_id\"] }}]\n[[datasets.sales.columns]]\nname = \"order_id\"\n[[datasets.sales.columns]]\nname = \"customer_id\"\n"
    );
    let problems = problems(&text);
    assert!(problems.iter().any(|problem| problem.message.contains("natural key of 1 column")), "{problems:?}");
}

#[test]
fn types_parse() {
    assert_eq!(DataType::parse("decimal(10, 2)"), Some(DataType::Decimal { precision: 10, scale: 2 }));
    assert_eq!(DataType::parse("DECIMAL(38,38)"), Some(DataType::Decimal { precision: 38, scale: 38 }));
    assert_eq!(DataType::parse("decimal(3,4)"), None);
    assert_eq!(DataType::parse("decimal(0,0)"), None);
    assert_eq!(DataType::parse("integer"), Some(DataType::Integer));
    assert_eq!(DataType::parse("timestamp"), Some(DataType::Timestamp));
    assert_eq!(DataType::parse("varchar"), None);
}

#[test]
fn identifiers_are_strict() {
    assert!(is_identifier("customer_id"));
    assert!(!is_identifier("Customer"));
    assert!(!is_identifier("1st"));
    assert!(!is_identifier("a-b"));
    assert!(!is_identifier("drop table x;--"));
    assert!(!is_identifier(&"a".repeat(64)));
}

/// Issue 23.14, 32.8 and 32.9: every problem is reported, syntax and unknown fields
/// included; fields of another masking method, two columns of one name, reserved and too
/// long names, overlapping and never-matching patterns are refused, naming them.
#[test]
fn every_problem_is_reported_and_names_that_break_loads_are_refused() {
    let text = r#"
[calendar]
fiscal_year_start_month = 13

[datasets.people]
match = ["landing/people*.csv"]
colour = "blue"
[datasets.people.table]
name = "dim_person"
kind = "dimension"
natural_key = ["id"]
surprise = 1
[[datasets.people.columns]]
name = "id"
required = maybe
[[datasets.people.columns]]
name = "id"
[[datasets.people.columns]]
name = "card"
pii = { method = "partial", prefix = "X-" }
[[datasets.people.columns]]
name = "valid_to"
[[datasets.people.columns]]
name = "customer_key"

[datasets.more]
match = ["landing/**/*.csv", "landing/../config/*"]
[datasets.more.table]
name = "dim_date"
kind = "dimension"
natural_key = ["k"]
[[datasets.more.columns]]
name = "k"

[datasets.long]
match = ["landing/long/*.json"]
[datasets.long.table]
name = "dim_a_table_name_that_is_far_too_long_for_the_names_derived_from_it"
kind = "dimension"
natural_key = ["k"]
[[datasets.long.columns]]
name = "k"

[datasets.shadow]
match = ["landing/shadow/*.csv"]
[datasets.shadow.table]
name = "dim_person_current"
kind = "dimension"
natural_key = ["k"]
[[datasets.shadow.columns]]
name = "k"
"#;
    let error = Contract::parse("pipeline.toml", text).expect_err("refused");
    let shown = error.to_string();
    for expected in [
        "pipeline.toml:7: unknown field `colour`",
        "pipeline.toml:12: unknown field `surprise`",
        "pipeline.toml:15:",
        "two columns are named `id`",
        "`prefix` applies to `token` only, not to `partial`",
        "`valid_to` is one of the columns Lakestar keeps history with",
        "`customer_key` is the form of a surrogate key",
        "pattern `landing/../config/*` can never match",
        "`dim_date` is Lakestar's own calendar dimension",
        "at most 54",
        "`13` is not a month",
        "`dim_person_current` is the name of a view or index Lakestar makes for `dim_person`",
        "datasets `more` and `people` both match keys such as `landing/peoplex.csv`",
    ] {
        assert!(shown.contains(expected), "`{expected}` in:\n{shown}");
    }
}

/// Issue 29: the example's marts compile; a mart's every problem is reported by name: its
/// fact, its group-by entries (unknown column, unreferenced dimension, unknown calendar
/// attribute, a name shown twice), its measures (unknown aggregate, `*` outside `count`, a sum
/// of text or of a masked column), and a name Lakestar uses already.
#[test]
fn marts_compile_and_their_problems_are_named() {
    let contract =
        Contract::parse("pipeline.toml", include_str!("../../../examples/retail/pipeline.toml")).expect("valid");
    let by_month = contract.marts.iter().find(|mart| mart.name == "sales_by_month").expect("the example's mart");
    let names: Vec<&str> = by_month.group_by.iter().map(|group| group.name.as_str()).collect();
    assert_eq!(names, ["date_year", "date_month", "product_category", "store_city"]);
    assert_eq!(by_month.as_of, AsOf::FactDate);
    assert!(
        by_month.depends_on("fact_sales") && by_month.depends_on("dim_store") && !by_month.depends_on("dim_customer")
    );
    let measures: Vec<(&str, Aggregate)> =
        by_month.measures.iter().map(|measure| (measure.name.as_str(), measure.function)).collect();
    assert!(measures.contains(&("orders", Aggregate::CountDistinct)), "{measures:?}");

    let text = include_str!("../../../examples/retail/pipeline.toml").to_string()
        + r#"
[marts.broken]
fact = "fact_sale"
group_by = ["channel"]
measures = { lines = "count(*)" }

[marts.dim_customer_current]
fact = "fact_sales"
group_by = ["channel", "dim_date.weekday", "dim_person.city", "dim_product.colour", "dim_store.city", "dim_store.city", "nope"]
measures = { a = "median(quantity)", b = "sum(*)", c = "sum(channel)", d = "sum(card_number)", e = "count(ghost)", channel = "count(*)", f = "total" }
"#;
    let shown = Contract::parse("pipeline.toml", &text).expect_err("refused").to_string();
    for expected in [
        "marts.broken.fact: no dataset feeds the fact table `fact_sale`; the facts are: fact_sales",
        "`dim_customer_current` is the name of `dim_customer` or of a view or index Lakestar makes for it",
        "`weekday` is not an attribute of `dim_date`",
        "`fact_sales` does not reference `dim_person`",
        "`colour` is not a column of `dim_product`",
        "`dim_store.city` is shown as `store_city`, which the mart has already",
        "`nope` is not a column of `fact_sales`",
        "`median` is not an aggregate Lakestar knows",
        "only `count` takes `*`",
        "`channel` is not a number",
        "`card_number` is masked",
        "`ghost` is not a column of `fact_sales`",
        "`channel` is a group-by column of the mart already",
        "`total` is not an aggregate",
    ] {
        assert!(shown.contains(expected), "`{expected}` in:\n{shown}");
    }
}

#[test]
fn a_dqdl_ruleset_is_parsed_and_checked_against_the_dataset() {
    let with = |ruleset: &str| format!("{MINIMAL}\n[datasets.customers.quality]\ndqdl = \"\"\"\n{ruleset}\n\"\"\"\n");
    // MINIMAL, a blank line, the section, `dqdl = """`: the ruleset starts on the line after.
    let line_of_ruleset = MINIMAL.lines().count() + 4;
    // A mistake on the ruleset's second line: the file's line, and the line and column inside.
    let found = problems(&with("Rules = [\n    IsComplete \"customer_id\",  Completeness \"customer_id\"\n]"));
    assert_eq!(found.len(), 1, "{found:?}");
    assert_eq!(found[0].field, "datasets.customers.quality.dqdl");
    assert_eq!(found[0].line, Some(line_of_ruleset + 2), "{found:?}");
    assert!(
        found[0].message.starts_with("line 3 column 1 of the ruleset: expected an expression after `Completeness`"),
        "{found:?}"
    );
    // A column the dataset does not declare; a ruleset that holds together is taken, warn
    // rules too.
    let found = problems(&with("Rules = [ IsComplete \"customer_id\", IsUnique \"email\" ]"));
    assert_eq!(found.len(), 1, "{found:?}");
    assert!(found[0].message.contains("names the column `email`"), "{found:?}");
    let valid = with("Rules = [ IsComplete \"customer_id\", RowCount > 0 ]")
        + "dqdl_warn = \"Rules = [ IsUnique \\\"customer_id\\\" ]\"\n";
    let contract = Contract::parse("pipeline.toml", &valid).expect("a valid ruleset");
    let customers = contract.dataset("customers").expect("customers");
    assert_eq!(customers.rulesets().len(), 2);
    let found = problems(&with("Rules = [ DetectAnomalies \"RowCount\" ]"));
    assert!(found[0].message.contains("not one Lakestar evaluates"), "{found:?}");
}
