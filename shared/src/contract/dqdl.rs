//! DQDL, AWS Glue Data Quality's rule language, parsed as written for Glue: `Rules = [ … ]`
//! of rules (`<RuleType> <parameter>… <expression> [where "…"] [with threshold …]`) and of
//! `and`/`or` composites of parenthesised rules. A mistake is named with its line and column
//! inside the ruleset and what was expected there.

use std::fmt;

pub use crate::types::CompareOp as Operator;

/// A parsed ruleset.
#[derive(Debug, Clone, PartialEq)]
pub struct Ruleset {
    /// The rules, in order.
    pub rules: Vec<Rule>,
}

/// A rule: one rule type's rule, or a composite.
#[derive(Debug, Clone, PartialEq)]
pub enum Rule {
    /// One rule type with its parameters.
    Simple(Box<SimpleRule>),
    /// Every rule holds.
    And(Vec<Rule>),
    /// At least one rule holds.
    Or(Vec<Rule>),
}

/// One rule type's rule.
#[derive(Debug, Clone, PartialEq)]
pub struct SimpleRule {
    /// The rule type.
    pub kind: RuleKind,
    /// Its parameters: column names, SQL, a reference, in order.
    pub parameters: Vec<String>,
    /// What its measure must satisfy.
    pub condition: Option<Condition>,
    /// The `where` clause's SQL condition.
    pub filter: Option<String>,
    /// `with threshold`: the share of rows that must pass a row-level rule.
    pub threshold: Option<Condition>,
    /// The rule as written, whitespace collapsed: a quarantined row's reason.
    pub text: String,
    /// Its 1-based line in the ruleset.
    pub line: usize,
    /// Its 1-based column in the ruleset.
    pub column: usize,
}

/// What a measure must satisfy.
#[derive(Debug, Clone, PartialEq)]
pub enum Condition {
    /// `= x`, `!= x`, `> x`, `>= x`, `< x`, `<= x`.
    Compare(Operator, Value),
    /// `[not] between a and b` (exclusive, as DQDL defines it).
    Between {
        /// The lower bound.
        low: Value,
        /// The upper bound.
        high: Value,
        /// `not between`.
        negated: bool,
    },
    /// `[not] in [a, b, …]`.
    In {
        /// The values.
        values: Vec<Value>,
        /// `not in`.
        negated: bool,
    },
    /// `[not] matches "regex"`.
    Matches {
        /// The regular expression.
        pattern: String,
        /// `not matches`.
        negated: bool,
    },
}

/// A value of an expression.
#[derive(Debug, Clone, PartialEq)]
pub enum Value {
    /// A number as written.
    Number(String),
    /// A quoted string.
    Text(String),
    /// `NULL`.
    Null,
    /// `EMPTY` (the empty string).
    Empty,
    /// `WHITESPACES_ONLY`.
    WhitespacesOnly,
    /// A duration: `24 hours`, `3 days`, `10 minutes`.
    Duration {
        /// How many units.
        amount: String,
        /// `minutes`, `hours` or `days`.
        unit: String,
    },
    /// `now()`, optionally less a duration: `(now() - 3 days)`.
    Now {
        /// The duration added to now, in seconds: negative for `now() - …`.
        offset_seconds: i64,
    },
}

