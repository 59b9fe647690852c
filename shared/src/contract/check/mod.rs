//! The contract's checks: every problem of a `pipeline.toml` collected with its line and
//! field while the configuration is compiled into the runtime types of [`super`].

use std::ops::Range;

use globset::{GlobBuilder, GlobSet, GlobSetBuilder};

use super::*;
use crate::contract::dqdl;

mod columns;
mod marts;
mod sources;
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
        let calendar = config.calendar;
        if !(1..=12).contains(&calendar.fiscal_year_start_month) {
            self.problems.push(Problem {
                line: None,
                field: "calendar.fiscal_year_start_month".to_string(),
                message: format!("`{}` is not a month: give 1 (January) to 12", calendar.fiscal_year_start_month),
            });
        }
        if calendar.margin_days > 3660 {
            self.problems.push(Problem {
                line: None,
                field: "calendar.margin_days".to_string(),
                message: format!("{} days is more than ten years of calendar: give at most 3660", calendar.margin_days),
            });
        }
        let marts = self.marts(&config.marts, &datasets);
        let sources = self.sources(&config.sources, &datasets);
        Contract { masking: config.masking, calendar, datasets, marts, sources }
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
            if let Some(why) = never_matches(pattern) {
                self.problem(&span, format!("{path}.match"), format!("pattern `{pattern}` can never match: {why}"));
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
                if columns.iter().any(|other| other.name == column.name) {
                    self.problem(
                        &column_span(&config, index),
                        format!("{column_path}.name"),
                        format!("two columns are named `{}`: give each its own name (other spellings of a header are `aliases`)", column.name),
                    );
                    continue;
                }
                if let Some(other) = columns.iter().find(|other| other.target_name() == column.target_name()) {
                    self.problem(
                        &column_span(&config, index),
                        format!("{column_path}.target"),
                        format!(
                            "`{}` and `{}` would both be the star table's column `{}`",
                            other.name,
                            column.name,
                            column.target_name()
                        ),
                    );
                }
                if let Some(why) = reserved_column(column.target_name()) {
                    self.problem(
                        &column_span(&config, index),
                        format!("{column_path}.name"),
                        format!(
                            "`{}` is {why}: name the column otherwise (or give it a `target`)",
                            column.target_name()
                        ),
                    );
                }
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

        for (index, check) in config.quality.warehouse.iter().enumerate() {
            let field = format!("{path}.quality.warehouse[{index}]");
            if !is_identifier(&check.name) {
                self.problem(&span, format!("{field}.name"), "a check's name must be a lower-case identifier");
            }
            let sql = check.sql.trim().trim_end_matches(';');
            let first = sql.split_whitespace().next().unwrap_or("").to_ascii_lowercase();
            if !(first == "select" || first == "with") || sql.contains(';') {
                self.problem(
                    &span,
                    format!("{field}.sql"),
                    "one SELECT (or WITH … SELECT) returning the number of offending rows, e.g. `SELECT count(*) FROM fact_sales WHERE quantity > 1000`",
                );
            }
        }
        let dataset = Dataset { name: name.to_string(), columns, table, rules, delimiter, encoding, config, matcher };
        let rulesets = [
            ("dqdl", &dataset.config.quality.dqdl, crate::quality::rules::Severity::Fail),
            ("dqdl_warn", &dataset.config.quality.dqdl_warn, crate::quality::rules::Severity::Warn),
        ];
        for (field, text, severity) in rulesets {
            if let Some(text) = text {
                self.dqdl(&format!("{path}.quality.{field}"), text, severity, &dataset);
            }
        }
        dataset
    }

    /// A DQDL ruleset: parsed, then compiled against the dataset's columns and types; each
    /// mistake named at its line of the file and its line and column in the ruleset.
    fn dqdl(
        &mut self,
        field: &str,
        dqdl: &toml::Spanned<String>,
        severity: crate::quality::rules::Severity,
        dataset: &Dataset,
    ) {
        let first_line = self.first_line_of(dqdl);
        let mut problem = |line: usize, message: String| {
            self.problems.push(Problem { line: Some(first_line + line - 1), field: field.to_string(), message });
        };
        let ruleset = match dqdl::parse(dqdl.get_ref()) {
            Ok(ruleset) => ruleset,
            Err(error) => return problem(error.line, error.to_string()),
        };
        let mut rules = crate::quality::rules::Rules::new(dataset.rule_columns(), chrono::Utc::now());
        if let Err(errors) = rules.add(&ruleset, severity) {
            for error in errors {
                problem(
                    error.line,
                    format!("line {} column {} of the ruleset: {}", error.line, error.column, error.message),
                );
            }
        }
    }

    /// The file's line of a multi-line string's first line: its first newline, right after
    /// its opening quotes, is not part of its value.
    fn first_line_of(&self, text: &toml::Spanned<String>) -> usize {
        let span = text.span();
        let opening = &self.text[span.start.min(self.text.len())..];
        let skipped = usize::from(opening.starts_with("\"\"\"\n") || opening.starts_with("'''\n"));
        line_of(self.text, span.start) + skipped
    }

    /// What is wrong with the other dataset a rule compares with (`SchemaMatch`,
    /// `ReferentialIntegrity`): it is missing, lacks a column, or holds another type.
    fn other_dataset_problem(dataset: &Dataset, rule: &dqdl::SimpleRule, datasets: &[Dataset]) -> Option<String> {
        let find = |name: &str| -> Result<&Dataset, String> {
            datasets.iter().find(|other| other.name == name).ok_or_else(|| {
                let names: Vec<&str> = datasets.iter().map(|other| other.name.as_str()).collect();
                format!(
                    "compares with the dataset `{name}`, which the contract lacks; its datasets are: {}",
                    names.join(", ")
                )
            })
        };
        match rule.kind {
            dqdl::RuleKind::SchemaMatch => find(rule.parameters.first().map(String::as_str).unwrap_or("")).err(),
            dqdl::RuleKind::ReferentialIntegrity => {
                // The rule's own syntax is the compiler's to judge.
                let reference = crate::quality::rules::Reference::parse(rule.parameters.get(1)?).ok()?;
                let keys = crate::quality::rules::Reference::key_columns(rule.parameters.first()?);
                let other = match find(&reference.dataset) {
                    Ok(other) => other,
                    Err(message) => return Some(message),
                };
                for (key, name) in keys.iter().zip(&reference.columns) {
                    let ours = dataset.column(key)?;
                    let Some(theirs) = other.column(name) else {
                        let known: Vec<&str> = other.columns.iter().map(|column| column.name.as_str()).collect();
                        return Some(format!(
                            "looks keys up in `{}.{name}`, which that dataset does not declare; its columns are: {}",
                            other.name,
                            known.join(", ")
                        ));
                    };
                    if theirs.data_type != ours.data_type {
                        return Some(format!(
                            "compares `{key}` ({}) with `{}.{name}` ({}): keys match only between columns of one type; declare them alike",
                            crate::types::type_name(ours.data_type),
                            other.name,
                            crate::types::type_name(theirs.data_type)
                        ));
                    }
                }
                None
            }
            _ => None,
        }
    }

    fn cross_dataset(&mut self, datasets: &[Dataset]) {
        // A DQDL SchemaMatch and ReferentialIntegrity compare with another dataset of the contract.
        for dataset in datasets {
            let quality = &dataset.config.quality;
            for (text, field) in [(&quality.dqdl, "dqdl"), (&quality.dqdl_warn, "dqdl_warn")] {
                let Some(text) = text else { continue };
                let Ok(ruleset) = dqdl::parse(text.get_ref()) else { continue };
                let first_line = self.first_line_of(text);
                let mut stack: Vec<&dqdl::Rule> = ruleset.rules.iter().collect();
                while let Some(rule) = stack.pop() {
                    let simple = match rule {
                        dqdl::Rule::And(parts) | dqdl::Rule::Or(parts) => {
                            stack.extend(parts);
                            continue;
                        }
                        dqdl::Rule::Simple(simple) => simple,
                    };
                    if let Some(message) = Self::other_dataset_problem(dataset, simple, datasets) {
                        self.problems.push(Problem {
                            line: Some(first_line + simple.line - 1),
                            field: format!("datasets.{}.quality.{field}", dataset.name),
                            message: format!(
                                "line {} column {} of the ruleset: `{}` {message}",
                                simple.line, simple.column, simple.text
                            ),
                        });
                    }
                }
            }
        }
        // Two datasets whose patterns can match one key: the key would match neither.
        for (index, dataset) in datasets.iter().enumerate() {
            for other in &datasets[index + 1..] {
                let overlap = dataset
                    .config
                    .patterns
                    .iter()
                    .map(|pattern| sample_key(pattern))
                    .find(|key| other.matches(key))
                    .or_else(|| {
                        other.config.patterns.iter().map(|pattern| sample_key(pattern)).find(|key| dataset.matches(key))
                    });
                if let Some(key) = overlap {
                    self.problems.push(Problem {
                        line: None,
                        field: format!("datasets.{}.match", other.name),
                        message: format!(
                            "datasets `{}` and `{}` both match keys such as `{key}`, which then belong to neither: make their `match` patterns exclusive",
                            dataset.name, other.name
                        ),
                    });
                }
            }
        }
        // A table named like another's view or index (`dim_x_current`, `fact_x_detail`, `…_cur`,
        // `…_versions`): the warehouse holds one relation of a name.
        for dataset in datasets {
            for other in datasets {
                let derived = [
                    format!("{}_current", other.table.name),
                    format!("{}_detail", other.table.name),
                    format!("{}_cur", other.table.name),
                    format!("{}_versions", other.table.name),
                ];
                if derived.contains(&dataset.table.name) {
                    self.problems.push(Problem {
                        line: None,
                        field: format!("datasets.{}.table.name", dataset.name),
                        message: format!(
                            "`{}` is the name of a view or index Lakestar makes for `{}`: name the table otherwise",
                            dataset.table.name, other.table.name
                        ),
                    });
                }
            }
        }
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

/// Why a star table may not have a column of that name: it is one of Lakestar's own.
pub fn reserved_column(name: &str) -> Option<&'static str> {
    match name {
        "row_hash" | "type1_hash" | "type1_from" | "valid_from" | "valid_to" | "is_current" | "is_inferred" => {
            Some("one of the columns Lakestar keeps history with in a dimension")
        }
        "run_id" | "date_key" => Some("a column Lakestar adds to every star table"),
        name if name.ends_with("_key") => {
            Some("the form of a surrogate key (`<stem>_key`), which Lakestar names after dimensions")
        }
        _ => None,
    }
}

