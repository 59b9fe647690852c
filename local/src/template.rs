//! The deployed definition and template, read as the offline stack runs them: the SAM
//! template's `DefinitionSubstitutions` resolved to local function ARNs, each function's
//! binary to its stage, the definition parsed and checked.

use std::collections::BTreeMap;

use anyhow::{Context, bail};
use lakestar::stage::Stage;
use serde_json::Value;

use crate::asl::Machine;

/// The state machine definition, as deployed.
pub const DEFINITION: &str = include_str!("../../statemachine/pipeline.asl.json");
/// The SAM template whose `DefinitionSubstitutions` name the functions.
pub const TEMPLATE: &str = include_str!("../../infra/template.yaml");

/// Function ARN → the stage it runs.
pub type FunctionStages = BTreeMap<String, Stage>;

/// Reads the template's `DefinitionSubstitutions` and each function's binary: the
/// substitution name → the function ARN, and the ARN → the stage.
pub fn substitutions(template: &str) -> anyhow::Result<(BTreeMap<String, String>, FunctionStages)> {
    let lines: Vec<&str> = template.lines().collect();
    let indent = |line: &str| line.len() - line.trim_start().len();
    let start = lines
        .iter()
        .position(|line| line.trim() == "DefinitionSubstitutions:")
        .context("the template has no DefinitionSubstitutions")?;
    let base = indent(lines[start]);
    let mut names = BTreeMap::new();
    let mut stages = BTreeMap::new();
    for line in lines[start + 1..].iter().take_while(|line| line.trim().is_empty() || indent(line) > base) {
        let Some((name, value)) = line.trim().split_once(':') else { continue };
        let logical = value
            .trim()
            .strip_prefix("!GetAtt ")
            .and_then(|target| target.strip_suffix(".Arn"))
            .with_context(|| format!("substitution {name}: only `!GetAtt <Function>.Arn` is supported locally"))?;
        let header = lines
            .iter()
            .position(|line| line.trim_end() == format!("  {logical}:"))
            .with_context(|| format!("substitution {name}: no resource {logical} in the template"))?;
        let binary = lines[header + 1..]
            .iter()
            .take_while(|line| line.trim().is_empty() || indent(line) > 2)
            .find_map(|line| line.trim().strip_prefix("Binary:"))
            .map(str::trim)
            .with_context(|| format!("resource {logical} names no Binary"))?;
        let stage = Stage::ALL
            .into_iter()
            .find(|stage| binary == stage.binary())
            .with_context(|| format!("resource {logical}: `{binary}` is not a stage function"))?;
        let arn = format!("arn:aws:lambda:us-east-1:000000000000:function:{binary}");
        names.insert(name.trim().to_string(), arn.clone());
        stages.insert(arn, stage);
    }
    Ok((names, stages))
}

/// The definition with `${Name}` substituted, parsed and checked.
pub fn machine(definition: &str, names: &BTreeMap<String, String>) -> anyhow::Result<Machine> {
    let mut text = definition.to_string();
    for (name, value) in names {
        text = text.replace(&format!("${{{name}}}"), value);
    }
    if let Some(position) = text.find("${") {
        let rest: String = text[position..].chars().take(40).collect();
        bail!("the definition uses a substitution the template does not define: {rest}");
    }
    let value: Value = serde_json::from_str(&text).context("the state machine definition is not JSON")?;
    Machine::parse(&value).map_err(|error| anyhow::anyhow!("statemachine/pipeline.asl.json: {error}"))
}

#[cfg(test)]
mod tests {
    use std::collections::BTreeSet;

    use super::*;

    #[test]
    fn the_template_names_every_function_of_the_definition() {
        let (names, arns) = substitutions(TEMPLATE).expect("substitutions");
        assert_eq!(names.len(), 4);
        assert_eq!(
            names.get("LoadFunctionArn").map(String::as_str),
            Some("arn:aws:lambda:us-east-1:000000000000:function:lakestar-load")
        );
        assert_eq!(arns.values().copied().collect::<BTreeSet<_>>(), lakestar::stage::Stage::ALL.into_iter().collect());
        let machine = machine(DEFINITION, &names).expect("the deployed definition runs locally");
        assert_eq!(machine.start_at, "Ingest");
        assert!(super::machine(DEFINITION, &BTreeMap::new()).is_err(), "an unresolved ${{…}} is refused");
    }

    #[test]
    fn keys_are_encoded_as_s3_events_encode_them() {
        let encoded = lakestar::trigger::encode_key("landing/red flower+café.csv");
        assert_eq!(encoded, "landing/red+flower%2Bcaf%C3%A9.csv");
        assert_eq!(lakestar::trigger::decode_key(&encoded).ok().as_deref(), Some("landing/red flower+café.csv"));
    }
}
