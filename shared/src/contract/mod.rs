//! Dataset contracts: `pipeline.toml` parsed, checked and compiled into the runtime types
//! the stages use. A bad contract fails here, before any data moves, naming the file, the
//! line and the field.

mod config;
mod header;

use std::fmt;
use std::ops::Range;
use std::path::Path;

pub use config::*;
pub use header::{normalize_header, sanitize_identifier};

use globset::{GlobBuilder, GlobSet, GlobSetBuilder};
use regex::Regex;

use crate::{Error, Result};

/// A contract that failed to parse or to validate: every problem found, each with its
/// line and field.
#[derive(Debug, Clone)]
pub struct ContractError {
    /// The contract's file name or S3 key.
    pub file: String,
    /// What is wrong, in file order.
    pub problems: Vec<Problem>,
}

/// One problem of a contract.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Problem {
    /// The 1-based line where the offending section or value starts, when known.
    pub line: Option<usize>,
    /// The dotted path of the field, e.g. `datasets.sales.table.natural_key`.
    pub field: String,
    /// What is wrong and what is expected.
    pub message: String,
}

impl fmt::Display for ContractError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let count = self.problems.len();
        write!(f, "invalid contract {} ({count} problem{}):", self.file, if count == 1 { "" } else { "s" })?;
        for problem in &self.problems {
            write!(f, "\n  {}", self.file)?;
            if let Some(line) = problem.line {
                write!(f, ":{line}")?;
            }
            if problem.field.is_empty() {
                write!(f, ": {}", problem.message)?;
            } else {
                write!(f, ": {}: {}", problem.field, problem.message)?;
            }
        }
        Ok(())
    }
}

impl std::error::Error for ContractError {}

/// A column's type in `processed/` and beyond.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum DataType {
    /// UTF-8 text.
    String,
    /// A 64-bit signed integer.
    Integer,
    /// A fixed-point decimal: `precision` digits, `scale` of them after the point.
    Decimal {
        /// Total digits, 1 to 38.
        precision: u8,
        /// Digits after the point, at most `precision`.
        scale: u8,
    },
    /// A 64-bit float.
    Float,
    /// True or false.
    Boolean,
    /// A calendar date.
    Date,
    /// An instant, stored as UTC microseconds.
    Timestamp,
}

impl DataType {
    /// Parses a contract type name: `string`, `integer`, `decimal(p,s)`, `float`, `boolean`,
    /// `date`, `timestamp`.
    pub fn parse(text: &str) -> Option<DataType> {
        let text = text.trim().to_ascii_lowercase();
        let simple = match text.as_str() {
            "string" | "text" => Some(DataType::String),
            "integer" | "int" | "bigint" => Some(DataType::Integer),
            "float" | "double" => Some(DataType::Float),
            "boolean" | "bool" => Some(DataType::Boolean),
            "date" => Some(DataType::Date),
            "timestamp" => Some(DataType::Timestamp),
            _ => None,
        };
        if simple.is_some() {
            return simple;
        }
        let inner = text.strip_prefix("decimal(")?.strip_suffix(')')?;
        let (precision, scale) = inner.split_once(',')?;
        let precision: u8 = precision.trim().parse().ok()?;
        let scale: u8 = scale.trim().parse().ok()?;
        (1..=38).contains(&precision).then_some(())?;
        (scale <= precision).then_some(DataType::Decimal { precision, scale })
    }

    fn is_temporal(self) -> bool {
        matches!(self, DataType::Date | DataType::Timestamp)
    }

    fn is_numeric(self) -> bool {
        matches!(self, DataType::Integer | DataType::Float | DataType::Decimal { .. })
    }
}

/// A comparison operator of a cross-column rule.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CompareOp {
    /// `=`
    Eq,
    /// `!=`
    Ne,
    /// `<`
    Lt,
    /// `<=`
    Le,
    /// `>`
    Gt,
    /// `>=`
    Ge,
}

/// The right-hand side of a cross-column rule.
#[derive(Debug, Clone, PartialEq)]
pub enum Operand {
    /// Another column, by name.
    Column(String),
    /// A literal, compared after casting to the left column's type.
    Literal(String),
}

/// A validated cross-column rule.
#[derive(Debug, Clone)]
pub struct Rule {
    /// The rule's name, used as the reject reason.
    pub name: String,
    /// The column on the left.
    pub left: String,
    /// The comparison.
    pub op: CompareOp,
    /// The column or literal on the right.
    pub right: Operand,
}

/// A validated column.
#[derive(Debug, Clone)]
pub struct Column {
    /// The column's name.
    pub name: String,
    /// Its type.
    pub data_type: DataType,
    /// The compiled `checks.regex`, anchored to the whole value.
    pub regex: Option<Regex>,
    /// The column as written in the contract.
    pub config: ColumnConfig,
    /// The normalised spellings of its header: its name and every alias.
    pub header_keys: Vec<String>,
}

