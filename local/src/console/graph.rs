//! The state machine drawn from its ASL definition: top-level states in layers by their
//! distance from `StartAt`, arrows for `Next`, `Default`, each choice and each `Catch`
//! (dashed), each state coloured by what an execution did there.

use std::collections::{BTreeMap, VecDeque};
use std::fmt::Write as _;

use serde_json::Value;

use super::html::escape;

/// What happened in a state during an execution.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Visit {
    /// Not entered.
    NotReached,
    /// Entered and left.
    Succeeded,
    /// Where the execution failed (and a re-drive resumes).
    Failed,
    /// Being run now.
    Running,
}

impl Visit {
    fn colours(self) -> (&'static str, &'static str, &'static str) {
        match self {
            Visit::NotReached => ("#f2f3f3", "#aab7b8", "not reached"),
            Visit::Succeeded => ("#e9f5e1", "#1d8102", "succeeded"),
            Visit::Failed => ("#fde7e3", "#d13212", "failed"),
            Visit::Running => ("#e1f0fa", "#0073bb", "running"),
        }
    }
}

/// A state machine's top-level states and transitions.
#[derive(Debug, Clone)]
pub struct Graph {
    /// Each state: its name, type, layer and place in the layer.
    states: Vec<(String, String, usize, usize)>,
    /// From, to, and whether it is a `Catch`.
    edges: Vec<(usize, usize, bool)>,
}

impl Graph {
    /// The graph of an ASL definition (unresolved `${…}` names are fine: only states and
    /// transitions are read).
    pub fn of(definition: &str) -> anyhow::Result<Graph> {
        let definition: Value = serde_json::from_str(definition)?;
        let states = definition["States"].as_object().ok_or_else(|| anyhow::anyhow!("the definition has no States"))?;
        let start = definition["StartAt"].as_str().unwrap_or_default();
        let targets = |state: &Value| -> Vec<(String, bool)> {
            let mut targets = Vec::new();
            for field in ["Next", "Default"] {
                if let Some(next) = state[field].as_str() {
                    targets.push((next.to_string(), false));
                }
            }
            for choice in state["Choices"].as_array().into_iter().flatten() {
                if let Some(next) = choice["Next"].as_str() {
                    targets.push((next.to_string(), false));
                }
            }
            for catch in state["Catch"].as_array().into_iter().flatten() {
                if let Some(next) = catch["Next"].as_str() {
                    targets.push((next.to_string(), true));
                }
            }
            targets
        };
        // Layers by breadth-first distance from the start; states never reached go last.
        let mut layer: BTreeMap<&str, usize> = BTreeMap::new();
        let mut queue = VecDeque::from([(start, 0usize)]);
        while let Some((name, depth)) = queue.pop_front() {
            if layer.contains_key(name) || !states.contains_key(name) {
                continue;
            }
            layer.insert(name, depth);
            for (next, _) in targets(&states[name]) {
                if let Some((known, _)) = states.get_key_value(next.as_str()) {
                    queue.push_back((known.as_str(), depth + 1));
                }
            }
        }
        let deepest = layer.values().max().copied().unwrap_or(0);
        let mut placed: Vec<(String, String, usize, usize)> = Vec::new();
        let mut widths: BTreeMap<usize, usize> = BTreeMap::new();
        for (name, state) in states {
            let depth = layer.get(name.as_str()).copied().unwrap_or(deepest + 1);
            let slot = widths.entry(depth).or_default();
            placed.push((name.clone(), state["Type"].as_str().unwrap_or("?").to_string(), depth, *slot));
            *slot += 1;
        }
        placed.sort_by_key(|(_, _, depth, slot)| (*depth, *slot));
        let index = |name: &str| placed.iter().position(|(known, ..)| known == name);
        let mut edges = Vec::new();
        for (from, state) in states {
            for (to, caught) in targets(state) {
                if let (Some(from), Some(to)) = (index(from), index(&to)) {
                    edges.push((from, to, caught));
                }
            }
        }
        Ok(Graph { states: placed, edges })
    }

    /// The states' names, in drawing order.
    pub fn names(&self) -> impl Iterator<Item = &str> {
        self.states.iter().map(|(name, ..)| name.as_str())
    }

