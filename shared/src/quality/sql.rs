//! The SQL a DQDL ruleset holds: `where` conditions and `CustomSql` queries over `primary`,
//! the run's rows. Lakestar reads the part of SQL these need — comparisons, `AND`/`OR`/`NOT`,
//! `IS [NOT] NULL`, `[NOT] IN (…)`, `[NOT] BETWEEN … AND …`, `[NOT] LIKE`, and one aggregate
//! (`count(*)`, `count([distinct] c)`, `sum`, `avg`, `min`, `max`) — and names anything else
//! it meets, with its position in the SQL.

use std::borrow::Cow;
use std::cmp::Ordering;

use regex::Regex;

use super::value::{Row, Scalar, literal_for, number};
pub use crate::types::CompareOp as Op;
use crate::types::DataType;

/// A SQL mistake: what, and where in the SQL text (1-based character).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SqlError {
    /// 1-based character position in the SQL text.
    pub at: usize,
    /// What is wrong, and what Lakestar reads there.
    pub message: String,
}

/// A compiled SQL expression over the dataset's columns.
#[derive(Debug, Clone)]
pub enum Expr {
    /// A column, by its position in the contract.
    Column(usize),
    /// A literal.
    Literal(Scalar<'static>),
    /// `a <op> b`.
    Compare(Box<Expr>, Op, Box<Expr>),
    /// `a AND b`.
    And(Box<Expr>, Box<Expr>),
    /// `a OR b`.
    Or(Box<Expr>, Box<Expr>),
    /// `NOT a`.
    Not(Box<Expr>),
    /// `a IS [NOT] NULL`.
    IsNull(Box<Expr>, bool),
    /// `a [NOT] IN (…)`.
    In(Box<Expr>, Vec<Expr>, bool),
    /// `a [NOT] BETWEEN low AND high` (inclusive, as SQL defines it).
    Between(Box<Expr>, Box<Expr>, Box<Expr>, bool),
    /// `a [NOT] LIKE 'pattern'`.
    Like(Box<Expr>, Regex, bool),
}

impl Expr {
    /// The expression's value at a row; a condition is `Boolean`, or `Null` when unknown.
    pub fn value<'a>(&'a self, row: &'a Row<'_>, index: usize) -> Scalar<'a> {
        let truth = |value: Option<bool>| value.map_or(Scalar::Null, Scalar::Boolean);
        match self {
            Expr::Column(column) => row.value(*column, index),
            Expr::Literal(value) => match value {
                Scalar::Text(text) => Scalar::Text(Cow::Borrowed(text)),
                other => other.clone(),
            },
            Expr::Compare(left, op, right) => {
                truth(left.value(row, index).compare(&right.value(row, index)).map(|ordering| op.holds(ordering)))
            }
            Expr::And(left, right) => truth(match (left.truth(row, index), right.truth(row, index)) {
                (Some(false), _) | (_, Some(false)) => Some(false),
                (Some(true), Some(true)) => Some(true),
                _ => None,
            }),
            Expr::Or(left, right) => truth(match (left.truth(row, index), right.truth(row, index)) {
                (Some(true), _) | (_, Some(true)) => Some(true),
                (Some(false), Some(false)) => Some(false),
                _ => None,
            }),
            Expr::Not(inner) => truth(inner.truth(row, index).map(|value| !value)),
            Expr::IsNull(inner, negated) => Scalar::Boolean(inner.value(row, index).is_null() != *negated),
            Expr::In(inner, list, negated) => {
                let value = inner.value(row, index);
                if value.is_null() {
                    return Scalar::Null;
                }
                let found = list.iter().any(|item| value.compare(&item.value(row, index)) == Some(Ordering::Equal));
                Scalar::Boolean(found != *negated)
            }
            Expr::Between(inner, low, high, negated) => {
                let value = inner.value(row, index);
                let above = value.compare(&low.value(row, index)).map(|ordering| ordering != Ordering::Less);
                let below = value.compare(&high.value(row, index)).map(|ordering| ordering != Ordering::Greater);
                truth(above.zip(below).map(|(above, below)| (above && below) != *negated))
            }
            Expr::Like(inner, pattern, negated) => match inner.value(row, index) {
                Scalar::Null => Scalar::Null,
                Scalar::Text(text) => Scalar::Boolean(pattern.is_match(&text) != *negated),
                other => Scalar::Boolean(pattern.is_match(&other.key()) != *negated),
            },
        }
    }

    /// The condition's truth at a row: `None` when unknown (a missing value compared).
    pub fn truth(&self, row: &Row<'_>, index: usize) -> Option<bool> {
        match self.value(row, index) {
            Scalar::Boolean(value) => Some(value),
            _ => None,
        }
    }

    /// Whether the condition holds at a row (unknown does not).
    pub fn holds(&self, row: &Row<'_>, index: usize) -> bool {
        self.truth(row, index) == Some(true)
    }

    /// The columns the expression reads.
    pub fn columns(&self, out: &mut Vec<usize>) {
        match self {
            Expr::Column(column) => out.push(*column),
            Expr::Literal(_) => {}
            Expr::Compare(left, _, right) | Expr::And(left, right) | Expr::Or(left, right) => {
                left.columns(out);
                right.columns(out);
            }
            Expr::Not(inner) | Expr::IsNull(inner, _) | Expr::Like(inner, _, _) => inner.columns(out),
            Expr::In(inner, list, _) => {
                inner.columns(out);
                list.iter().for_each(|item| item.columns(out));
            }
            Expr::Between(inner, low, high, _) => {
                inner.columns(out);
                low.columns(out);
                high.columns(out);
            }
        }
    }
}