/// The rule types Lakestar evaluates.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RuleKind {
    /// Every value of a column is present (row level).
    IsComplete,
    /// The share of present values (row level, dataset measure).
    Completeness,
    /// A column's values (row level).
    ColumnValues,
    /// A column's values' lengths (row level).
    ColumnLength,
    /// A column's values' data type (row level).
    ColumnDataType,
    /// How old a timestamp column's values are (row level).
    DataFreshness,
    /// A SQL query: its single value, or in its row-level form the rows it selects.
    CustomSql,
    /// The number of rows.
    RowCount,
    /// The number of columns.
    ColumnCount,
    /// A column is present.
    ColumnExists,
    /// Every column's name matches a pattern.
    ColumnNamesMatchPattern,
    /// A column's values are all distinct.
    IsUnique,
    /// Columns are complete and unique together.
    IsPrimaryKey,
    /// The share of values that occur once.
    Uniqueness,
    /// Distinct values over all values.
    UniqueValueRatio,
    /// The number of distinct values.
    DistinctValuesCount,
    /// The mean of a numeric column.
    Mean,
    /// The sum of a numeric column.
    Sum,
    /// The standard deviation of a numeric column.
    StandardDeviation,
    /// The entropy of a column's values.
    Entropy,
    /// A column's values found in another dataset's column.
    ReferentialIntegrity,
    /// The row count against another dataset's (the previous run's).
    RowCountMatch,
    /// The columns against another dataset's.
    SchemaMatch,
}

/// Whether a rule type takes an expression.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Takes {
    Expression,
    Nothing,
    Either,
}

/// A rule type's name, parameters (least, most), expression, and whether it is row-level.
type Signature = (RuleKind, &'static str, (usize, usize), Takes, bool);

impl RuleKind {
    /// Every rule type: its name, its parameters (least, most), whether it takes an expression,
    /// and whether it judges rows (a failing row is quarantined) rather than the dataset.
    const ALL: [Signature; 23] = [
        (RuleKind::IsComplete, "IsComplete", (1, 1), Takes::Nothing, true),
        (RuleKind::Completeness, "Completeness", (1, 1), Takes::Expression, true),
        (RuleKind::ColumnValues, "ColumnValues", (1, 1), Takes::Expression, true),
        (RuleKind::ColumnLength, "ColumnLength", (1, 1), Takes::Expression, true),
        (RuleKind::ColumnDataType, "ColumnDataType", (1, 1), Takes::Expression, true),
        (RuleKind::DataFreshness, "DataFreshness", (1, 1), Takes::Expression, true),
        (RuleKind::CustomSql, "CustomSql", (1, 1), Takes::Either, true),
        (RuleKind::RowCount, "RowCount", (0, 0), Takes::Expression, false),
        (RuleKind::ColumnCount, "ColumnCount", (0, 0), Takes::Expression, false),
        (RuleKind::ColumnExists, "ColumnExists", (1, 1), Takes::Nothing, false),
        (RuleKind::ColumnNamesMatchPattern, "ColumnNamesMatchPattern", (1, 1), Takes::Nothing, false),
        (RuleKind::IsUnique, "IsUnique", (1, 1), Takes::Nothing, false),
        (RuleKind::IsPrimaryKey, "IsPrimaryKey", (1, 16), Takes::Nothing, false),
        (RuleKind::Uniqueness, "Uniqueness", (1, 1), Takes::Expression, false),
        (RuleKind::UniqueValueRatio, "UniqueValueRatio", (1, 1), Takes::Expression, false),
        (RuleKind::DistinctValuesCount, "DistinctValuesCount", (1, 1), Takes::Expression, false),
        (RuleKind::Mean, "Mean", (1, 1), Takes::Expression, false),
        (RuleKind::Sum, "Sum", (1, 1), Takes::Expression, false),
        (RuleKind::StandardDeviation, "StandardDeviation", (1, 1), Takes::Expression, false),
        (RuleKind::Entropy, "Entropy", (1, 1), Takes::Expression, false),
        (RuleKind::ReferentialIntegrity, "ReferentialIntegrity", (2, 2), Takes::Expression, false),
        (RuleKind::RowCountMatch, "RowCountMatch", (1, 1), Takes::Expression, false),
        (RuleKind::SchemaMatch, "SchemaMatch", (1, 1), Takes::Expression, false),
    ];

    /// DQDL rule types Lakestar refuses, by name.
    pub const REFUSED: [&'static str; 9] = [
        "AggregateMatch",
        "AllStatistics",
        "ColumnCorrelation",
        "DatasetMatch",
        "DetectAnomalies",
        "FileFreshness",
        "FileMatch",
        "FileSize",
        "FileUniqueness",
    ];

    fn entry(self) -> Signature {
        Self::ALL.iter().copied().find(|entry| entry.0 == self).unwrap_or(Self::ALL[0])
    }

    /// The rule type's name in DQDL.
    pub fn name(self) -> &'static str {
        self.entry().1
    }

    /// Whether the rule judges rows (a failing row is quarantined with the rule as its reason).
    pub fn row_level(self) -> bool {
        self.entry().4
    }

    fn parse(name: &str) -> Option<RuleKind> {
        Self::ALL.iter().find(|entry| entry.1 == name).map(|entry| entry.0)
    }
}