impl Column {
    /// The column's name in the star table.
    pub fn target_name(&self) -> &str {
        self.config.target.as_deref().unwrap_or(&self.name)
    }
}

/// A validated dataset.
#[derive(Debug, Clone)]
pub struct Dataset {
    /// The dataset's name.
    pub name: String,
    /// Its columns, in contract order.
    pub columns: Vec<Column>,
    /// The table it feeds.
    pub table: TableConfig,
    /// Its cross-column rules.
    pub rules: Vec<Rule>,
    /// The CSV delimiter, or `None` to sniff it.
    pub delimiter: Option<u8>,
    /// The declared text encoding.
    pub encoding: &'static encoding_rs::Encoding,
    /// The dataset as written in the contract.
    pub config: DatasetConfig,
    matcher: GlobSet,
}

impl Dataset {
    /// Whether the landing key belongs to this dataset.
    pub fn matches(&self, key: &str) -> bool {
        self.matcher.is_match(key)
    }

    /// The column of that name.
    pub fn column(&self, name: &str) -> Option<&Column> {
        self.columns.iter().find(|column| column.name == name)
    }
}

/// A validated `pipeline.toml`.
#[derive(Debug, Clone)]
pub struct Contract {
    /// Masking settings.
    pub masking: MaskingConfig,
    /// The datasets, ordered by name.
    pub datasets: Vec<Dataset>,
}

impl Contract {
    /// Reads and validates a contract file.
    pub fn load(path: &Path) -> Result<Contract> {
        let text = std::fs::read_to_string(path).map_err(|source| Error::Io { path: path.to_path_buf(), source })?;
        Ok(Contract::parse(&path.display().to_string(), &text)?)
    }

    /// Parses and validates contract text; `file` names it in errors.
    pub fn parse(file: &str, text: &str) -> Result<Contract, ContractError> {
        let config: PipelineConfig = toml::from_str(text).map_err(|error| ContractError {
            file: file.to_string(),
            problems: vec![Problem {
                line: error.span().map(|span| line_of(text, span.start)),
                field: String::new(),
                message: error.message().trim().to_string(),
            }],
        })?;
        let mut checker = Checker { text, problems: Vec::new() };
        let contract = checker.contract(config);
        if checker.problems.is_empty() {
            // Types, zones and bounds are compiled as validate will use them.
            for dataset in &contract.datasets {
                if let Err(error) = crate::validate::DatasetPlan::new(dataset) {
                    checker.problems.extend(error.problems);
                }
            }
        }
        if checker.problems.is_empty() {
            Ok(contract)
        } else {
            Err(ContractError { file: file.to_string(), problems: checker.problems })
        }
    }

    /// The dataset a landing key belongs to.
    pub fn dataset_for_key(&self, key: &str) -> Result<&Dataset> {
        let mut matching = self.datasets.iter().filter(|dataset| dataset.matches(key));
        let first = matching.next().ok_or_else(|| Error::UnknownDataset { key: key.to_string() })?;
        let others: Vec<&str> = matching.map(|dataset| dataset.name.as_str()).collect();
        if others.is_empty() {
            Ok(first)
        } else {
            Err(Error::AmbiguousDataset {
                key: key.to_string(),
                datasets: std::iter::once(first.name.as_str()).chain(others).map(str::to_string).collect(),
            })
        }
    }

    /// The dataset of that name.
    pub fn dataset(&self, name: &str) -> Option<&Dataset> {
        self.datasets.iter().find(|dataset| dataset.name == name)
    }
}

fn line_of(text: &str, offset: usize) -> usize {
    text.as_bytes()[..offset.min(text.len())].iter().filter(|&&byte| byte == b'\n').count() + 1
}

/// Collects every problem of a contract while compiling it.
struct Checker<'a> {
    text: &'a str,
    problems: Vec<Problem>,
}

