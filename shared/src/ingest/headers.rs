//! Mapping a file's headers (or JSON keys) to raw column names, and the schema drift it
//! reveals against the contract.

use std::collections::HashMap;

use serde::{Deserialize, Serialize};

use crate::contract::{Dataset, normalize_header, sanitize_identifier};

/// Columns a file has that the contract lacks, and contract columns the file lacks.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Drift {
    /// Raw names of columns the contract does not declare (kept in raw).
    pub added: Vec<String>,
    /// Contract columns the file does not have.
    pub missing: Vec<String>,
}

/// Assigns raw column names to source headers, as they are met.
#[derive(Debug)]
pub struct HeaderMapper<'a> {
    dataset: &'a Dataset,
    /// Raw names given so far, in source order.
    names: Vec<String>,
    /// Header as written → its raw column index (for JSON keys met again).
    seen: HashMap<String, usize>,
    added: Vec<String>,
}

impl<'a> HeaderMapper<'a> {
    /// A mapper for one file of `dataset`.
    pub fn new(dataset: &'a Dataset) -> Self {
        HeaderMapper { dataset, names: Vec::new(), seen: HashMap::new(), added: Vec::new() }
    }

    /// The raw column index of `header`, giving it a name when it is new: the contract
    /// column it spells (through name or alias), or else a cleaned-up identifier. A second
    /// header spelling an already-taken column becomes `<name>_2` and counts as drift.
    pub fn index(&mut self, header: &str) -> usize {
        if let Some(&index) = self.seen.get(header) {
            return index;
        }
        self.add(header)
    }

    /// A new raw column for `header`, even when the same text was met before (a CSV header
    /// row's columns are distinct however they are spelled).
    pub fn add(&mut self, header: &str) -> usize {
        let key = normalize_header(header);
        let contract = self
            .dataset
            .columns
            .iter()
            .find(|column| column.header_keys.contains(&key))
            .map(|column| column.name.clone());
        let name = match contract {
            Some(name) if !self.names.contains(&name) => name,
            Some(name) => {
                let name = self.unique(&name);
                self.added.push(name.clone());
                name
            }
            None => {
                let mut base = sanitize_identifier(header);
                if base.is_empty() {
                    base = format!("column_{}", self.names.len() + 1);
                }
                let name = self.unique(&base);
                self.added.push(name.clone());
                name
            }
        };
        self.names.push(name);
        let index = self.names.len() - 1;
        self.seen.insert(header.to_string(), index);
        index
    }

    fn unique(&self, base: &str) -> String {
        let taken =
            |name: &str| self.names.iter().any(|existing| existing == name) || self.dataset.column(name).is_some();
        if !taken(base) {
            return base.to_string();
        }
        (2..).map(|n| format!("{base}_{n}")).find(|name| !taken(name)).unwrap_or_else(|| base.to_string())
    }

    /// The raw names so far, in source order.
    pub fn names(&self) -> &[String] {
        &self.names
    }

    /// The drift against the contract.
    pub fn drift(&self) -> Drift {
        let missing = self
            .dataset
            .columns
            .iter()
            .filter(|column| !self.names.contains(&column.name))
            .map(|column| column.name.clone())
            .collect();
        Drift { added: self.added.clone(), missing }
    }

    /// Fails with `SchemaMismatch` when the file lacks a required column; `place` says where
    /// the columns were read (e.g. `line 1: the header`).
    pub fn require(&self, key: &str, place: &str) -> crate::Result<()> {
        let missing = self.missing_required();
        if missing.is_empty() {
            return Ok(());
        }
        Err(crate::Error::SchemaMismatch {
            key: key.to_string(),
            message: format!(
                "required column(s) {} not found in {place} ({}); add them to the file, or add the file's spelling to the column's `aliases` in pipeline.toml",
                missing.join(", "),
                self.names.join(", ")
            ),
        })
    }

    /// The contract's required columns the file lacks.
    pub fn missing_required(&self) -> Vec<String> {
        self.dataset
            .columns
            .iter()
            .filter(|column| column.config.required && !self.names.contains(&column.name))
            .map(|column| column.name.clone())
            .collect()
    }
}
