//! The checks of a dataset's star table (its kind, keys, dates and references) and of its
//! cross-column rules.

use std::ops::Range;

use super::Checker;
use crate::contract::*;
use crate::types::{cast, type_name};

impl Checker<'_> {
    pub(super) fn table(&mut self, path: &str, span: Range<usize>, table: &TableConfig, columns: &[Column]) {
        // Long on purpose: the table's checks by kind (dimension, fact), each naming its field.
        let path = format!("{path}.table");
        let prefix = match table.kind {
            TableKind::Dimension => "dim_",
            TableKind::Fact => "fact_",
        };
        if !is_identifier(&table.name) || !table.name.starts_with(prefix) || table.name.len() == prefix.len() {
            self.problem(
                &span,
                format!("{path}.name"),
                format!(
                    "a {:?} table is named `{prefix}<stem>` with a lower-case identifier, e.g. `{prefix}customer`",
                    table.kind
                )
                .to_lowercase(),
            );
        }
        if let Some(why) = super::reserved_table(&table.name) {
            self.problem(&span, format!("{path}.name"), format!("`{}` is {why}: name the table otherwise", table.name));
        }
        if table.natural_key.is_empty() {
            self.problem(
                &span,
                format!("{path}.natural_key"),
                "name the column(s) that identify a row, e.g. `natural_key = [\"customer_id\"]`",
            );
        }
        let find = |name: &str| columns.iter().find(|column| column.name == name);
        for key in &table.natural_key {
            match find(key) {
                None => self.problem(
                    &span,
                    format!("{path}.natural_key"),
                    format!("`{key}` is not a column of this dataset"),
                ),
                Some(column) if column.config.scd.is_some() => self.problem(
                    &span,
                    format!("{path}.natural_key"),
                    format!("`{key}` is part of the natural key and cannot also have `scd`"),
                ),
                Some(_) => {}
            }
        }
        match table.kind {
            TableKind::Dimension => {
                if let Some(name) = &table.effective_from {
                    match find(name) {
                        Some(column) if column.data_type.is_temporal() => {}
                        Some(_) => self.problem(
                            &span,
                            format!("{path}.effective_from"),
                            format!("`{name}` must be a date or timestamp column"),
                        ),
                        None => self.problem(
                            &span,
                            format!("{path}.effective_from"),
                            format!("`{name}` is not a column of this dataset"),
                        ),
                    }
                }
                if table.date_column.is_some() || table.partition.is_some() || !table.references.is_empty() {
                    self.problem(
                        &span,
                        path.clone(),
                        "`date_column`, `partition` and `references` apply only to facts",
                    );
                }
            }
            TableKind::Fact => {
                if table.effective_from.is_some() {
                    self.problem(
                        &span,
                        format!("{path}.effective_from"),
                        "`effective_from` applies only to dimensions",
                    );
                }
                if let Some(name) = &table.date_column {
                    match find(name) {
                        Some(column) if column.data_type.is_temporal() => {}
                        Some(_) => self.problem(
                            &span,
                            format!("{path}.date_column"),
                            format!("`{name}` must be a date or timestamp column"),
                        ),
                        None => self.problem(
                            &span,
                            format!("{path}.date_column"),
                            format!("`{name}` is not a column of this dataset"),
                        ),
                    }
                } else if table.partition.is_some() {
                    self.problem(&span, format!("{path}.partition"), "partitions need a `date_column`");
                }
                for (index, reference) in table.references.iter().enumerate() {
                    for name in &reference.columns {
                        if find(name).is_none() {
                            self.problem(
                                &span,
                                format!("{path}.references[{index}].columns"),
                                format!("`{name}` is not a column of this dataset"),
                            );
                        }
                    }
                }
            }
        }
    }

    pub(super) fn rule(
        &mut self,
        path: &str,
        span: Range<usize>,
        rule: &RuleConfig,
        columns: &[Column],
    ) -> Option<Rule> {
        if !is_identifier(&rule.name) {
            self.problem(&span, format!("{path}.name"), "a rule name must be a lower-case identifier");
        }
        let Some((left, op, right)) = parse_comparison(&rule.check) else {
            self.problem(
                &span,
                format!("{path}.check"),
                format!("`{}` is not `<column> <op> <column or literal>` with op one of = != < <= > >=", rule.check),
            );
            return None;
        };
        let Some(left_column) = columns.iter().find(|column| column.name == left) else {
            self.problem(&span, format!("{path}.check"), format!("`{left}` is not a column of this dataset"));
            return None;
        };
        let right = match columns.iter().find(|column| column.name == right) {
            Some(column) if column.data_type != left_column.data_type => {
                self.problem(
                    &span,
                    format!("{path}.check"),
                    format!(
                        "cannot compare `{left}` ({:?}) with `{}` ({:?})",
                        left_column.data_type, column.name, column.data_type
                    ),
                );
                return None;
            }
            Some(column) => Operand::Column(column.name.clone()),
            None if is_identifier(&right) => {
                self.problem(
                    &span,
                    format!("{path}.check"),
                    format!("`{right}` is not a column of this dataset (quote a literal: '{right}')"),
                );
                return None;
            }
            None => {
                let literal = right.trim_matches('\'').to_string();
                let value = cast::trim(&literal);
                let fits = match left_column.data_type {
                    DataType::String => !value.is_empty(),
                    _ => !value.is_empty() && left_column.reading.parse(value).is_ok(),
                };
                if !fits {
                    self.problem(
                        &span,
                        format!("{path}.check"),
                        format!("`{literal}` is not a value of `{left}`'s type ({})", type_name(left_column.data_type)),
                    );
                    return None;
                }
                Operand::Literal(literal)
            }
        };
        Some(Rule { name: rule.name.clone(), left, op, right })
    }
}

fn parse_comparison(text: &str) -> Option<(String, CompareOp, String)> {
    const OPERATORS: [(&str, CompareOp); 6] = [
        ("<=", CompareOp::Le),
        (">=", CompareOp::Ge),
        ("!=", CompareOp::Ne),
        ("=", CompareOp::Eq),
        ("<", CompareOp::Lt),
        (">", CompareOp::Gt),
    ];
    OPERATORS.iter().find_map(|(symbol, op)| {
        let (left, right) = text.split_once(symbol)?;
        let (left, right) = (left.trim(), right.trim().trim_start_matches('='));
        (is_identifier(left) && !right.trim().is_empty()).then(|| (left.to_string(), *op, right.trim().to_string()))
    })
}