/// A ruleset that does not parse: where, and what was expected.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DqdlError {
    /// The 1-based line inside the ruleset.
    pub line: usize,
    /// The 1-based column inside the ruleset.
    pub column: usize,
    /// What is wrong and what was expected.
    pub message: String,
}

impl fmt::Display for DqdlError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "line {} column {} of the ruleset: {}", self.line, self.column, self.message)
    }
}

#[derive(Debug, Clone, PartialEq)]
enum Token {
    Word(String),
    Text(String),
    Number(String),
    Symbol(&'static str),
}

impl fmt::Display for Token {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Token::Word(word) => write!(f, "`{word}`"),
            Token::Text(text) => write!(f, "\"{text}\""),
            Token::Number(number) => write!(f, "`{number}`"),
            Token::Symbol(symbol) => write!(f, "`{symbol}`"),
        }
    }
}

struct Located {
    token: Token,
    line: usize,
    column: usize,
    start: usize,
    end: usize,
}

fn tokens(text: &str) -> Result<Vec<Located>, DqdlError> {
    let mut out = Vec::new();
    let chars: Vec<(usize, char)> = text.char_indices().collect();
    let (mut index, mut line, mut line_start) = (0usize, 1usize, 0usize);
    while index < chars.len() {
        let (at, c) = chars[index];
        let column = text[line_start..at].chars().count() + 1;
        let error = |message: String| DqdlError { line, column, message };
        if c == '\n' {
            line += 1;
            line_start = at + 1;
            index += 1;
            continue;
        }
        if c.is_whitespace() {
            index += 1;
            continue;
        }
        if c == '#' {
            while index < chars.len() && chars[index].1 != '\n' {
                index += 1;
            }
            continue;
        }
        let start = at;
        let token = if c == '"' {
            let mut value = String::new();
            index += 1;
            loop {
                let Some(&(_, c)) = chars.get(index) else {
                    return Err(error("a string that is never closed: end it with `\"`".to_string()));
                };
                index += 1;
                match c {
                    '"' => break,
                    '\\' => {
                        if let Some(&(_, escaped)) = chars.get(index) {
                            value.push(escaped);
                            index += 1;
                        }
                    }
                    '\n' => {
                        return Err(error("a string that runs past the end of its line: end it with `\"`".to_string()));
                    }
                    c => value.push(c),
                }
            }
            Token::Text(value)
        } else if c.is_ascii_digit()
            || (c == '.' && chars.get(index + 1).is_some_and(|(_, next)| next.is_ascii_digit()))
        {
            let begin = index;
            while chars.get(index).is_some_and(|(_, c)| c.is_ascii_digit() || *c == '.') {
                index += 1;
            }
            Token::Number(chars[begin..index].iter().map(|(_, c)| c).collect())
        } else if c.is_alphabetic() || c == '_' {
            let begin = index;
            while chars.get(index).is_some_and(|(_, c)| c.is_alphanumeric() || *c == '_') {
                index += 1;
            }
            Token::Word(chars[begin..index].iter().map(|(_, c)| c).collect())
        } else {
            let next = chars.get(index + 1).map(|(_, c)| *c);
            let (symbol, width) = match (c, next) {
                ('!', Some('=')) => ("!=", 2),
                ('<', Some('>')) => ("!=", 2),
                ('>', Some('=')) => (">=", 2),
                ('<', Some('=')) => ("<=", 2),
                ('=', _) => ("=", 1),
                ('>', _) => (">", 1),
                ('<', _) => ("<", 1),
                ('[', _) => ("[", 1),
                (']', _) => ("]", 1),
                ('(', _) => ("(", 1),
                (')', _) => (")", 1),
                (',', _) => (",", 1),
                ('-', _) => ("-", 1),
                ('+', _) => ("+", 1),
                _ => {
                    return Err(error(format!(
                        "unexpected `{c}`: rules are words, \"quoted\" names and values, numbers and operators"
                    )));
                }
            };
            index += width;
            Token::Symbol(symbol)
        };
        let end = chars.get(index).map_or(text.len(), |(at, _)| *at);
        out.push(Located { token, line, column, start, end });
    }
    Ok(out)
}

