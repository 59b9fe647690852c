//! The checks of the marts: their fact, what they group by and their measures, against the
//! datasets the contract declares.

use std::collections::BTreeMap;
use std::ops::Range;

use super::Checker;
use crate::contract::*;

impl Checker<'_> {
    /// Compiles every mart, recording each problem with the mart's line.
    pub(super) fn marts(
        &mut self,
        marts: &BTreeMap<String, toml::Spanned<MartConfig>>,
        datasets: &[Dataset],
    ) -> Vec<Mart> {
        let mut compiled = Vec::new();
        for (name, config) in marts {
            if let Some(mart) = self.mart(name, config.span(), config.get_ref(), datasets) {
                compiled.push(mart);
            }
        }
        compiled
    }

    fn mart(&mut self, name: &str, span: Range<usize>, config: &MartConfig, datasets: &[Dataset]) -> Option<Mart> {
        let path = format!("marts.{name}");
        if !is_identifier(name) {
            self.problem(&span, path.clone(), "a mart name must be a lower-case identifier (letters, digits, `_`, starting with a letter, at most 63 characters)");
        }
        if let Some(why) = super::reserved_table(name) {
            self.problem(&span, path.clone(), format!("`{name}` is {why}: name the mart otherwise"));
        }
        for dataset in datasets {
            let table = &dataset.table.name;
            let derived = [
                format!("{table}_current"),
                format!("{table}_detail"),
                format!("{table}_cur"),
                format!("{table}_versions"),
            ];
            if table == name || derived.iter().any(|derived| derived == name) {
                self.problem(&span, path.clone(), format!("`{name}` is the name of `{table}` or of a view or index Lakestar makes for it: name the mart otherwise"));
            }
        }
        if name.ends_with("_key") {
            self.problem(
                &span,
                path.clone(),
                format!("`{name}` ends in `_key`, the name of the mart's own unique index: name the mart otherwise"),
            );
        }
        let fact = match datasets.iter().find(|dataset| dataset.table.name == config.fact) {
            Some(fact) if fact.table.kind == TableKind::Fact => fact,
            Some(_) => {
                self.problem(
                    &span,
                    format!("{path}.fact"),
                    format!("`{}` is a dimension: a mart aggregates a fact table", config.fact),
                );
                return None;
            }
            None => {
                let facts: Vec<&str> = datasets
                    .iter()
                    .filter(|dataset| dataset.table.kind == TableKind::Fact)
                    .map(|dataset| dataset.table.name.as_str())
                    .collect();
                self.problem(
                    &span,
                    format!("{path}.fact"),
                    format!(
                        "no dataset feeds the fact table `{}`; the facts are: {}",
                        config.fact,
                        if facts.is_empty() { "none".to_string() } else { facts.join(", ") }
                    ),
                );
                return None;
            }
        };
        if config.group_by.is_empty() {
            self.problem(
                &span,
                format!("{path}.group_by"),
                "name at least one column to group by, e.g. `group_by = [\"dim_date.month\"]`",
            );
        }
        let mut names: Vec<String> = Vec::new();
        let mut group_by = Vec::new();
        for (index, written) in config.group_by.iter().enumerate() {
            let field = format!("{path}.group_by[{index}]");
            match self.group(&span, &field, written, fact, datasets) {
                Some(group) if names.contains(&group.name) => {
                    self.problem(
                        &span,
                        field,
                        format!("`{written}` is shown as `{}`, which the mart has already", group.name),
                    );
                }
                Some(group) => {
                    names.push(group.name.clone());
                    group_by.push(group);
                }
                None => {}
            }
        }
        if config.measures.is_empty() {
            self.problem(
                &span,
                format!("{path}.measures"),
                "name at least one measure, e.g. `measures = { lines = \"count(*)\" }`",
            );
        }
        let mut measures = Vec::new();
        for (measure, written) in &config.measures {
            let field = format!("{path}.measures.{measure}");
            if !is_identifier(measure) {
                self.problem(&span, field.clone(), "a measure name must be a lower-case identifier");
            }
            if names.contains(measure) {
                self.problem(&span, field.clone(), format!("`{measure}` is a group-by column of the mart already"));
            }
            if let Some(compiled) = self.measure(&span, &field, measure, written, fact) {
                names.push(measure.clone());
                measures.push(compiled);
            }
        }
        Some(Mart { name: name.to_string(), fact: config.fact.clone(), as_of: config.as_of, group_by, measures })
    }

    /// One group-by entry: `<column>` of the fact, `<dimension>.<column>` of a dimension the
    /// fact references, or `dim_date.<attribute>`.
    fn group(
        &mut self,
        span: &Range<usize>,
        field: &str,
        written: &str,
        fact: &Dataset,
        datasets: &[Dataset],
    ) -> Option<MartGroup> {
        let Some((table, column)) = written.split_once('.') else {
            if fact_column(fact, written).is_none() {
                self.problem(span, field.to_string(), format!("`{written}` is not a column of `{}`: name one of its columns, or `<dimension>.<column>` for a dimension's attribute", fact.table.name));
                return None;
            }
            return Some(MartGroup { table: None, column: written.to_string(), name: written.to_string() });
        };
        if table == "dim_date" {
            if fact.table.date_column.is_none() {
                self.problem(
                    span,
                    field.to_string(),
                    format!("`{}` has no `date_column`, so no date to group by", fact.table.name),
                );
                return None;
            }
            if !CALENDAR_ATTRIBUTES.contains(&column) {
                self.problem(
                    span,
                    field.to_string(),
                    format!(
                        "`{column}` is not an attribute of `dim_date`: use one of {}",
                        CALENDAR_ATTRIBUTES.join(", ")
                    ),
                );
                return None;
            }
            return Some(MartGroup {
                table: Some(table.to_string()),
                column: column.to_string(),
                name: if column == "date" { column.to_string() } else { format!("date_{column}") },
            });
        }
        if !fact.table.references.iter().any(|reference| reference.dimension == table) {
            let referenced: Vec<&str> =
                fact.table.references.iter().map(|reference| reference.dimension.as_str()).collect();
            self.problem(
                span,
                field.to_string(),
                format!(
                    "`{}` does not reference `{table}`; it references: {}, and `dim_date`",
                    fact.table.name,
                    if referenced.is_empty() { "no dimension".to_string() } else { referenced.join(", ") }
                ),
            );
            return None;
        }
        let dimension = datasets.iter().find(|dataset| dataset.table.name == table)?;
        if !dimension.columns.iter().any(|candidate| candidate.target_name() == column) {
            let columns: Vec<&str> = dimension.columns.iter().map(Column::target_name).collect();
            self.problem(
                span,
                field.to_string(),
                format!("`{column}` is not a column of `{table}`; its columns are: {}", columns.join(", ")),
            );
            return None;
        }
        Some(MartGroup {
            table: Some(table.to_string()),
            column: column.to_string(),
            name: attribute_name(table, column),
        })
    }

    /// One measure: `<aggregate>(<column>)` or `count(*)`.
    fn measure(
        &mut self,
        span: &Range<usize>,
        field: &str,
        name: &str,
        written: &str,
        fact: &Dataset,
    ) -> Option<Measure> {
        const FORM: &str = "write `count(*)`, or `count`, `count_distinct`, `sum`, `avg`, `min` or `max` of a fact column, e.g. `sum(quantity)`";
        let parsed = written.trim().strip_suffix(')').and_then(|text| text.split_once('('));
        let Some((function, argument)) = parsed else {
            self.problem(span, field.to_string(), format!("`{written}` is not an aggregate: {FORM}"));
            return None;
        };
        let (function, argument) = (function.trim(), argument.trim());
        let Some(aggregate) = Aggregate::parse(function) else {
            self.problem(span, field.to_string(), format!("`{function}` is not an aggregate Lakestar knows: {FORM}"));
            return None;
        };
        if argument == "*" {
            if aggregate != Aggregate::Count {
                self.problem(span, field.to_string(), format!("only `count` takes `*`: {FORM}"));
                return None;
            }
            return Some(Measure { name: name.to_string(), function: aggregate, column: None });
        }
        let Some(column) = fact_column(fact, argument) else {
            self.problem(span, field.to_string(), format!("`{argument}` is not a column of `{}`", fact.table.name));
            return None;
        };
        let numeric = matches!(column.data_type, DataType::Integer | DataType::Float | DataType::Decimal { .. });
        if matches!(aggregate, Aggregate::Sum | Aggregate::Avg) && (!numeric || column.config.pii.is_some()) {
            let why = if column.config.pii.is_some() { "is masked" } else { "is not a number" };
            self.problem(
                span,
                field.to_string(),
                format!("`{argument}` {why}: `{function}` needs an unmasked integer, decimal or float column"),
            );
            return None;
        }
        Some(Measure { name: name.to_string(), function: aggregate, column: Some(column.target_name().to_string()) })
    }
}

/// The fact's column of that star-table name.
fn fact_column<'a>(fact: &'a Dataset, name: &str) -> Option<&'a Column> {
    fact.columns.iter().find(|column| column.target_name() == name)
}
