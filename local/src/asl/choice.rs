//! Choice rules: every comparison operator of the specification (and its `…Path` form),
//! `And`, `Or`, `Not`, and the type tests `IsNull`, `IsPresent`, `IsNumeric`, `IsString`,
//! `IsBoolean`, `IsTimestamp`.

use serde_json::Value;

use super::Failure;
use super::path::Path;

/// A compiled Choice rule.
#[derive(Debug, Clone)]
pub enum Rule {
    /// All of them.
    And(Vec<Rule>),
    /// Any of them.
    Or(Vec<Rule>),
    /// Not it.
    Not(Box<Rule>),
    /// `Variable` compared by `operator` with a literal or (for `…Path`) another path.
    Compare {
        /// The value tested.
        variable: Path,
        /// `StringEquals`, `NumericLessThan`, `IsNull`, … (without `Path`).
        operator: String,
        /// What it is compared with.
        operand: Operand,
    },
}

/// What a comparison compares with.
#[derive(Debug, Clone)]
pub enum Operand {
    /// A literal from the definition.
    Literal(Value),
    /// A path into the input.
    Path(Path),
}

const COMPARISONS: [&str; 23] = [
    "StringEquals",
    "StringLessThan",
    "StringGreaterThan",
    "StringLessThanEquals",
    "StringGreaterThanEquals",
    "StringMatches",
    "NumericEquals",
    "NumericLessThan",
    "NumericGreaterThan",
    "NumericLessThanEquals",
    "NumericGreaterThanEquals",
    "BooleanEquals",
    "TimestampEquals",
    "TimestampLessThan",
    "TimestampGreaterThan",
    "TimestampLessThanEquals",
    "TimestampGreaterThanEquals",
    "IsNull",
    "IsPresent",
    "IsNumeric",
    "IsString",
    "IsBoolean",
    "IsTimestamp",
];

/// Compiles a rule (a `Choices` element, without its `Next`, or a nested rule).
pub fn compile(rule: &Value, at: &str) -> Result<Rule, String> {
    let object = rule.as_object().ok_or_else(|| format!("{at}: a choice rule must be an object"))?;
    if let Some(rules) = object.get("And").or_else(|| object.get("Or")) {
        let rules = rules.as_array().ok_or_else(|| format!("{at}: And/Or takes an array of rules"))?;
        let compiled = rules.iter().map(|rule| compile(rule, at)).collect::<Result<Vec<_>, _>>()?;
        return Ok(if object.contains_key("And") { Rule::And(compiled) } else { Rule::Or(compiled) });
    }
    if let Some(rule) = object.get("Not") {
        return Ok(Rule::Not(Box::new(compile(rule, at)?)));
    }
    let variable =
        object.get("Variable").and_then(Value::as_str).ok_or_else(|| format!("{at}: a comparison needs `Variable`"))?;
    let variable = Path::parse(variable).map_err(|error| format!("{at}: {error}"))?;
    for (key, value) in object {
        if matches!(key.as_str(), "Variable" | "Next" | "Comment") {
            continue;
        }
        let (operator, is_path) = match key.strip_suffix("Path") {
            Some(base) if COMPARISONS.contains(&base) && !base.starts_with("Is") => (base, true),
            _ => (key.as_str(), false),
        };
        if !COMPARISONS.contains(&operator) {
            return Err(format!("{at}: `{key}` is not a comparison operator the local interpreter supports"));
        }
        let operand = if is_path {
            let path = value.as_str().ok_or_else(|| format!("{at}: `{key}` takes a path"))?;
            Operand::Path(Path::parse(path).map_err(|error| format!("{at}: {error}"))?)
        } else {
            Operand::Literal(value.clone())
        };
        return Ok(Rule::Compare { variable, operator: operator.to_string(), operand });
    }
    Err(format!("{at}: the rule has no comparison operator"))
}

/// Evaluates a rule on the input.
pub fn evaluate(rule: &Rule, input: &Value, context: &Value) -> Result<bool, Failure> {
    match rule {
        Rule::And(rules) => {
            for rule in rules {
                if !evaluate(rule, input, context)? {
                    return Ok(false);
                }
            }
            Ok(true)
        }
        Rule::Or(rules) => {
            for rule in rules {
                if evaluate(rule, input, context)? {
                    return Ok(true);
                }
            }
            Ok(false)
        }
        Rule::Not(rule) => Ok(!evaluate(rule, input, context)?),
        Rule::Compare { variable, operator, operand } => {
            let value = variable.read(input, context);
            let expected = match operand {
                Operand::Literal(value) => value.clone(),
                Operand::Path(path) => path.read(input, context)?,
            };
            if operator == "IsPresent" {
                return Ok(value.is_ok() == (expected == Value::Bool(true)));
            }
            let value = value?;
            let wanted = expected == Value::Bool(true);
            Ok(match operator.as_str() {
                "IsNull" => value.is_null() == wanted,
                "IsNumeric" => value.is_number() == wanted,
                "IsString" => value.is_string() == wanted,
                "IsBoolean" => value.is_boolean() == wanted,
                "IsTimestamp" => value.as_str().and_then(timestamp).is_some() == wanted,
                "StringMatches" => match (value.as_str(), expected.as_str()) {
                    (Some(text), Some(pattern)) => matches_pattern(text, pattern),
                    _ => false,
                },
                "BooleanEquals" => value.is_boolean() && value == expected,
                op if op.starts_with("String") => match (value.as_str(), expected.as_str()) {
                    (Some(left), Some(right)) => ordered(op.trim_start_matches("String"), left.cmp(right)),
                    _ => false,
                },
                op if op.starts_with("Numeric") => match (value.as_f64(), expected.as_f64()) {
                    (Some(left), Some(right)) => match left.partial_cmp(&right) {
                        Some(ordering) => ordered(op.trim_start_matches("Numeric"), ordering),
                        None => false,
                    },
                    _ => false,
                },
                op if op.starts_with("Timestamp") => {
                    match (value.as_str().and_then(timestamp), expected.as_str().and_then(timestamp)) {
                        (Some(left), Some(right)) => ordered(op.trim_start_matches("Timestamp"), left.cmp(&right)),
                        _ => false,
                    }
                }
                _ => false,
            })
        }
    }
}