struct Parser<'a> {
    text: &'a str,
    tokens: Vec<Located>,
    at: usize,
    lines: usize,
}

/// Parses a ruleset as written for Glue.
pub fn parse(text: &str) -> Result<Ruleset, DqdlError> {
    let tokens = tokens(text)?;
    let mut parser = Parser { text, tokens, at: 0, lines: text.lines().count().max(1) };
    parser.ruleset()
}

impl Parser<'_> {
    fn peek(&self) -> Option<&Token> {
        self.tokens.get(self.at).map(|located| &located.token)
    }

    fn error(&self, expected: &str) -> DqdlError {
        match self.tokens.get(self.at) {
            Some(located) => DqdlError {
                line: located.line,
                column: located.column,
                message: format!("expected {expected}, found {}", located.token),
            },
            None => DqdlError {
                line: self.lines,
                column: self.text.lines().last().map_or(1, |line| line.chars().count() + 1),
                message: format!("expected {expected}, found the end of the ruleset"),
            },
        }
    }

    fn symbol(&mut self, symbol: &str, expected: &str) -> Result<(), DqdlError> {
        if self.peek() == Some(&Token::Symbol(leak(symbol))) {
            self.at += 1;
            Ok(())
        } else {
            Err(self.error(expected))
        }
    }

    fn is_word(&self, word: &str) -> bool {
        matches!(self.peek(), Some(Token::Word(found)) if found == word)
    }

    fn ruleset(&mut self) -> Result<Ruleset, DqdlError> {
        if !self.is_word("Rules") {
            return Err(self.error("`Rules = [ … ]` (DQDL's ruleset, `Rules` capitalised)"));
        }
        self.at += 1;
        self.symbol("=", "`=` after `Rules`")?;
        self.symbol("[", "`[` opening the list of rules")?;
        let mut rules = Vec::new();
        loop {
            if self.peek() == Some(&Token::Symbol("]")) && !rules.is_empty() {
                self.at += 1;
                break;
            }
            rules.push(self.composite()?);
            match self.peek() {
                Some(Token::Symbol(",")) => self.at += 1,
                Some(Token::Symbol("]")) => {
                    self.at += 1;
                    break;
                }
                _ => return Err(self.error("`,` before the next rule or `]` closing the list")),
            }
        }
        if self.at < self.tokens.len() {
            return Err(
                self.error("nothing after the `]` closing the rules (Lakestar reads `Rules` only, no `Analyzers`)")
            );
        }
        Ok(Ruleset { rules })
    }

    /// A rule, or parenthesised rules joined by one of `and`, `or`.
    fn composite(&mut self) -> Result<Rule, DqdlError> {
        if self.peek() != Some(&Token::Symbol("(")) {
            return self.simple().map(|rule| Rule::Simple(Box::new(rule)));
        }
        let first = self.parenthesised()?;
        let mut operator: Option<String> = None;
        let mut parts = vec![first];
        while let Some(Token::Word(word)) = self.peek().cloned() {
            if word != "and" && word != "or" {
                break;
            }
            if operator.as_ref().is_some_and(|known| *known != word) {
                return Err(
                    self.error("the same operator throughout: DQDL does not mix `and` and `or` without parentheses")
                );
            }
            operator = Some(word);
            self.at += 1;
            if self.peek() != Some(&Token::Symbol("(")) {
                return Err(self.error("`(` around each rule of an `and` or `or`"));
            }
            parts.push(self.parenthesised()?);
        }
        Ok(match operator.as_deref() {
            None => parts.remove(0),
            Some("and") => Rule::And(parts),
            _ => Rule::Or(parts),
        })
    }

    fn parenthesised(&mut self) -> Result<Rule, DqdlError> {
        self.symbol("(", "`(`")?;
        let rule = self.composite()?;
        self.symbol(")", "`)` closing the rule")?;
        Ok(rule)
    }

    fn simple(&mut self) -> Result<SimpleRule, DqdlError> {
        let Some(located) = self.tokens.get(self.at) else { return Err(self.error("a rule")) };
        let (line, column, start) = (located.line, located.column, located.start);
        let Token::Word(name) = located.token.clone() else {
            return Err(self.error("a rule type, e.g. `IsComplete \"id\"`"));
        };
        let Some(kind) = RuleKind::parse(&name) else {
            let message = if RuleKind::REFUSED.contains(&name.as_str()) {
                format!("the rule type `{name}` is not one Lakestar evaluates; the rule types are: {}", names())
            } else {
                format!("unknown rule type `{name}` (rule types are case-sensitive); the rule types are: {}", names())
            };
            return Err(DqdlError { line, column, message });
        };
        self.at += 1;
        let (_, _, (least, most), takes, _) = kind.entry();
        let mut parameters = Vec::new();
        while let Some(Token::Text(text)) = self.peek().cloned() {
            if parameters.len() == most {
                break;
            }
            parameters.push(text);
            self.at += 1;
        }
        if parameters.len() < least {
            let what = if least == 1 {
                "a \"quoted\" column name".to_string()
            } else {
                format!("{least} \"quoted\" parameters")
            };
            return Err(self.error(&format!("{what} after `{name}`")));
        }
        let condition = match (takes, self.starts_condition()) {
            (Takes::Nothing, true) => return Err(self.error(&format!("no expression after `{name}` (it takes none)"))),
            (Takes::Expression, false) => {
                return Err(self.error(&format!(
                    "an expression after `{name}`: `= x`, `> x`, `between a and b`, `in [..]` or `matches \"..\"`"
                )));
            }
            (_, true) => Some(self.condition()?),
            (_, false) => None,
        };
        let mut filter = None;
        let mut threshold = None;
        if self.is_word("where") {
            self.at += 1;
            match self.peek().cloned() {
                Some(Token::Text(text)) => {
                    filter = Some(text);
                    self.at += 1;
                }
                _ => return Err(self.error("a \"quoted\" SQL condition after `where`")),
            }
        }
        if self.is_word("with") {
            self.at += 1;
            if !self.is_word("threshold") {
                return Err(self.error("`threshold` after `with`"));
            }
            self.at += 1;
            if !self.starts_condition() {
                return Err(self.error("an expression after `with threshold`, e.g. `> 0.95`"));
            }
            threshold = Some(self.condition()?);
        }
        let end = self.tokens.get(self.at.saturating_sub(1)).map_or(start, |located| located.end);
        let text = self.text[start..end].split_whitespace().collect::<Vec<_>>().join(" ");
        Ok(SimpleRule { kind, parameters, condition, filter, threshold, text, line, column })
    }

    fn starts_condition(&self) -> bool {
        matches!(self.peek(), Some(Token::Symbol("=" | "!=" | ">" | ">=" | "<" | "<=")))
            || ["between", "in", "matches", "not"].iter().any(|word| self.is_word(word))
    }

    fn condition(&mut self) -> Result<Condition, DqdlError> {
        let negated = self.is_word("not");
        if negated {
            self.at += 1;
        }
        if let Some(Token::Symbol(symbol)) = self.peek().cloned() {
            if negated {
                return Err(self.error("`between`, `in` or `matches` after `not`"));
            }
            let operator = match symbol {
                "=" => Operator::Eq,
                "!=" => Operator::Ne,
                ">" => Operator::Gt,
                ">=" => Operator::Ge,
                "<" => Operator::Lt,
                "<=" => Operator::Le,
                _ => return Err(self.error("an operator")),
            };
            self.at += 1;
            return Ok(Condition::Compare(operator, self.value()?));
        }
        if self.is_word("between") {
            self.at += 1;
            let low = self.value()?;
            if !self.is_word("and") {
                return Err(self.error("`and` between the two bounds of `between`"));
            }
            self.at += 1;
            let high = self.value()?;
            return Ok(Condition::Between { low, high, negated });
        }
        if self.is_word("in") {
            self.at += 1;
            self.symbol("[", "`[` opening the values of `in`")?;
            let mut values = Vec::new();
            loop {
                values.push(self.value()?);
                match self.peek() {
                    Some(Token::Symbol(",")) => self.at += 1,
                    Some(Token::Symbol("]")) => {
                        self.at += 1;
                        break;
                    }
                    _ => return Err(self.error("`,` or `]` in the values of `in`")),
                }
            }
            return Ok(Condition::In { values, negated });
        }
        if self.is_word("matches") {
            self.at += 1;
            return match self.peek().cloned() {
                Some(Token::Text(pattern)) => {
                    self.at += 1;
                    Ok(Condition::Matches { pattern, negated })
                }
                _ => Err(self.error("a \"quoted\" regular expression after `matches`")),
            };
        }
        Err(self.error("`between`, `in` or `matches`"))
    }

    fn value(&mut self) -> Result<Value, DqdlError> {
        let negative = self.peek() == Some(&Token::Symbol("-"));
        if negative {
            self.at += 1;
        }
        match self.peek().cloned() {
            Some(Token::Number(number)) => {
                self.at += 1;
                let number = if negative { format!("-{number}") } else { number };
                if let Some(Token::Word(unit)) = self.peek().cloned()
                    && let Some(unit) = duration_unit(&unit)
                {
                    self.at += 1;
                    return Ok(Value::Duration { amount: number, unit: unit.to_string() });
                }
                Ok(Value::Number(number))
            }
            Some(Token::Text(text)) if !negative => {
                self.at += 1;
                Ok(Value::Text(text))
            }
            Some(Token::Word(word)) if !negative => {
                let value = match word.as_str() {
                    "NULL" => Value::Null,
                    "EMPTY" => Value::Empty,
                    "WHITESPACES_ONLY" => Value::WhitespacesOnly,
                    "now" => {
                        self.at += 1;
                        self.symbol("(", "`(` after `now`")?;
                        self.symbol(")", "`)` after `now(`")?;
                        return Ok(Value::Now { offset_seconds: 0 });
                    }
                    _ => return Err(self.error(
                        "a value: a number, a \"quoted\" string, NULL, EMPTY, WHITESPACES_ONLY, a duration or now()",
                    )),
                };
                self.at += 1;
                Ok(value)
            }
            Some(Token::Symbol("(")) if !negative => {
                self.at += 1;
                let Value::Now { .. } = self.value()? else {
                    return Err(self.error("`now()` inside parentheses, e.g. `(now() - 3 days)`"));
                };
                let sign = match self.peek() {
                    Some(Token::Symbol("-")) => -1,
                    Some(Token::Symbol("+")) => 1,
                    _ => return Err(self.error("`-` or `+` after `now()`")),
                };
                self.at += 1;
                let Value::Duration { amount, unit } = self.value()? else {
                    return Err(self.error("a duration after `now() -`, e.g. `3 days`"));
                };
                self.symbol(")", "`)` closing `(now() …`")?;
                let seconds =
                    seconds_of(&amount, &unit).ok_or_else(|| self.error("a whole number of minutes, hours or days"))?;
                Ok(Value::Now { offset_seconds: sign * seconds })
            }
            _ => Err(self
                .error("a value: a number, a \"quoted\" string, NULL, EMPTY, WHITESPACES_ONLY, a duration or now()")),
        }
    }
}

