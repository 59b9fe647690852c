//! Dataset contracts: `pipeline.toml` parsed, checked and compiled into the runtime types
//! the stages use. A bad contract fails here, before any data moves, naming the file, the
//! line and the field.

mod check;
mod config;
pub mod dqdl;
mod header;
pub mod source;

use std::fmt;
use std::path::Path;

pub use check::reserved_column;
pub use config::*;
pub use header::{normalize_header, sanitize_identifier};

use globset::GlobSet;
use regex::Regex;

use crate::types::{Bound, Reading};
pub use crate::types::{CompareOp, DataType};
use crate::{Error, Result};
use check::{Checker, line_of};

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
    /// How its text is read: the type with its format, zone and thousands separator.
    pub reading: Reading,
    /// The compiled `checks.regex`, anchored to the whole value.
    pub regex: Option<Regex>,
    /// The `checks.min` bound, typed, with its text as written.
    pub min: Option<(Bound, String)>,
    /// The `checks.max` bound, typed, with its text as written.
    pub max: Option<(Bound, String)>,
    /// The column as written in the contract.
    pub config: ColumnConfig,
    /// The normalised spellings of its header: its name and every alias.
    pub header_keys: Vec<String>,
}

impl Column {
    /// An optional text column without checks: what a column the contract does not declare
    /// evolves into (`schema_contract` columns = `evolve`).
    pub fn text(name: &str) -> Column {
        let config = ColumnConfig {
            name: name.to_string(),
            data_type: "string".to_string(),
            aliases: Vec::new(),
            required: false,
            format: None,
            timezone: None,
            thousands: None,
            case: None,
            checks: ChecksConfig::default(),
            pii: None,
            scd: None,
            target: None,
        };
        Column {
            name: name.to_string(),
            data_type: DataType::String,
            reading: Reading {
                data_type: DataType::String,
                thousands: None,
                format: None,
                zone: crate::types::Zone::Fixed(chrono::Offset::fix(&chrono::Utc)),
            },
            regex: None,
            min: None,
            max: None,
            header_keys: vec![normalize_header(name)],
            config,
        }
    }

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

    /// The columns as DQDL rules read them.
    pub fn rule_columns(&self) -> Vec<crate::quality::rules::RuleColumn> {
        self.columns
            .iter()
            .map(|column| crate::quality::rules::RuleColumn {
                name: column.name.clone(),
                data_type: column.data_type,
                format: column.reading.format.clone(),
                zone: column.reading.zone,
            })
            .collect()
    }

    /// The dataset's DQDL rulesets with their severity: `quality.dqdl` fails, `quality.dqdl_warn`
    /// warns.
    pub fn rulesets(&self) -> Vec<(&str, crate::quality::rules::Severity)> {
        let quality = &self.config.quality;
        [
            (&quality.dqdl, crate::quality::rules::Severity::Fail),
            (&quality.dqdl_warn, crate::quality::rules::Severity::Warn),
        ]
        .into_iter()
        .filter_map(|(text, severity)| text.as_ref().map(|text| (text.get_ref().as_str(), severity)))
        .collect()
    }
}

/// The suffix of the variant column that keeps, as text, the values a column's type could not
/// read (`schema_contract.data_type = "evolve"`): `unit_price__v_text`.
pub const VARIANT_SUFFIX: &str = "__v_text";

impl Dataset {
    /// Why a column a file brings cannot join the dataset as an evolved column, or `None` when
    /// it can: its name must be an identifier Lakestar does not reserve, and no column's name
    /// in the star table.
    pub fn refuses_evolved(&self, name: &str) -> Option<String> {
        if !is_identifier(name) {
            return Some(format!("`{name}` is not a lower-case identifier of at most 63 characters"));
        }
        if let Some(why) = reserved_column(name) {
            return Some(format!("`{name}` is {why}"));
        }
        if self.columns.iter().any(|column| column.name == name || column.target_name() == name) {
            return Some(format!("`{name}` is already a column of the dataset"));
        }
        None
    }

    /// The dataset with `names` added, in order, as optional text columns without checks or
    /// masking: what `schema_contract.columns = "evolve"` carries to processed, curated and the
    /// warehouse (a dimension keeps no history of them: they are overwritten, type 1).
    pub fn evolved(&self, names: &[String]) -> Dataset {
        let mut dataset = self.clone();
        for name in names {
            if dataset.column(name).is_some() {
                continue;
            }
            dataset.columns.push(Column::text(name));
        }
        dataset
    }
}

