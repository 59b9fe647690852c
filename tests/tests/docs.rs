//! The references in `docs/` against the code they describe: every contract field, every
//! environment variable and every error type is documented, and the docs say of each error
//! what the state machine does with it.

use std::collections::BTreeMap;

const CONFIG_SOURCE: &str = include_str!("../../shared/src/contract/config.rs");
const CONFIGURATION: &str = include_str!("../../docs/configuration.md");
const ERRORS: &str = include_str!("../../docs/errors.md");

/// The contract's fields by struct, as TOML spells them (`rename`s applied).
fn contract_fields() -> BTreeMap<String, Vec<String>> {
    let mut fields: BTreeMap<String, Vec<String>> = BTreeMap::new();
    let mut current: Option<String> = None;
    let mut rename: Option<String> = None;
    for line in CONFIG_SOURCE.lines() {
        let line = line.trim();
        if let Some(rest) = line.strip_prefix("pub struct ") {
            let name = rest.split([' ', '{']).next().unwrap_or_default().to_string();
            fields.entry(name.clone()).or_default();
            current = Some(name);
        } else if line == "}" {
            current = None;
        } else if let Some(at) = line.find("rename = \"") {
            rename = line[at + 10..].split('"').next().map(str::to_string);
        } else if let (Some(structure), Some((name, _))) =
            (&current, line.strip_prefix("pub ").and_then(|rest| rest.split_once(':')))
        {
            let name = rename.take().unwrap_or_else(|| name.to_string());
            fields.entry(structure.clone()).or_default().push(name);
        }
    }
    fields
}

/// The section of `doc` that follows `<!-- marker -->`, up to the next marker.
fn section<'a>(doc: &'a str, marker: &str) -> Option<&'a str> {
    let start = doc.find(&format!("<!-- {marker} -->"))?;
    let rest = &doc[start + marker.len() + 9..];
    Some(rest.find("<!-- ").map_or(rest, |end| &rest[..end]))
}

#[test]
fn every_contract_field_is_in_the_configuration_reference() {
    let fields = contract_fields();
    assert!(fields.len() >= 11 && fields["ColumnConfig"].contains(&"type".to_string()), "{fields:?}");
    let mut missing = Vec::new();
    for (structure, names) in &fields {
        let Some(text) = section(CONFIGURATION, structure) else {
            missing.push(format!("a section <!-- {structure} -->"));
            continue;
        };
        for name in names {
            if !text.contains(&format!("\n| `{name}` |")) {
                missing.push(format!("{structure}.{name}"));
            }
        }
    }
    assert!(missing.is_empty(), "docs/configuration.md lacks: {missing:?}");
}

#[test]
fn every_environment_variable_is_in_the_configuration_reference() {
    let text = section(CONFIGURATION, "VARIABLES").expect("an environment variables section");
    let missing: Vec<&str> = lakestar::config::VARIABLES
        .iter()
        .map(|variable| variable.name)
        .filter(|name| !text.contains(&format!("\n| `{name}` |")))
        .collect();
    assert!(missing.is_empty(), "docs/configuration.md lacks the variables {missing:?}");
}

#[test]
fn every_error_type_is_in_the_error_reference_with_what_the_state_machine_does() {
    let mut problems = Vec::new();
    for error_type in lakestar::Error::TYPES.iter().chain(&["QualityGateFailed"]) {
        let heading = format!("\n## `{error_type}`\n");
        let Some(start) = ERRORS.find(&heading) else {
            problems.push(format!("{error_type}: no `## {error_type}` section"));
            continue;
        };
        let body = &ERRORS[start + heading.len()..];
        let retried = if lakestar::Error::TRANSIENT.contains(error_type) { "yes" } else { "no" };
        if !body.starts_with(&format!("Retried: {retried}.")) {
            problems.push(format!("{error_type}: should open with `Retried: {retried}.`"));
        }
    }
    assert!(problems.is_empty(), "docs/errors.md: {problems:?}");
}