fn leak(symbol: &str) -> &'static str {
    ["=", "[", "]", "(", ")", ",", "-", "+"].into_iter().find(|known| *known == symbol).unwrap_or("")
}

fn duration_unit(word: &str) -> Option<&'static str> {
    match word {
        "minute" | "minutes" => Some("minutes"),
        "hour" | "hours" => Some("hours"),
        "day" | "days" => Some("days"),
        _ => None,
    }
}

/// A duration in seconds.
pub fn seconds_of(amount: &str, unit: &str) -> Option<i64> {
    let amount: i64 = amount.parse().ok()?;
    let unit = match unit {
        "minutes" => 60,
        "hours" => 3600,
        "days" => 86_400,
        _ => return None,
    };
    amount.checked_mul(unit)
}

fn names() -> String {
    RuleKind::ALL.iter().map(|entry| entry.1).collect::<Vec<_>>().join(", ")
}

#[cfg(test)]
mod tests {
    use super::*;

    fn rules(text: &str) -> Vec<Rule> {
        parse(text).unwrap_or_else(|error| panic!("{text}: {error}")).rules
    }

    fn simple(rule: &Rule) -> &SimpleRule {
        match rule {
            Rule::Simple(rule) => rule,
            other => panic!("a simple rule, not {other:?}"),
        }
    }