/// Why a dataset may not feed a table of that name: Lakestar's own, or too long for the
/// names Lakestar derives from it (`<table>_versions`, `<table>_current`).
pub(super) fn reserved_table(name: &str) -> Option<String> {
    const LONGEST: usize = 63 - "_versions".len();
    match name {
        "dim_date" => Some("Lakestar's own calendar dimension".to_string()),
        "load_audit" | "quality_metrics" => Some("one of Lakestar's own tables".to_string()),
        name if name.starts_with("lakestar_") => Some("a name of Lakestar's own tables (`lakestar_…`)".to_string()),
        name if name.len() > LONGEST => Some(format!(
            "{} characters long: at most {LONGEST}, so that the names Lakestar derives from it (`{name}_versions`) stay identifiers",
            name.len()
        )),
        _ => None,
    }
}

/// A key a glob pattern matches, for telling whether two datasets' patterns overlap: every
/// wildcard replaced by a plain segment.
fn sample_key(pattern: &str) -> String {
    let mut out = String::new();
    let mut chars = pattern.chars().peekable();
    while let Some(c) = chars.next() {
        match c {
            '*' => {
                if chars.peek() == Some(&'*') {
                    chars.next();
                }
                out.push('x');
            }
            '?' => out.push('x'),
            '[' => {
                let mut first = None;
                for inner in chars.by_ref() {
                    if inner == ']' {
                        break;
                    }
                    if first.is_none() && inner != '!' && inner != '^' {
                        first = Some(inner);
                    }
                }
                out.push(first.unwrap_or('x'));
            }
            '{' => {
                let mut alternative = String::new();
                let mut taking = true;
                for inner in chars.by_ref() {
                    match inner {
                        '}' => break,
                        ',' => taking = false,
                        other if taking => alternative.push(other),
                        _ => {}
                    }
                }
                out.push_str(&alternative);
            }
            other => out.push(other),
        }
    }
    out
}

/// Why a `match` pattern can never match a landing key (`None` when it can).
fn never_matches(pattern: &str) -> Option<&'static str> {
    let rest = pattern.strip_prefix("landing/").unwrap_or(pattern);
    let segments: Vec<&str> = rest.split('/').collect();
    if segments.iter().any(|segment| *segment == ".." || *segment == ".") {
        Some("a landing key never holds `.` or `..` segments")
    } else if rest.is_empty() || rest.ends_with('/') {
        Some("it names a folder, not the files in it (end it with `*` or a file name)")
    } else if segments.iter().any(|segment| segment.is_empty()) {
        Some("a landing key never holds an empty segment (`//`)")
    } else {
        None
    }
}