/// A validated `pipeline.toml`.
#[derive(Debug, Clone)]
pub struct Contract {
    /// Masking settings.
    pub masking: MaskingConfig,
    /// The calendar's settings.
    pub calendar: CalendarConfig,
    /// The datasets, ordered by name.
    pub datasets: Vec<Dataset>,
    /// The marts, ordered by name.
    pub marts: Vec<Mart>,
    /// The extraction sources, ordered by name.
    pub sources: Vec<source::Source>,
}

/// `dim_date`'s attributes a fact's view and a mart can show, as `date_<attribute>`.
pub const CALENDAR_ATTRIBUTES: [&str; 11] = [
    "date",
    "year",
    "quarter",
    "month",
    "month_name",
    "day_of_week",
    "day_name",
    "iso_week",
    "is_weekend",
    "fiscal_year",
    "fiscal_quarter",
];

/// The name a dimension's column has where a fact's attributes are shown (its view, a mart):
/// `<stem>_<column>` (`dim_product`'s `category` → `product_category`), or the column's own
/// name when it starts with the stem already (`product_name`).
pub fn attribute_name(dimension: &str, column: &str) -> String {
    let stem = dimension.strip_prefix("dim_").unwrap_or(dimension);
    match column.strip_prefix(stem) {
        Some(rest) if rest.starts_with('_') => column.to_string(),
        _ => format!("{stem}_{column}"),
    }
}

/// A validated mart.
#[derive(Debug, Clone, PartialEq)]
pub struct Mart {
    /// Its name: the materialized view's or table's.
    pub name: String,
    /// The fact table it aggregates.
    pub fact: String,
    /// Which dimension versions its attributes come from.
    pub as_of: AsOf,
    /// What it groups by, in order.
    pub group_by: Vec<MartGroup>,
    /// Its measures, by name.
    pub measures: Vec<Measure>,
}

impl Mart {
    /// Whether a load of `table` changes what the mart shows: its fact, or a dimension it
    /// groups by.
    pub fn depends_on(&self, table: &str) -> bool {
        self.fact == table || self.group_by.iter().any(|group| group.table.as_deref() == Some(table))
    }
}

/// One group-by column of a mart.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MartGroup {
    /// The dimension (`dim_date` included) the attribute is of, or `None` for the fact's own.
    pub table: Option<String>,
    /// The column in that table.
    pub column: String,
    /// The column's name in the mart.
    pub name: String,
}

/// One measure of a mart.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Measure {
    /// The column's name in the mart.
    pub name: String,
    /// The aggregate.
    pub function: Aggregate,
    /// The fact column aggregated, `None` for `count(*)`.
    pub column: Option<String>,
}

/// The aggregates a mart's measure can be.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Aggregate {
    /// `count(*)` or `count(<column>)`.
    Count,
    /// `count_distinct(<column>)`.
    CountDistinct,
    /// `sum(<column>)`.
    Sum,
    /// `avg(<column>)`.
    Avg,
    /// `min(<column>)`.
    Min,
    /// `max(<column>)`.
    Max,
}

impl Aggregate {
    /// The aggregate of a measure as written (`count_distinct`), if it is one.
    pub fn parse(text: &str) -> Option<Aggregate> {
        Some(match text {
            "count" => Aggregate::Count,
            "count_distinct" => Aggregate::CountDistinct,
            "sum" => Aggregate::Sum,
            "avg" => Aggregate::Avg,
            "min" => Aggregate::Min,
            "max" => Aggregate::Max,
            _ => return None,
        })
    }
}

impl Contract {
    /// Reads and validates a contract file.
    pub fn load(path: &Path) -> Result<Contract> {
        let text = std::fs::read_to_string(path).map_err(|source| Error::Io { path: path.to_path_buf(), source })?;
        Ok(Contract::parse(&path.display().to_string(), &text)?)
    }