impl Checker<'_> {
    fn problem(&mut self, span: &Range<usize>, field: String, message: impl Into<String>) {
        let line = Some(line_of(self.text, span.start));
        self.problems.push(Problem { line, field, message: message.into() });
    }

    fn contract(&mut self, config: PipelineConfig) -> Contract {
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

    fn column(&mut self, path: &str, span: Range<usize>, config: ColumnConfig, kind: TableKind) -> Option<Column> {
        let path = format!("{path} ({})", config.name);
        if !is_identifier(&config.name) {
            self.problem(
                &span,
                format!("{path}.name"),
                "a column name must be a lower-case identifier such as `customer_id`",
            );
        }
        if let Some(target) = &config.target
            && !is_identifier(target)
        {
            self.problem(&span, format!("{path}.target"), format!("`{target}` is not a lower-case identifier"));
        }
        let Some(data_type) = DataType::parse(&config.data_type) else {
            self.problem(&span, format!("{path}.type"), format!("unknown type `{}`: expected string, integer, decimal(p,s) with 1 ≤ p ≤ 38 and s ≤ p, float, boolean, date or timestamp", config.data_type));
            return None;
        };
        if (config.format.is_some() || config.timezone.is_some()) && !data_type.is_temporal() {
            self.problem(
                &span,
                format!("{path}.format"),
                "`format` and `timezone` apply only to date and timestamp columns",
            );
        }
        if config.thousands.is_some() && !data_type.is_numeric() {
            self.problem(&span, format!("{path}.thousands"), "`thousands` applies only to numeric columns");
        }
        let checks = &config.checks;
        for (name, value) in [("min", &checks.min), ("max", &checks.max)] {
            let Some(value) = value else { continue };
            let fits = match value {
                toml::Value::Integer(_) | toml::Value::Float(_) => data_type.is_numeric(),
                toml::Value::String(text) => {
                    data_type.is_temporal() && chrono::NaiveDate::parse_from_str(text, "%Y-%m-%d").is_ok()
                }
                toml::Value::Datetime(_) => data_type.is_temporal(),
                _ => false,
            };
            if !fits {
                self.problem(&span, format!("{path}.checks.{name}"), "expected a number for a numeric column or an ISO date (`2024-01-31`) for a date or timestamp column");
            }
        }
        if (checks.min_length.is_some() || checks.max_length.is_some() || checks.email) && data_type != DataType::String
        {
            self.problem(
                &span,
                format!("{path}.checks"),
                "`min_length`, `max_length` and `email` apply only to string columns",
            );
        }
        let regex = checks.regex.as_ref().and_then(|pattern| match Regex::new(&format!("^(?:{pattern})$")) {
            Ok(regex) => Some(regex),
            Err(error) => {
                self.problem(&span, format!("{path}.checks.regex"), format!("not a valid regular expression: {error}"));
                None
            }
        });
        if let Some(pii) = &config.pii {
            self.pii(&span, &path, pii, data_type);
        }
        if let Some(scd) = config.scd {
            if kind != TableKind::Dimension {
                self.problem(&span, format!("{path}.scd"), "`scd` applies only to columns of a dimension table");
            } else if scd != 1 && scd != 2 {
                self.problem(&span, format!("{path}.scd"), "expected 1 (overwrite) or 2 (keep history)");
            }
        }
        let mut header_keys = vec![normalize_header(&config.name)];
        for alias in &config.aliases {
            let key = normalize_header(alias);
            if key.is_empty() {
                self.problem(&span, format!("{path}.aliases"), format!("alias `{alias}` has no letter or digit"));
            } else if !header_keys.contains(&key) {
                header_keys.push(key);
            }
        }
        Some(Column { name: config.name.clone(), data_type, regex, config, header_keys })
    }

    fn pii(&mut self, span: &Range<usize>, path: &str, pii: &PiiConfig, data_type: DataType) {
        let field = format!("{path}.pii");
        if let Some(encoding) = &pii.encoding
            && !matches!(encoding.as_str(), "hex" | "base64url")
        {
            self.problem(span, format!("{field}.encoding"), "expected `hex` or `base64url`");
        }
        match pii.method {
            PiiMethod::Hash | PiiMethod::EmailHash | PiiMethod::Redact => {}
            PiiMethod::Partial => {
                if pii.reveal == Some(0) {
                    self.problem(span, format!("{field}.reveal"), "reveal at least one character, or use `redact`");
                }
            }
            PiiMethod::Token => {
                if pii.prefix.as_deref().is_none_or(str::is_empty) {
                    self.problem(span, format!("{field}.prefix"), "a token needs a prefix, e.g. `prefix = \"CUST-\"`");
                }
            }
            PiiMethod::Generalize => match pii.to.as_deref() {
                Some("month" | "year" | "age_band") if data_type.is_temporal() => {}
                Some("postcode_district") if data_type == DataType::String => {}
                Some(other) => self.problem(span, format!("{field}.to"), format!("cannot generalise a {data_type:?} column to `{other}`: use `month`, `year` or `age_band` for dates, `postcode_district` for UK postcodes")),
                None => self.problem(span, format!("{field}.to"), "say what to generalise to: `month`, `year`, `age_band` or `postcode_district`"),
            },
        }
    }

    fn table(&mut self, path: &str, span: Range<usize>, table: &TableConfig, columns: &[Column]) {
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

    fn rule(&mut self, path: &str, span: Range<usize>, rule: &RuleConfig, columns: &[Column]) -> Option<Rule> {
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
            None => Operand::Literal(right.trim_matches('\'').to_string()),
        };
        Some(Rule { name: rule.name.clone(), left, op, right })
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

/// Whether `text` is a lower-case SQL-safe identifier: `[a-z][a-z0-9_]{0,62}`.
pub fn is_identifier(text: &str) -> bool {
    let mut chars = text.chars();
    matches!(chars.next(), Some('a'..='z'))
        && text.len() <= 63
        && chars.all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '_')
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

#[cfg(test)]
mod tests;