    /// The graph as inline SVG, each state coloured by `visit`.
    pub fn svg(&self, visit: impl Fn(&str) -> Visit) -> String {
        const WIDTH: usize = 190;
        const HEIGHT: usize = 34;
        const GAP_X: usize = 40;
        const GAP_Y: usize = 36;
        let position = |depth: usize, slot: usize| (20 + slot * (WIDTH + GAP_X), 16 + depth * (HEIGHT + GAP_Y));
        let columns = self.states.iter().map(|(_, _, _, slot)| slot + 1).max().unwrap_or(1);
        let rows = self.states.iter().map(|(_, _, depth, _)| depth + 1).max().unwrap_or(1);
        let (width, height) = (40 + columns * (WIDTH + GAP_X), 32 + rows * (HEIGHT + GAP_Y));
        let mut out = format!(
            "<svg id=\"graph\" width=\"{width}\" height=\"{height}\" viewBox=\"0 0 {width} {height}\" role=\"img\" aria-label=\"the state machine\">"
        );
        out.push_str("<defs><marker id=\"arrow\" viewBox=\"0 0 10 10\" refX=\"9\" refY=\"5\" markerWidth=\"7\" markerHeight=\"7\" orient=\"auto-start-reverse\"><path d=\"M0 0L10 5L0 10z\" fill=\"#545b64\"/></marker></defs>");
        for (from, to, caught) in &self.edges {
            let (_, _, from_depth, from_slot) = &self.states[*from];
            let (_, _, to_depth, to_slot) = &self.states[*to];
            let (x1, y1) = position(*from_depth, *from_slot);
            let (x2, y2) = position(*to_depth, *to_slot);
            let (x1, x2) = (x1 + WIDTH / 2, x2 + WIDTH / 2);
            let (y1, y2) = if to_depth > from_depth { (y1 + HEIGHT, y2) } else { (y1, y2 + HEIGHT) };
            let dash = if *caught { " stroke-dasharray=\"5 4\"" } else { "" };
            let _ = write!(
                out,
                "<line x1=\"{x1}\" y1=\"{y1}\" x2=\"{x2}\" y2=\"{y2}\" stroke=\"#545b64\" stroke-width=\"1.4\" marker-end=\"url(#arrow)\"{dash}/>"
            );
        }
        for (name, kind, depth, slot) in &self.states {
            let (x, y) = position(*depth, *slot);
            let state = visit(name);
            let (fill, stroke, words) = state.colours();
            let _ = write!(
                out,
                "<g class=\"state\" data-state=\"{name}\" data-visit=\"{words}\"><title>{name} ({kind}): {words}</title><rect x=\"{x}\" y=\"{y}\" width=\"{WIDTH}\" height=\"{HEIGHT}\" rx=\"6\" fill=\"{fill}\" stroke=\"{stroke}\" stroke-width=\"{}\"/><text x=\"{}\" y=\"{}\" text-anchor=\"middle\" font-size=\"13\">{name}</text></g>",
                if state == Visit::NotReached { "1" } else { "2.5" },
                x + WIDTH / 2,
                y + HEIGHT / 2 + 5,
                name = escape(name),
                kind = escape(kind),
            );
        }
        out.push_str("</svg>");
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_pipeline_is_drawn_with_every_state_and_transition() {
        let graph = Graph::of(crate::template::DEFINITION).expect("the definition");
        let names: Vec<&str> = graph.names().collect();
        assert_eq!(names[0], "Ingest");
        for state in ["Validate", "QualityGate", "Mask", "Load", "Done", "RecordRejectedRun", "EnforceQualityGate"] {
            assert!(names.contains(&state), "{state} in {names:?}");
        }
        let svg = graph.svg(|name| {
            if name == "Ingest" {
                Visit::Succeeded
            } else if name == "Validate" {
                Visit::Failed
            } else {
                Visit::NotReached
            }
        });
        assert!(svg.contains("data-state=\"Validate\" data-visit=\"failed\""), "{svg}");
        assert!(svg.contains("data-state=\"Ingest\" data-visit=\"succeeded\""));
        assert_eq!(svg.matches("<line ").count(), graph.edges.len());
        // QualityGate's choice and default both leave it.
        assert!(graph.edges.len() >= 8, "{:?}", graph.edges);
    }
}