    /// Parses and validates contract text; `file` names it in errors. Every problem is
    /// reported, not the first: a syntax error or an unknown field is recorded and its line
    /// set aside, and the rest is read again (up to a missing field, which cannot be set
    /// aside); the contract rules are then checked on what could be read.
    pub fn parse(file: &str, text: &str) -> Result<Contract, ContractError> {
        let (config, mut problems) = read_tolerantly(text);
        if let Some(config) = config {
            let mut checker = Checker { text, problems: Vec::new() };
            let contract = checker.contract(config);
            problems.extend(checker.problems);
            if problems.is_empty() {
                return Ok(contract);
            }
        }
        problems.sort_by_key(|problem| problem.line.unwrap_or(usize::MAX));
        Err(ContractError { file: file.to_string(), problems })
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

    /// The contract with `names` added to `dataset` as evolved columns ([`Dataset::evolved`]):
    /// what the stages after validate work with for a run that evolved its dataset.
    pub fn evolved(&self, dataset: &str, names: &[String]) -> Contract {
        let mut contract = self.clone();
        if names.is_empty() {
            return contract;
        }
        for each in &mut contract.datasets {
            if each.name == dataset {
                *each = each.evolved(names);
            }
        }
        contract
    }

    /// The source of that name.
    pub fn source(&self, name: &str) -> Option<&source::Source> {
        self.sources.iter().find(|source| source.name == name)
    }

    /// The sources of these names, in order (every source when none is named); a name the
    /// contract does not know is an error listing the ones it does.
    pub fn sources_named(&self, names: &[String]) -> Result<Vec<&source::Source>> {
        if names.is_empty() {
            return Ok(self.sources.iter().collect());
        }
        names
            .iter()
            .map(|name| {
                self.source(name).ok_or_else(|| {
                    let known: Vec<&str> = self.sources.iter().map(|source| source.name.as_str()).collect();
                    Error::InvalidInput(format!(
                        "no source `{name}` in the contract; its sources are: {}",
                        if known.is_empty() { "none".to_string() } else { known.join(", ") }
                    ))
                })
            })
            .collect()
    }

    /// The dataset that feeds the star table of that name.
    pub fn dataset_of_table(&self, table: &str) -> Option<&Dataset> {
        self.datasets.iter().find(|dataset| dataset.table.name == table)
    }
}

/// Reads `text` as a contract, recording each syntax error and unknown field with its line
/// and reading again with that line set aside (blanked, so line numbers stay), until it
/// reads or a problem cannot be set aside. Returns what could be read, and the problems.
fn read_tolerantly(text: &str) -> (Option<PipelineConfig>, Vec<Problem>) {
    const MOST: usize = 50;
    let mut working = text.to_string();
    let mut problems: Vec<Problem> = Vec::new();
    let mut set_aside = false;
    while problems.len() < MOST {
        let error = match toml::from_str::<PipelineConfig>(&working) {
            Ok(config) => return (Some(config), problems),
            Err(error) => error,
        };
        let message = error.message().trim().to_string();
        let line = error.span().map(|span| line_of(text, span.start));
        if problems.iter().any(|known| known.line == line && known.message == message) {
            break;
        }
        // A missing field cannot be set aside; after a line was, it may be that line's doing.
        let missing = message.starts_with("missing field");
        if missing && set_aside {
            break;
        }
        problems.push(Problem { line, field: String::new(), message: message.clone() });
        // A syntax error or an unknown field can be set aside (its line blanked); a problem
        // spanning lines cannot without changing what the rest means.
        let recoverable =
            message.starts_with("unknown field") || error.span().is_some_and(|span| !working[span].contains('\n'));
        let Some(span) = error.span().filter(|_| recoverable && !missing) else {
            break;
        };
        set_aside = true;
        let (start, end) = line_bounds(&working, span.start);
        if working[start..end].trim().is_empty() {
            break;
        }
        working.replace_range(start..end, &" ".repeat(end - start));
    }
    (None, problems)
}

/// The byte range of the line holding `offset`, without its newline.
fn line_bounds(text: &str, offset: usize) -> (usize, usize) {
    let start = text[..offset.min(text.len())].rfind('\n').map_or(0, |at| at + 1);
    let end = text[start..].find('\n').map_or(text.len(), |at| start + at);
    (start, end)
}

/// Whether `text` is a lower-case SQL-safe identifier: `[a-z][a-z0-9_]{0,62}`.
pub fn is_identifier(text: &str) -> bool {
    let mut chars = text.chars();
    matches!(chars.next(), Some('a'..='z'))
        && text.len() <= 63
        && chars.all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '_')
}

#[cfg(test)]
mod tests;
