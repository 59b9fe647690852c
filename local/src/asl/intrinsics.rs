//! Intrinsic functions: `States.Format`, `States.StringToJson`, `States.JsonToString`,
//! `States.Array`, `States.UUID`, plus `States.ArrayLength` and `States.MathAdd`. Arguments
//! are string literals in single quotes, numbers, booleans, `null`, paths, or nested calls.

use serde_json::Value;

use super::Failure;
use super::path::Path;

/// The functions the interpreter knows.
pub const SUPPORTED: [&str; 7] = [
    "States.Format",
    "States.StringToJson",
    "States.JsonToString",
    "States.Array",
    "States.UUID",
    "States.ArrayLength",
    "States.MathAdd",
];

/// A parsed call.
#[derive(Debug, Clone, PartialEq)]
pub enum Expr {
    /// A literal.
    Literal(Value),
    /// A path into the input or context.
    Path(Path),
    /// A nested call.
    Call(String, Vec<Expr>),
}

/// Parses `States.X(arg, …)`, checking the function is one the interpreter knows.
pub fn parse(text: &str) -> Result<Expr, String> {
    let chars: Vec<char> = text.trim().chars().collect();
    let mut position = 0;
    let expr = parse_expr(&chars, &mut position, text)?;
    skip_spaces(&chars, &mut position);
    if position != chars.len() {
        return Err(format!("`{text}`: unexpected text after the call"));
    }
    match &expr {
        Expr::Call(..) => Ok(expr),
        _ => Err(format!("`{text}` is not an intrinsic function call")),
    }
}

fn skip_spaces(chars: &[char], position: &mut usize) {
    while *position < chars.len() && chars[*position].is_whitespace() {
        *position += 1;
    }
}

fn parse_expr(chars: &[char], position: &mut usize, text: &str) -> Result<Expr, String> {
    skip_spaces(chars, position);
    let start = *position;
    match chars.get(start) {
        Some('\'') => {
            let mut value = String::new();
            *position += 1;
            loop {
                match chars.get(*position) {
                    None => return Err(format!("`{text}`: unclosed string")),
                    Some('\\') => {
                        if let Some(next) = chars.get(*position + 1) {
                            // Escaped braces stay escaped for States.Format to tell from `{}`.
                            if matches!(next, '{' | '}') {
                                value.push('\\');
                            }
                            value.push(*next);
                        }
                        *position += 2;
                    }
                    Some('\'') => {
                        *position += 1;
                        break;
                    }
                    Some(other) => {
                        value.push(*other);
                        *position += 1;
                    }
                }
            }
            Ok(Expr::Literal(Value::String(value)))
        }
        Some('$') => {
            while *position < chars.len() && !matches!(chars[*position], ',' | ')') && !chars[*position].is_whitespace()
            {
                *position += 1;
            }
            let path: String = chars[start..*position].iter().collect();
            Path::parse(&path).map(Expr::Path)
        }
        Some(_) => {
            while *position < chars.len()
                && !matches!(chars[*position], ',' | ')' | '(')
                && !chars[*position].is_whitespace()
            {
                *position += 1;
            }
            let word: String = chars[start..*position].iter().collect();
            skip_spaces(chars, position);
            if chars.get(*position) == Some(&'(') {
                if !SUPPORTED.contains(&word.as_str()) {
                    return Err(format!(
                        "`{word}` is not an intrinsic function the local interpreter supports ({})",
                        SUPPORTED.join(", ")
                    ));
                }
                *position += 1;
                let mut arguments = Vec::new();
                skip_spaces(chars, position);
                if chars.get(*position) == Some(&')') {
                    *position += 1;
                    return Ok(Expr::Call(word, arguments));
                }
                loop {
                    arguments.push(parse_expr(chars, position, text)?);
                    skip_spaces(chars, position);
                    match chars.get(*position) {
                        Some(',') => *position += 1,
                        Some(')') => {
                            *position += 1;
                            return Ok(Expr::Call(word, arguments));
                        }
                        _ => return Err(format!("`{text}`: expected `,` or `)`")),
                    }
                }
            }
            match word.as_str() {
                "null" => Ok(Expr::Literal(Value::Null)),
                "true" => Ok(Expr::Literal(Value::Bool(true))),
                "false" => Ok(Expr::Literal(Value::Bool(false))),
                number => serde_json::from_str::<serde_json::Number>(number)
                    .map(|number| Expr::Literal(Value::Number(number)))
                    .map_err(|_| format!("`{text}`: `{number}` is not a literal, a path or a call")),
            }
        }
        None => Err(format!("`{text}`: an argument is missing")),
    }
}

fn intrinsic_failure(message: String) -> Failure {
    Failure { error: "States.IntrinsicFailure".to_string(), cause: message }
}

/// Evaluates a parsed call against the input and the context object.
pub fn evaluate(expr: &Expr, input: &Value, context: &Value) -> Result<Value, Failure> {
    match expr {
        Expr::Literal(value) => Ok(value.clone()),
        Expr::Path(path) => path.read(input, context),
        Expr::Call(name, arguments) => {
            let values: Vec<Value> =
                arguments.iter().map(|argument| evaluate(argument, input, context)).collect::<Result<_, _>>()?;
            call(name, values)
        }
    }
}