/// An aggregate a dataset-level `CustomSql` computes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Aggregate {
    /// `count(*)`
    CountRows,
    /// `count(c)`: present values.
    Count(usize),
    /// `count(distinct c)`.
    CountDistinct(usize),
    /// `sum(c)`.
    Sum(usize),
    /// `avg(c)`.
    Avg(usize),
    /// `min(c)`.
    Min(usize),
    /// `max(c)`.
    Max(usize),
}

/// A `CustomSql` query over `primary`.
#[derive(Debug, Clone)]
pub enum Query {
    /// `select <columns> from primary [where …]`: the rows it returns pass (row level).
    Rows(Option<Expr>),
    /// `select <aggregate> from primary [where …]`: one value (dataset level).
    Aggregate(Aggregate, Option<Expr>),
}

/// The dataset's columns, as SQL names them.
pub struct Scope<'a> {
    /// Each column's name and type, in contract order.
    pub columns: &'a [(String, DataType)],
}

impl Scope<'_> {
    fn resolve(&self, name: &str) -> Option<usize> {
        self.columns.iter().position(|(column, _)| column == name).or_else(|| {
            let mut found =
                self.columns.iter().enumerate().filter(|(_, (column, _))| column.eq_ignore_ascii_case(name));
            match (found.next(), found.next()) {
                (Some((index, _)), None) => Some(index),
                _ => None,
            }
        })
    }

    fn names(&self) -> String {
        self.columns.iter().map(|(name, _)| name.as_str()).collect::<Vec<_>>().join(", ")
    }
}

/// Parses a `where` condition.
pub fn condition(text: &str, scope: &Scope<'_>) -> Result<Expr, SqlError> {
    let mut parser = Parser::new(text, scope)?;
    let expr = parser.or()?;
    parser.end("the end of the condition (an operator such as AND, OR, =, IN?)")?;
    Ok(expr)
}