    #[test]
    fn the_examples_of_aws_s_documentation_parse() {
        let examples = [
            r#"Rules = [ IsComplete "order-id", IsUnique "order-id" ]"#,
            r#"Rules = [ (IsComplete "id") and (IsUnique "id") ]"#,
            r#"Rules = [ (RowCount > 100) or (IsPrimaryKey "id") ]"#,
            r#"Rules = [ (Mean "Star_Rating" > 3) and (Mean "Order_Total" > 500) and (IsComplete "Order_Id") ]"#,
            r#"Rules = [ (Mean "Star_Rating" > 3) and ((Mean "Order_Total" > 500) or (IsComplete "Order_Id")) ]"#,
            r#"Rules = [ (RowCount > 0) or ((IsComplete "colA") and (IsUnique "colA")) ]"#,
            r#"Rules = [ DistinctValuesCount "State" > 3, DistinctValuesCount "Customer_ID" < 6 where "Customer_ID < 10" ]"#,
            r#"Rules = [ ColumnValues "Country" in [ "US", "CA", "UK", NULL, EMPTY ] ]"#,
            r#"Rules = [ ColumnValues "Name" not in [ "Tom", WHITESPACES_ONLY ] with threshold > 0.9 ]"#,
            r#"Rules = [ ColumnValues "First_Name" matches "[a-zA-Z]*" ]"#,
            r#"Rules = [ ColumnValues "Age" between 18 and 120, ColumnValues "Score" >= -1.5 ]"#,
            r#"Rules = [ ColumnValues "Load_Date" > (now() - 3 days) ]"#,
            r#"Rules = [ DataFreshness "Order_Date" <= 24 hours, DataFreshness "Order_Date" between 2 days and 5 days ]"#,
            r#"Rules = [ ColumnLength "Postal_Code" = 5, ColumnLength "Name" between 1 and 100 where "Country = 'US'" ]"#,
            r#"Rules = [ ColumnDataType "colA" = "INTEGER", ColumnDataType "colB" in ["DATE", "TIMESTAMP"] with threshold > 0.9 ]"#,
            r#"Rules = [ Completeness "First_Name" > 0.95, Uniqueness "email" = 1.0, UniqueValueRatio "id" > 0.9 ]"#,
            r#"Rules = [ CustomSql "select count(*) from primary" between 10 and 20, CustomSql "select id from primary where age < 18" with threshold < 0.1 ]"#,
            r#"Rules = [ ReferentialIntegrity "customer_id" "customers.{customer_id}" = 1.0, RowCountMatch "previous" >= 0.9, SchemaMatch "reference" = 1.0 ]"#,
            r#"Rules = [ Sum "amount" between 100 and 200, StandardDeviation "x" < 2, Entropy "y" > 1, ColumnCount = 7, ColumnExists "id", ColumnNamesMatchPattern "[a-z_]+" ]"#,
            "# a comment\nRules = [\n    IsComplete \"a\",  # why\n    IsPrimaryKey \"a\" \"b\"\n]",
        ];
        for example in examples {
            assert!(!rules(example).is_empty(), "{example}");
        }
    }

