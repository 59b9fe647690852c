//! The contract's checks: every problem of a `pipeline.toml` collected with its line and
//! field while the configuration is compiled into the runtime types of [`super`].

use std::ops::Range;

use globset::{GlobBuilder, GlobSet, GlobSetBuilder};

use super::*;

mod columns;
mod tables;

pub(super) fn line_of(text: &str, offset: usize) -> usize {
    text.as_bytes()[..offset.min(text.len())].iter().filter(|&&byte| byte == b'\n').count() + 1
}

/// Collects every problem of a contract while compiling it.
pub(super) struct Checker<'a> {
    pub(super) text: &'a str,
    pub(super) problems: Vec<Problem>,
}

impl Checker<'_> {
    pub(super) fn problem(&mut self, span: &Range<usize>, field: String, message: impl Into<String>) {
        let line = Some(line_of(self.text, span.start));
        self.problems.push(Problem { line, field, message: message.into() });
    }

    pub(super) fn contract(&mut self, config: PipelineConfig) -> Contract {
        if config.datasets.is_empty() {
            self.problems.push(Problem {
                line: None,
                field: "datasets".to_string(),
                message: "the contract declares no dataset: add a `[datasets.<name>]` section".to_string(),
            });
        }
        let mut datasets = Vec::new();
        for (name, dataset) in &config.datasets {
            let span = dataset.span();
            datasets.push(self.dataset(name, span, dataset.get_ref().clone()));
        }
        self.cross_dataset(&datasets);
        Contract { masking: config.masking, datasets }
    }

    fn dataset(&mut self, name: &str, span: Range<usize>, config: DatasetConfig) -> Dataset {
        // Long on purpose: one check of the dataset after another, each naming its field, in the
        // order the reference documents the fields.
        let path = format!("datasets.{name}");
        if !is_identifier(name) {
            self.problem(&span, path.clone(), "a dataset name must be a lower-case identifier (letters, digits, `_`, starting with a letter, at most 63 characters)");
        }

        let mut globs = GlobSetBuilder::new();
        if config.patterns.is_empty() {
            self.problem(
                &span,
                format!("{path}.match"),
                "list at least one landing key pattern, e.g. `match = [\"landing/*/customers*.csv\"]`",
            );
        }
        for pattern in &config.patterns {
            if !pattern.starts_with("landing/") {
                self.problem(
                    &span,
                    format!("{path}.match"),
                    format!("pattern `{pattern}` must start with `landing/`: only that prefix starts executions"),
                );
            }
            match GlobBuilder::new(pattern).literal_separator(true).case_insensitive(true).build() {
                Ok(glob) => {
                    globs.add(glob);
                }
                Err(error) => self.problem(
                    &span,
                    format!("{path}.match"),
                    format!("pattern `{pattern}` is not a valid glob: {error}"),
                ),
            }
        }
        let matcher = globs.build().unwrap_or_else(|_| GlobSet::empty());

        let encoding = encoding_rs::Encoding::for_label(config.encoding.as_bytes()).unwrap_or_else(|| {
            self.problem(
                &span,
                format!("{path}.encoding"),
                format!(
                    "unknown encoding `{}`: use `utf-8`, `windows-1252`, `latin1` or another WHATWG label",
                    config.encoding
                ),
            );
            encoding_rs::UTF_8
        });

        let delimiter = match config.csv.delimiter.as_str() {
            "auto" => None,
            "\\t" | "tab" => Some(b'\t'),
            text if text.len() == 1 && text.is_ascii() => Some(text.as_bytes()[0]),
            text => {
                self.problem(
                    &span,
                    format!("{path}.csv.delimiter"),
                    format!("`{text}` is not one ASCII character: use e.g. `,`, `;`, `\\t`, `|` or `auto`"),
                );
                None
            }
        };
        if !config.csv.quote.is_ascii() {
            self.problem(&span, format!("{path}.csv.quote"), "the quote must be one ASCII character");
        }

        let mut columns: Vec<Column> = Vec::new();
        if config.columns.is_empty() {
            self.problem(
                &span,
                format!("{path}.columns"),
                "declare at least one column with `[[datasets.<name>.columns]]`",
            );
        }
        for (index, column) in config.columns.iter().enumerate() {
            let column_path = format!("{path}.columns[{index}]");
            if let Some(column) =
                self.column(&column_path, column.span(), column.get_ref().clone(), config.table.get_ref().kind)
            {
                for key in &column.header_keys {
                    if let Some(other) = columns.iter().find(|other| other.header_keys.contains(key)) {
                        self.problem(&column_span(&config, index), format!("{column_path}.aliases"), format!("header spelling `{key}` is claimed by both `{}` and `{}`: a header must map to one column", other.name, column.name));
                    }
                }
                columns.push(column);
            }
        }

        let table = config.table.get_ref().clone();
        self.table(&path, config.table.span(), &table, &columns);

        let mut rules = Vec::new();
        for (index, rule) in config.rules.iter().enumerate() {
            if let Some(rule) = self.rule(&format!("{path}.rules[{index}]"), rule.span(), rule.get_ref(), &columns) {
                rules.push(rule);
            }
        }
        if !(0.0..=1.0).contains(&config.quality.max_reject_ratio) {
            self.problem(
                &span,
                format!("{path}.quality.max_reject_ratio"),
                "must be a fraction between 0.0 and 1.0, e.g. 0.05 for 5 %",
            );
        }

        Dataset { name: name.to_string(), columns, table, rules, delimiter, encoding, config, matcher }
    }

    fn cross_dataset(&mut self, datasets: &[Dataset]) {
        for (index, dataset) in datasets.iter().enumerate() {
            if let Some(other) = datasets[..index].iter().find(|other| other.table.name == dataset.table.name) {
                self.problems.push(Problem {
                    line: None,
                    field: format!("datasets.{}.table.name", dataset.name),
                    message: format!("table `{}` is already fed by dataset `{}`: give each dataset its own table, or merge the files into one dataset with aliases", dataset.table.name, other.name),
                });
            }
            for (position, reference) in dataset.table.references.iter().enumerate() {
                let field = format!("datasets.{}.table.references[{position}]", dataset.name);
                match datasets.iter().find(|other| other.table.name == reference.dimension) {
                    None => self.problems.push(Problem {
                        line: None,
                        field,
                        message: format!("no dataset feeds the dimension `{}`", reference.dimension),
                    }),
                    Some(target) if target.table.kind != TableKind::Dimension => self.problems.push(Problem {
                        line: None,
                        field,
                        message: format!("`{}` is a fact, not a dimension", reference.dimension),
                    }),
                    Some(target) if target.table.natural_key.len() != reference.columns.len() => {
                        self.problems.push(Problem {
                            line: None,
                            field,
                            message: format!(
                                "`{}` has a natural key of {} column(s) ({}); list as many fact columns",
                                reference.dimension,
                                target.table.natural_key.len(),
                                target.table.natural_key.join(", ")
                            ),
                        })
                    }
                    Some(_) => {}
                }
            }
        }
    }
}

fn column_span(config: &DatasetConfig, index: usize) -> Range<usize> {
    config.columns[index].span()
}