/// Parses a `CustomSql` query.
pub fn query(text: &str, scope: &Scope<'_>) -> Result<Query, SqlError> {
    let mut parser = Parser::new(text, scope)?;
    parser.keyword("select", "`select` (CustomSql runs a SELECT over `primary`)")?;
    let aggregate = parser.select_list()?;
    parser.keyword("from", "`from primary`")?;
    match parser.peek() {
        Some(Token::Word(word)) if word.eq_ignore_ascii_case("primary") => parser.at += 1,
        _ => {
            return Err(parser.error(
                "`primary`: Lakestar's CustomSql reads the run's rows as `primary`, not other tables (use ReferentialIntegrity for another dataset)",
            ));
        }
    }
    let filter = if parser.is_keyword("where") {
        parser.at += 1;
        Some(parser.or()?)
    } else {
        None
    };
    if parser.peek() == Some(&Token::Symbol(";")) {
        parser.at += 1;
    }
    parser.end(
        "the end of the query: Lakestar reads `select … from primary [where …]` (no joins, GROUP BY or subqueries)",
    )?;
    Ok(match aggregate {
        Some(aggregate) => Query::Aggregate(aggregate, filter),
        None => Query::Rows(filter),
    })
}

#[derive(Debug, Clone, PartialEq)]
enum Token {
    Word(String),
    Quoted(String),
    Text(String),
    Number(String),
    Symbol(&'static str),
}

struct Parser<'a> {
    tokens: Vec<(Token, usize)>,
    at: usize,
    length: usize,
    scope: &'a Scope<'a>,
}

fn tokens(text: &str) -> Result<Vec<(Token, usize)>, SqlError> {
    let chars: Vec<char> = text.chars().collect();
    let mut out = Vec::new();
    let mut index = 0;
    while index < chars.len() {
        let c = chars[index];
        let at = index + 1;
        if c.is_whitespace() {
            index += 1;
            continue;
        }
        let quoted = |index: &mut usize, close: char| -> Result<String, SqlError> {
            let mut value = String::new();
            *index += 1;
            loop {
                match chars.get(*index) {
                    None => {
                        return Err(SqlError {
                            at,
                            message: format!("a quote that is never closed: end it with {close}"),
                        });
                    }
                    Some(&found) if found == close => {
                        // A doubled quote is the quote itself.
                        if chars.get(*index + 1) == Some(&close) {
                            value.push(close);
                            *index += 2;
                            continue;
                        }
                        *index += 1;
                        return Ok(value);
                    }
                    Some(&found) => {
                        value.push(found);
                        *index += 1;
                    }
                }
            }
        };
        let token = match c {
            '\'' => Token::Text(quoted(&mut index, '\'')?),
            '`' => Token::Quoted(quoted(&mut index, '`')?),
            // DQDL's own string is double-quoted: a column inside is written `col` or \"col\".
            '"' => Token::Quoted(quoted(&mut index, '"')?),
            c if c.is_ascii_digit() || (c == '.' && chars.get(index + 1).is_some_and(char::is_ascii_digit)) => {
                let begin = index;
                while chars.get(index).is_some_and(|c| c.is_ascii_digit() || *c == '.') {
                    index += 1;
                }
                Token::Number(chars[begin..index].iter().collect())
            }
            c if c.is_alphabetic() || c == '_' => {
                let begin = index;
                while chars.get(index).is_some_and(|c| c.is_alphanumeric() || *c == '_' || *c == '.') {
                    index += 1;
                }
                Token::Word(chars[begin..index].iter().collect())
            }
            _ => {
                let next = chars.get(index + 1).copied();
                let (symbol, width) = match (c, next) {
                    ('!', Some('=')) | ('<', Some('>')) => ("!=", 2),
                    ('<', Some('=')) => ("<=", 2),
                    ('>', Some('=')) => (">=", 2),
                    ('=', Some('=')) => ("=", 2),
                    ('=', _) => ("=", 1),
                    ('<', _) => ("<", 1),
                    ('>', _) => (">", 1),
                    ('(', _) => ("(", 1),
                    (')', _) => (")", 1),
                    (',', _) => (",", 1),
                    ('*', _) => ("*", 1),
                    ('-', _) => ("-", 1),
                    (';', _) => (";", 1),
                    _ => {
                        return Err(SqlError {
                            at,
                            message: format!(
                                "`{c}`: Lakestar's SQL has comparisons, AND, OR, NOT, IS NULL, IN, BETWEEN and LIKE, no arithmetic or functions"
                            ),
                        });
                    }
                };
                index += width;
                Token::Symbol(symbol)
            }
        };
        out.push((token, at));
    }
    Ok(out)
}

