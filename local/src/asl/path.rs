//! Reference paths of the Amazon States Language: `$`, `$.a.b`, `$.a[0]`, `$['a b']`, and the
//! context object's `$$.Execution.Id`; reading with them, and `ResultPath` writing.

use serde_json::{Map, Value};

use super::Failure;

/// One step of a path.
#[derive(Debug, Clone, PartialEq)]
pub enum Step {
    /// An object field.
    Field(String),
    /// An array index.
    Index(usize),
}

/// A parsed reference path.
#[derive(Debug, Clone, PartialEq)]
pub struct Path {
    /// Whether it starts at the context object (`$$`).
    pub context: bool,
    /// The steps after the root.
    pub steps: Vec<Step>,
}

impl Path {
    /// Parses a reference path; anything else (wildcards, filters, slices) is an error.
    pub fn parse(text: &str) -> Result<Path, String> {
        let (context, rest) = if let Some(rest) = text.strip_prefix("$$") {
            (true, rest)
        } else if let Some(rest) = text.strip_prefix('$') {
            (false, rest)
        } else {
            return Err(format!("`{text}` is not a path: it must start with `$`"));
        };
        let mut steps = Vec::new();
        let chars: Vec<char> = rest.chars().collect();
        let mut index = 0;
        while index < chars.len() {
            match chars[index] {
                '.' => {
                    let start = index + 1;
                    let mut end = start;
                    while end < chars.len() && chars[end] != '.' && chars[end] != '[' {
                        end += 1;
                    }
                    let name: String = chars[start..end].iter().collect();
                    if name.is_empty() || name.contains(['*', '?', '@']) {
                        return Err(format!("`{text}`: only plain field names are supported in paths"));
                    }
                    steps.push(Step::Field(name));
                    index = end;
                }
                '[' => {
                    let close = chars[index..]
                        .iter()
                        .position(|&c| c == ']')
                        .map(|offset| index + offset)
                        .ok_or_else(|| format!("`{text}`: unclosed `[`"))?;
                    let inner: String = chars[index + 1..close].iter().collect();
                    let inner = inner.trim();
                    if let Some(quoted) = inner.strip_prefix('\'').and_then(|inner| inner.strip_suffix('\'')) {
                        steps.push(Step::Field(quoted.to_string()));
                    } else if let Ok(position) = inner.parse::<usize>() {
                        steps.push(Step::Index(position));
                    } else {
                        return Err(format!("`{text}`: `[{inner}]` is not supported (only indexes and quoted names)"));
                    }
                    index = close + 1;
                }
                other => return Err(format!("`{text}`: unexpected `{other}`")),
            }
        }
        Ok(Path { context, steps })
    }

    /// The value at this path in `input` (or in `context` for `$$` paths).
    pub fn read(&self, input: &Value, context: &Value) -> Result<Value, Failure> {
        let mut current = if self.context { context } else { input };
        for step in &self.steps {
            let next = match step {
                Step::Field(name) => current.get(name.as_str()),
                Step::Index(position) => current.get(*position),
            };
            current = next.ok_or_else(|| {
                Failure::runtime(format!("The JSONPath {} could not be found in the input", self.display()))
            })?;
        }
        Ok(current.clone())
    }

    /// `input` with `value` placed at this path (the `ResultPath` rule): fields are created as
    /// needed; a path through a non-object is an error.
    pub fn write(&self, mut input: Value, value: Value) -> Result<Value, Failure> {
        if self.steps.is_empty() {
            return Ok(value);
        }
        let mut current = &mut input;
        for (position, step) in self.steps.iter().enumerate() {
            let last = position + 1 == self.steps.len();
            let Step::Field(name) = step else {
                return Err(Failure::runtime(format!("ResultPath {} cannot index into an array", self.display())));
            };
            if current.is_null() {
                *current = Value::Object(Map::new());
            }
            let Value::Object(object) = current else {
                return Err(Failure::runtime(format!(
                    "ResultPath {} goes through a value that is not an object",
                    self.display()
                )));
            };
            if last {
                object.insert(name.clone(), value);
                return Ok(input);
            }
            current = object.entry(name.clone()).or_insert(Value::Object(Map::new()));
        }
        Ok(input)
    }

    fn display(&self) -> String {
        let mut text = if self.context { "$$".to_string() } else { "$".to_string() };
        for step in &self.steps {
            match step {
                Step::Field(name) => {
                    text.push('.');
                    text.push_str(name);
                }
                Step::Index(position) => text.push_str(&format!("[{position}]")),
            }
        }
        text
    }
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    #[test]
    fn reads_fields_indexes_and_the_context_object() {
        let input = json!({"a": {"b c": [10, {"d": true}]}});
        let context = json!({"Execution": {"Id": "x"}});
        let read = |path: &str| Path::parse(path).expect("path").read(&input, &context).expect("found");
        assert_eq!(read("$"), input);
        assert_eq!(read("$.a['b c'][1].d"), json!(true));
        assert_eq!(read("$$.Execution.Id"), json!("x"));
        let missing = Path::parse("$.nope").expect("path").read(&input, &context).expect_err("missing");
        assert_eq!(missing.error, "States.Runtime");
        assert!(Path::parse("$.a[*]").is_err() && Path::parse("a.b").is_err());
    }

    #[test]
    fn result_path_writes_create_fields() {
        // The specification's example: ResultPath "$.master.detail" on {"master": {"detail": [1,2,3]}}.
        let input = json!({"master": {"detail": [1, 2, 3]}});
        let written = Path::parse("$.master.detail").expect("path").write(input, json!(6)).expect("written");
        assert_eq!(written, json!({"master": {"detail": 6}}));
        let written = Path::parse("$.x.y").expect("path").write(json!({}), json!(1)).expect("written");
        assert_eq!(written, json!({"x": {"y": 1}}));
        assert!(Path::parse("$.a.b").expect("path").write(json!({"a": 3}), json!(1)).is_err());
    }
}