    #[test]
    fn rules_keep_what_they_say() {
        let parsed = rules(
            "Rules = [\n  ColumnValues \"age\"   between 18 and 120 where \"country = 'UK'\" with threshold >= 0.9\n]",
        );
        let rule = simple(&parsed[0]);
        assert_eq!((rule.kind, rule.line, rule.column), (RuleKind::ColumnValues, 2, 3));
        assert_eq!(rule.parameters, ["age"]);
        assert_eq!(
            rule.condition,
            Some(Condition::Between {
                low: Value::Number("18".into()),
                high: Value::Number("120".into()),
                negated: false
            })
        );
        assert_eq!(rule.filter.as_deref(), Some("country = 'UK'"));
        assert_eq!(rule.threshold, Some(Condition::Compare(Operator::Ge, Value::Number("0.9".into()))));
        assert_eq!(rule.text, "ColumnValues \"age\" between 18 and 120 where \"country = 'UK'\" with threshold >= 0.9");
        let parsed = rules(r#"Rules = [ ColumnValues "d" > (now() - 3 days), (IsComplete "a") or (IsUnique "a") ]"#);
        assert_eq!(
            simple(&parsed[0]).condition,
            Some(Condition::Compare(Operator::Gt, Value::Now { offset_seconds: -3 * 86_400 }))
        );
        assert!(matches!(&parsed[1], Rule::Or(parts) if parts.len() == 2));
    }

    #[test]
    fn mistakes_are_named_with_their_line_and_column() {
        let cases = [
            ("Rules = [ IsComplete ]", 1, 22, "a \"quoted\" column name"),
            ("Rules = [\n  IsComplete \"a\",\n  Completeness \"b\"\n]", 4, 1, "an expression after `Completeness`"),
            ("Rules = [ IsUnique \"a\" > 1 ]", 1, 24, "no expression after `IsUnique`"),
            ("Rules = [ DetectAnomalies \"RowCount\" ]", 1, 11, "not one Lakestar evaluates"),
            ("Rules = [ isComplete \"a\" ]", 1, 11, "unknown rule type `isComplete`"),
            (
                "Rules = [ (IsComplete \"a\") and (IsUnique \"a\") or (IsComplete \"b\") ]",
                1,
                47,
                "does not mix `and` and `or`",
            ),
            ("Rules = [ IsComplete \"a\" IsUnique \"b\" ]", 1, 26, "`,` before the next rule"),
            ("Rules = [ ColumnValues \"a\" between 1 2 ]", 1, 38, "`and` between the two bounds"),
            ("Rules = [ ColumnValues \"a\" = \"open ]", 1, 30, "never closed"),
            ("rules = [ IsComplete \"a\" ]", 1, 1, "`Rules = [ … ]`"),
            ("Rules = [ IsComplete \"a\"", 1, 25, "the end of the ruleset"),
        ];
        for (text, line, column, expected) in cases {
            let error = parse(text).expect_err(text);
            assert!(error.message.contains(expected), "{text}: {error}");
            assert_eq!((error.line, error.column), (line, column), "{text}: {error}");
        }
    }
}