impl<'a> Parser<'a> {
    fn new(text: &str, scope: &'a Scope<'a>) -> Result<Parser<'a>, SqlError> {
        Ok(Parser { tokens: tokens(text)?, at: 0, length: text.chars().count(), scope })
    }

    fn peek(&self) -> Option<&Token> {
        self.tokens.get(self.at).map(|(token, _)| token)
    }

    fn error(&self, expected: &str) -> SqlError {
        let at = self.tokens.get(self.at).map_or(self.length + 1, |(_, at)| *at);
        let found = match self.peek() {
            None => "the end".to_string(),
            Some(Token::Word(word)) => format!("`{word}`"),
            Some(Token::Quoted(word)) => format!("`{word}`"),
            Some(Token::Text(text)) => format!("'{text}'"),
            Some(Token::Number(number)) => format!("`{number}`"),
            Some(Token::Symbol(symbol)) => format!("`{symbol}`"),
        };
        SqlError { at, message: format!("expected {expected}, found {found}") }
    }

    fn end(&self, expected: &str) -> Result<(), SqlError> {
        if self.at < self.tokens.len() { Err(self.error(expected)) } else { Ok(()) }
    }

    fn is_keyword(&self, word: &str) -> bool {
        matches!(self.peek(), Some(Token::Word(found)) if found.eq_ignore_ascii_case(word))
    }

    fn keyword(&mut self, word: &str, expected: &str) -> Result<(), SqlError> {
        if self.is_keyword(word) {
            self.at += 1;
            Ok(())
        } else {
            Err(self.error(expected))
        }
    }

    fn symbol(&mut self, symbol: &str, expected: &str) -> Result<(), SqlError> {
        if matches!(self.peek(), Some(Token::Symbol(found)) if *found == symbol) {
            self.at += 1;
            Ok(())
        } else {
            Err(self.error(expected))
        }
    }

    /// The select list: `*` or columns (row level, `None`), or one aggregate.
    fn select_list(&mut self) -> Result<Option<Aggregate>, SqlError> {
        if let Some(Token::Word(word)) = self.peek().cloned() {
            let function = word.to_ascii_lowercase();
            if ["count", "sum", "avg", "min", "max"].contains(&function.as_str())
                && self.tokens.get(self.at + 1).map(|(token, _)| token) == Some(&Token::Symbol("("))
            {
                self.at += 2;
                let aggregate = if function == "count" && self.peek() == Some(&Token::Symbol("*")) {
                    self.at += 1;
                    Aggregate::CountRows
                } else {
                    let distinct = function == "count" && self.is_keyword("distinct");
                    if distinct {
                        self.at += 1;
                    }
                    let column = self.column_name()?;
                    let numeric = self.scope.columns[column].1.is_numeric();
                    if matches!(function.as_str(), "sum" | "avg") && !numeric {
                        return Err(self.error_before(&format!(
                            "a numeric column in {function}(…): `{}` is not one",
                            self.scope.columns[column].0
                        )));
                    }
                    match function.as_str() {
                        "count" if distinct => Aggregate::CountDistinct(column),
                        "count" => Aggregate::Count(column),
                        "sum" => Aggregate::Sum(column),
                        "avg" => Aggregate::Avg(column),
                        "min" => Aggregate::Min(column),
                        _ => Aggregate::Max(column),
                    }
                };
                self.symbol(")", "`)` closing the aggregate")?;
                return Ok(Some(aggregate));
            }
        }
        if self.peek() == Some(&Token::Symbol("*")) {
            self.at += 1;
            return Ok(None);
        }
        loop {
            self.column_name()?;
            if self.peek() != Some(&Token::Symbol(",")) {
                return Ok(None);
            }
            self.at += 1;
        }
    }

    fn error_before(&self, message: &str) -> SqlError {
        let at = self.tokens.get(self.at.saturating_sub(1)).map_or(1, |(_, at)| *at);
        SqlError { at, message: message.to_string() }
    }

    fn column_name(&mut self) -> Result<usize, SqlError> {
        let name = match self.peek().cloned() {
            Some(Token::Word(word)) => word,
            Some(Token::Quoted(word)) => word,
            _ => return Err(self.error("a column name")),
        };
        let name = name.strip_prefix("primary.").unwrap_or(&name).to_string();
        match self.scope.resolve(&name) {
            Some(column) => {
                self.at += 1;
                Ok(column)
            }
            None => Err(self.error(&format!("one of the dataset's columns ({})", self.scope.names()))),
        }
    }

    fn or(&mut self) -> Result<Expr, SqlError> {
        let mut left = self.and()?;
        while self.is_keyword("or") {
            self.at += 1;
            left = Expr::Or(Box::new(left), Box::new(self.and()?));
        }
        Ok(left)
    }

    fn and(&mut self) -> Result<Expr, SqlError> {
        let mut left = self.not()?;
        while self.is_keyword("and") {
            self.at += 1;
            left = Expr::And(Box::new(left), Box::new(self.not()?));
        }
        Ok(left)
    }

    fn not(&mut self) -> Result<Expr, SqlError> {
        if self.is_keyword("not") {
            self.at += 1;
            return Ok(Expr::Not(Box::new(self.not()?)));
        }
        self.predicate()
    }

    fn predicate(&mut self) -> Result<Expr, SqlError> {
        let left = self.operand()?;
        let negated = self.is_keyword("not");
        if negated {
            self.at += 1;
        }
        if let Some(Token::Symbol(symbol)) = self.peek().cloned()
            && !negated
        {
            let op = match symbol {
                "=" => Op::Eq,
                "!=" => Op::Ne,
                "<" => Op::Lt,
                "<=" => Op::Le,
                ">" => Op::Gt,
                ">=" => Op::Ge,
                _ => return Ok(left),
            };
            self.at += 1;
            let right = self.operand()?;
            let (left, right) = self.typed_pair(left, right)?;
            return Ok(Expr::Compare(Box::new(left), op, Box::new(right)));
        }
        if self.is_keyword("is") && !negated {
            self.at += 1;
            let not = self.is_keyword("not");
            if not {
                self.at += 1;
            }
            self.keyword("null", "`NULL` after `IS`")?;
            return Ok(Expr::IsNull(Box::new(left), not));
        }
        if self.is_keyword("in") {
            self.at += 1;
            self.symbol("(", "`(` opening the values of IN")?;
            let mut list = Vec::new();
            loop {
                let item = self.operand()?;
                list.push(self.typed_pair(left.clone(), item)?.1);
                match self.peek() {
                    Some(Token::Symbol(",")) => self.at += 1,
                    Some(Token::Symbol(")")) => {
                        self.at += 1;
                        break;
                    }
                    _ => return Err(self.error("`,` or `)` in the values of IN")),
                }
            }
            return Ok(Expr::In(Box::new(left), list, negated));
        }
        if self.is_keyword("between") {
            self.at += 1;
            let low = self.operand()?;
            self.keyword("and", "`AND` between the bounds of BETWEEN")?;
            let high = self.operand()?;
            let low = self.typed_pair(left.clone(), low)?.1;
            let high = self.typed_pair(left.clone(), high)?.1;
            return Ok(Expr::Between(Box::new(left), Box::new(low), Box::new(high), negated));
        }
        if self.is_keyword("like") {
            self.at += 1;
            let Some(Token::Text(pattern)) = self.peek().cloned() else {
                return Err(self.error("a 'quoted' pattern after LIKE"));
            };
            self.at += 1;
            return Ok(Expr::Like(Box::new(left), like_pattern(&pattern), negated));
        }
        if negated {
            return Err(self.error("IN, BETWEEN or LIKE after NOT"));
        }
        Ok(left)
    }

    /// A literal compared with a column takes the column's type, so `order_date > '2024-01-01'`
    /// compares dates; a literal that is not a value of that type is named.
    fn typed_pair(&self, left: Expr, right: Expr) -> Result<(Expr, Expr), SqlError> {
        let retype = |column: usize, literal: &Scalar<'static>| -> Result<Option<Scalar<'static>>, SqlError> {
            let (name, data_type) = &self.scope.columns[column];
            let Scalar::Text(text) = literal else { return Ok(None) };
            match literal_for(text, *data_type) {
                Some(value) => Ok(Some(value)),
                None => Err(self.error_before(&format!(
                    "'{text}' is not a {} value, as `{name}` is (dates are written '2024-01-31', timestamps '2024-01-31T12:00:00Z')",
                    crate::types::type_name(*data_type)
                ))),
            }
        };
        match (&left, &right) {
            (Expr::Column(column), Expr::Literal(literal)) => Ok(match retype(*column, literal)? {
                Some(value) => (left, Expr::Literal(value)),
                None => (left, right),
            }),
            (Expr::Literal(literal), Expr::Column(column)) => Ok(match retype(*column, literal)? {
                Some(value) => (Expr::Literal(value), right),
                None => (left, right),
            }),
            _ => Ok((left, right)),
        }
    }

    fn operand(&mut self) -> Result<Expr, SqlError> {
        let negative = self.peek() == Some(&Token::Symbol("-"));
        if negative {
            self.at += 1;
        }
        let expr = match self.peek().cloned() {
            Some(Token::Number(digits)) => {
                let text = if negative { format!("-{digits}") } else { digits };
                match number(&text) {
                    Some(value) => Expr::Literal(value),
                    None => return Err(self.error("a number")),
                }
            }
            _ if negative => return Err(self.error("a number after `-`")),
            Some(Token::Text(text)) => Expr::Literal(Scalar::Text(Cow::Owned(text))),
            Some(Token::Symbol("(")) => {
                self.at += 1;
                let inner = self.or()?;
                self.symbol(")", "`)`")?;
                return Ok(inner);
            }
            Some(Token::Word(word)) if word.eq_ignore_ascii_case("null") => Expr::Literal(Scalar::Null),
            Some(Token::Word(word)) if word.eq_ignore_ascii_case("true") => Expr::Literal(Scalar::Boolean(true)),
            Some(Token::Word(word)) if word.eq_ignore_ascii_case("false") => Expr::Literal(Scalar::Boolean(false)),
            Some(Token::Word(word))
                if (word.eq_ignore_ascii_case("date") || word.eq_ignore_ascii_case("timestamp"))
                    && matches!(self.tokens.get(self.at + 1), Some((Token::Text(_), _))) =>
            {
                self.at += 1;
                let Some(Token::Text(text)) = self.peek().cloned() else { return Err(self.error("a 'quoted' value")) };
                let data_type = if word.eq_ignore_ascii_case("date") { DataType::Date } else { DataType::Timestamp };
                match literal_for(&text, data_type) {
                    Some(value) => Expr::Literal(value),
                    None => return Err(self.error(&format!("an ISO {} such as '2024-01-31'", word.to_lowercase()))),
                }
            }
            Some(Token::Word(_) | Token::Quoted(_)) => return self.column_name().map(Expr::Column),
            _ => return Err(self.error("a column, a number, a 'quoted' text, NULL, TRUE or FALSE")),
        };
        self.at += 1;
        Ok(expr)
    }
}