fn ordered(comparison: &str, ordering: std::cmp::Ordering) -> bool {
    use std::cmp::Ordering::{Equal, Greater, Less};
    match comparison {
        "Equals" => ordering == Equal,
        "LessThan" => ordering == Less,
        "GreaterThan" => ordering == Greater,
        "LessThanEquals" => ordering != Greater,
        "GreaterThanEquals" => ordering != Less,
        _ => false,
    }
}

fn timestamp(text: &str) -> Option<chrono::DateTime<chrono::FixedOffset>> {
    chrono::DateTime::parse_from_rfc3339(text).ok()
}

/// `*` matches any run of characters; `\*` and `\\` are literal.
fn matches_pattern(text: &str, pattern: &str) -> bool {
    let mut tokens: Vec<Option<char>> = Vec::new();
    let mut chars = pattern.chars();
    while let Some(c) = chars.next() {
        match c {
            '\\' => tokens.push(chars.next()),
            '*' => tokens.push(None),
            other => tokens.push(Some(other)),
        }
    }
    let text: Vec<char> = text.chars().collect();
    fn go(tokens: &[Option<char>], text: &[char]) -> bool {
        match tokens.split_first() {
            None => text.is_empty(),
            Some((None, rest)) => (0..=text.len()).any(|skip| go(rest, &text[skip..])),
            Some((Some(c), rest)) => text.first() == Some(c) && go(rest, &text[1..]),
        }
    }
    go(&tokens, &text)
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    fn check(rule: Value, input: Value) -> bool {
        evaluate(&compile(&rule, "test").expect("compiles"), &input, &json!({})).expect("evaluates")
    }

    #[test]
    fn the_specification_examples() {
        // From the specification: a Not rule and an And of numeric bounds.
        let not = json!({"Not": {"Variable": "$.type", "StringEquals": "Private"}, "Next": "Public"});
        assert!(check(not.clone(), json!({"type": "Public"})));
        assert!(!check(not, json!({"type": "Private"})));
        let range = json!({"And": [
            {"Variable": "$.value", "NumericGreaterThanEquals": 20},
            {"Variable": "$.value", "NumericLessThan": 30}
        ], "Next": "ValueInTwenties"});
        assert!(check(range.clone(), json!({"value": 20})) && check(range.clone(), json!({"value": 29.5})));
        assert!(!check(range, json!({"value": 30})));
        // Comparing a string with a number is false, not an error.
        assert!(!check(json!({"Variable": "$.value", "NumericEquals": 1}), json!({"value": "1"})));
    }

    #[test]
    fn every_operator_family() {
        let input = json!({"s": "beta", "n": 5, "b": true, "t": "2024-01-02T00:00:00Z", "z": null, "other": "beta"});
        assert!(check(json!({"Variable": "$.s", "StringGreaterThan": "alpha"}), input.clone()));
        assert!(check(json!({"Variable": "$.s", "StringLessThanEquals": "beta"}), input.clone()));
        assert!(check(json!({"Variable": "$.s", "StringEqualsPath": "$.other"}), input.clone()));
        assert!(check(json!({"Variable": "$.s", "StringMatches": "b*a"}), input.clone()));
        assert!(!check(json!({"Variable": "$.s", "StringMatches": "b\\*a"}), input.clone()));
        assert!(check(json!({"Variable": "$.n", "NumericLessThanEqualsPath": "$.n"}), input.clone()));
        assert!(check(json!({"Variable": "$.b", "BooleanEquals": true}), input.clone()));
        assert!(check(json!({"Variable": "$.t", "TimestampGreaterThan": "2024-01-01T23:59:59+00:00"}), input.clone()));
        assert!(check(json!({"Variable": "$.z", "IsNull": true}), input.clone()));
        assert!(check(json!({"Variable": "$.missing", "IsPresent": false}), input.clone()));
        assert!(check(json!({"Variable": "$.n", "IsNumeric": true}), input.clone()));
        assert!(check(json!({"Variable": "$.t", "IsTimestamp": true}), input.clone()));
        assert!(check(
            json!({"Or": [{"Variable": "$.s", "IsBoolean": true}, {"Variable": "$.s", "IsString": true}]}),
            input
        ));
        assert!(compile(&json!({"Variable": "$.s", "StringSortsBefore": "x"}), "test").is_err());
    }
}