fn call(name: &str, values: Vec<Value>) -> Result<Value, Failure> {
    let arity = |expected: usize| {
        if values.len() == expected {
            Ok(())
        } else {
            Err(intrinsic_failure(format!("{name} takes {expected} argument(s), got {}", values.len())))
        }
    };
    match name {
        "States.Format" => {
            let Some(Value::String(template)) = values.first() else {
                return Err(intrinsic_failure("States.Format needs a string template first".to_string()));
            };
            let mut arguments = values[1..].iter();
            let mut out = String::new();
            let mut chars = template.chars().peekable();
            while let Some(c) = chars.next() {
                if c == '\\' && matches!(chars.peek(), Some('{' | '}')) {
                    out.extend(chars.next());
                } else if c == '{' && chars.peek() == Some(&'}') {
                    chars.next();
                    let argument = arguments
                        .next()
                        .ok_or_else(|| intrinsic_failure("States.Format has more {} than arguments".to_string()))?;
                    match argument {
                        Value::String(text) => out.push_str(text),
                        Value::Object(_) | Value::Array(_) => {
                            return Err(intrinsic_failure(
                                "States.Format arguments must be strings, numbers, booleans or null".to_string(),
                            ));
                        }
                        other => out.push_str(&other.to_string()),
                    }
                } else {
                    out.push(c);
                }
            }
            if arguments.next().is_some() {
                return Err(intrinsic_failure("States.Format has more arguments than {}".to_string()));
            }
            Ok(Value::String(out))
        }
        "States.StringToJson" => {
            arity(1)?;
            match &values[0] {
                Value::String(text) => serde_json::from_str(text)
                    .map_err(|error| intrinsic_failure(format!("States.StringToJson: {error}"))),
                _ => Err(intrinsic_failure("States.StringToJson takes a string".to_string())),
            }
        }
        "States.JsonToString" => {
            arity(1)?;
            Ok(Value::String(values[0].to_string()))
        }
        "States.Array" => Ok(Value::Array(values)),
        "States.UUID" => {
            arity(0)?;
            Ok(Value::String(uuid_v4()))
        }
        "States.ArrayLength" => {
            arity(1)?;
            match &values[0] {
                Value::Array(items) => Ok(Value::from(items.len())),
                _ => Err(intrinsic_failure("States.ArrayLength takes an array".to_string())),
            }
        }
        "States.MathAdd" => {
            arity(2)?;
            match (values[0].as_i64(), values[1].as_i64()) {
                (Some(a), Some(b)) => Ok(Value::from(a + b)),
                _ => Err(intrinsic_failure("States.MathAdd takes two integers".to_string())),
            }
        }
        other => Err(intrinsic_failure(format!("unknown intrinsic {other}"))),
    }
}

/// A random (version 4) UUID.
fn uuid_v4() -> String {
    use std::hash::{BuildHasher, Hasher};
    let mut bytes = [0u8; 16];
    for chunk in bytes.chunks_mut(8) {
        let mut hasher = std::collections::hash_map::RandomState::new().build_hasher();
        hasher
            .write_u128(std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map_or(0, |d| d.as_nanos()));
        chunk.copy_from_slice(&hasher.finish().to_le_bytes());
    }
    bytes[6] = (bytes[6] & 0x0f) | 0x40;
    bytes[8] = (bytes[8] & 0x3f) | 0x80;
    let hex: String = bytes.iter().map(|byte| format!("{byte:02x}")).collect();
    format!("{}-{}-{}-{}-{}", &hex[0..8], &hex[8..12], &hex[12..16], &hex[16..20], &hex[20..32])
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    fn run(text: &str, input: Value) -> Result<Value, Failure> {
        evaluate(&parse(text).expect("parses"), &input, &json!({}))
    }

    #[test]
    fn the_specification_examples() {
        // States.Format: "Your name is {}, we are in the year {}" with $.name and 2020.
        let out = run("States.Format('Your name is {}, we are in the year {}', $.name, 2020)", json!({"name": "Foo"}));
        assert_eq!(out.expect("ok"), json!("Your name is Foo, we are in the year 2020"));
        // States.StringToJson on an escaped JSON string.
        let out = run("States.StringToJson($.someString)", json!({"someString": "{\"number\": 20}"}));
        assert_eq!(out.expect("ok"), json!({"number": 20}));
        // States.JsonToString on an object.
        let out = run("States.JsonToString($.someJson)", json!({"someJson": {"name": "Foo", "year": 2020}}));
        assert_eq!(out.expect("ok"), json!("{\"name\":\"Foo\",\"year\":2020}"));
        // States.Array('Foo', 2020, $.someJson, null).
        let out = run("States.Array('Foo', 2020, $.someJson, null)", json!({"someJson": {"random": "abcdefg"}}));
        assert_eq!(out.expect("ok"), json!(["Foo", 2020, {"random": "abcdefg"}, null]));
        let uuid = run("States.UUID()", json!({})).expect("ok");
        let uuid = uuid.as_str().expect("string");
        assert_eq!((uuid.len(), &uuid[14..15]), (36, "4"));
        assert_eq!(run("States.ArrayLength(States.Array(1, 2, 3))", json!({})).expect("ok"), json!(3));
        assert_eq!(run("States.MathAdd($.a, -1)", json!({"a": 111})).expect("ok"), json!(110));
        // An escaped quote and brace in a literal.
        assert_eq!(run("States.Format('it\\'s \\{}')", json!({})).expect("ok"), json!("it's {}"));
    }

    #[test]
    fn unknown_functions_and_bad_arguments_are_named() {
        let error = parse("States.Hash($.a, 'SHA-1')").expect_err("unsupported");
        assert!(error.contains("States.Hash"), "{error}");
        let failure = run("States.StringToJson($.a)", json!({"a": 3})).expect_err("not a string");
        assert_eq!(failure.error, "States.IntrinsicFailure");
    }
}