/// SQL's LIKE pattern (`%` any run, `_` one character) as an anchored regular expression.
fn like_pattern(pattern: &str) -> Regex {
    let mut regex = String::from("(?s)^");
    for c in pattern.chars() {
        match c {
            '%' => regex.push_str(".*"),
            '_' => regex.push('.'),
            c => regex.push_str(&regex::escape(&c.to_string())),
        }
    }
    regex.push('$');
    Regex::new(&regex).unwrap_or_else(|_| Regex::new("^$").expect("a fixed pattern compiles"))
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;

    use arrow::array::{ArrayRef, Date32Array, Int64Array, StringArray};

    use super::*;
    use crate::quality::value::View;

    fn scope() -> Vec<(String, DataType)> {
        vec![
            ("id".to_string(), DataType::Integer),
            ("country".to_string(), DataType::String),
            ("day".to_string(), DataType::Date),
        ]
    }

    fn holds(text: &str) -> Vec<bool> {
        let columns = scope();
        let expr = condition(text, &Scope { columns: &columns }).unwrap_or_else(|error| panic!("{text}: {error:?}"));
        let arrays: Vec<ArrayRef> = vec![
            Arc::new(Int64Array::from(vec![Some(1), Some(150), None])),
            Arc::new(StringArray::from(vec![Some("UK"), Some("US"), Some("FR")])),
            Arc::new(Date32Array::from(vec![Some(19_723), Some(19_724), None])),
        ];
        let row = Row { typed: arrays.iter().map(View::of).collect(), raw: vec![None; 3] };
        (0..3).map(|index| expr.holds(&row, index)).collect()
    }

    #[test]
    fn conditions_hold_as_sql_says() {
        assert_eq!(holds("id > 100"), [false, true, false]);
        assert_eq!(holds("id <= 100 or id is null"), [true, false, true]);
        assert_eq!(holds("country = 'UK' AND id = 1"), [true, false, false]);
        assert_eq!(holds("country in ('UK', 'FR')"), [true, false, true]);
        assert_eq!(holds("country not in ('UK', 'FR')"), [false, true, false]);
        assert_eq!(holds("id between 1 and 150"), [true, true, false]);
        assert_eq!(holds("id not between 2 and 200"), [true, false, false]);
        assert_eq!(holds("country like 'U%'"), [true, true, false]);
        assert_eq!(holds("NOT (country = 'UK')"), [false, true, true]);
        assert_eq!(holds("day >= '2024-01-02'"), [false, true, false]);
        assert_eq!(holds("day = DATE '2024-01-01'"), [true, false, false]);
        assert_eq!(holds("`country` <> 'US'"), [true, false, true]);
        assert_eq!(holds("Id > 100"), [false, true, false]);
    }

    #[test]
    fn mistakes_are_named_where_they_are() {
        let columns = scope();
        let scope = Scope { columns: &columns };
        let cases = [
            ("age > 1", 1, "one of the dataset's columns (id, country, day)"),
            ("id > ", 6, "a column, a number"),
            ("day > 'soon'", 7, "'soon' is not a date value"),
            ("id + 1 > 2", 4, "no arithmetic"),
            ("country = 'UK", 11, "never closed"),
            ("id > 1 id", 8, "the end of the condition"),
        ];
        for (text, at, expected) in cases {
            let error = condition(text, &scope).expect_err(text);
            assert!(error.message.contains(expected), "{text}: {error:?}");
            assert_eq!(error.at, at, "{text}: {error:?}");
        }
        assert!(matches!(
            query("select count(*) from primary", &scope),
            Ok(Query::Aggregate(Aggregate::CountRows, None))
        ));
        assert!(matches!(
            query("SELECT count(DISTINCT country) FROM primary WHERE id > 1;", &scope),
            Ok(Query::Aggregate(Aggregate::CountDistinct(1), Some(_)))
        ));
        assert!(matches!(query("select id, country from primary where id > 1", &scope), Ok(Query::Rows(Some(_)))));
        let error = query("select count(*) from orders", &scope).expect_err("another table");
        assert!(error.message.contains("`primary`"), "{error:?}");
        let error = query("select sum(country) from primary", &scope).expect_err("text summed");
        assert!(error.message.contains("numeric column"), "{error:?}");
        let error = query("select id from primary group by id", &scope).expect_err("group by");
        assert!(error.message.contains("no joins, GROUP BY"), "{error:?}");
    }
}
