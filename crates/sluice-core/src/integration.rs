//! Integration definitions: the contract a third-party system posts against (its staging table
//! and fields) and the transform map that turns a staged row into a target record. One TOML file
//! per integration; format documented in docs/integrations.md.

use std::fmt;
use std::path::Path;
use std::sync::Arc;

use serde::Deserialize;

use crate::schema::{Field, FieldKind, TableSchema, is_identifier};
use crate::tables::{self, Catalog};

/// The definition `sluice serve` uses when no integrations folder is given.
pub const DEFAULT_DEFINITION: &str = include_str!("../integrations/u_incident_import.toml");

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Definition {
    pub name: String,
    #[serde(default)]
    pub description: String,
    pub version: String,
    pub staging_table: String,
    pub target_table: String,
    pub fields: Vec<FieldSpec>,
    pub transform: TransformSpec,
}

#[derive(Debug, Clone, Copy, Deserialize, PartialEq, Eq)]
#[serde(rename_all = "snake_case")]
pub enum FieldType {
    String,
    Integer,
    Boolean,
    Choice,
    DateTime,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct FieldSpec {
    pub name: String,
    #[serde(default)]
    pub label: Option<String>,
    #[serde(rename = "type")]
    pub kind: FieldType,
    #[serde(default)]
    pub required: bool,
    #[serde(default)]
    pub max_length: Option<usize>,
    #[serde(default)]
    pub choices: Vec<String>,
    /// Used when the sender leaves the field out or empty.
    #[serde(default)]
    pub default: Option<String>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TransformSpec {
    /// The transform map's name, reported in every Import Set API result.
    pub name: String,
    /// Target fields that together identify an existing record to update.
    #[serde(default)]
    pub coalesce: Vec<String>,
    /// Only active records match the coalesce fields (a closed incident is not reopened).
    #[serde(default = "yes")]
    pub coalesce_active_only: bool,
    /// When every coalesce value is empty: insert (true) or skip the row (false, ServiceNow's
    /// default).
    #[serde(default)]
    pub create_on_empty_coalesce: bool,
    #[serde(default)]
    pub field_map: Vec<FieldMapSpec>,
}

fn yes() -> bool {
    true
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct FieldMapSpec {
    pub source: String,
    pub target: String,
    #[serde(default)]
    pub reference: Option<ReferenceSpec>,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ReferenceSpec {
    /// Fields of the referenced table compared, case-insensitively, with the incoming value; the
    /// first that matches wins. A 32-hex sys_id of an existing record is always accepted.
    #[serde(rename = "match")]
    pub match_fields: Vec<String>,
    pub on_unknown: OnUnknown,
}

#[derive(Debug, Clone, Copy, Deserialize, PartialEq, Eq)]
#[serde(rename_all = "snake_case")]
pub enum OnUnknown {
    /// Create the referenced record (ServiceNow's "foreign record insert").
    Create,
    /// Leave the target field empty and say so in the row's status message.
    Ignore,
    /// Fail the row with `unknown_reference`.
    Reject,
}

/// One problem in a definition, located by file and key.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DefinitionProblem {
    pub file: String,
    pub key: String,
    pub message: String,
}

impl fmt::Display for DefinitionProblem {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}: {}: {}", self.file, self.key, self.message)
    }
}

/// A checked definition, ready to process rows.
#[derive(Debug)]
pub struct Integration {
    pub definition: Definition,
    pub staging: Arc<TableSchema>,
    pub target: Arc<TableSchema>,
    /// Where the definition came from, for messages.
    pub origin: String,
}

impl Integration {
    pub fn name(&self) -> &str {
        &self.definition.name
    }

    pub fn field(&self, name: &str) -> Option<&FieldSpec> {
        self.definition.fields.iter().find(|f| f.name == name)
    }

    pub fn builtin_default(catalog: &Catalog) -> Self {
        Self::parse(DEFAULT_DEFINITION, "built-in u_incident_import", catalog)
            .expect("the built-in default integration is valid")
    }

    /// Parses and checks one definition against the tables in `catalog`, reporting every problem.
    pub fn parse(text: &str, origin: &str, catalog: &Catalog) -> Result<Self, Vec<DefinitionProblem>> {
        let problem =
            |key: &str, message: String| DefinitionProblem { file: origin.to_owned(), key: key.to_owned(), message };
        let definition: Definition = toml::from_str(text).map_err(|e| {
            let key = e
                .span()
                .map(|s| format!("line {}", text[..s.start].lines().count().max(1)))
                .unwrap_or_else(|| "(file)".to_owned());
            vec![problem(&key, e.message().to_owned())]
        })?;
        let mut problems = Vec::new();
        let d = &definition;

        if !is_identifier(&d.name) {
            problems.push(problem("name", "use lowercase letters, digits and underscores".into()));
        }
        if d.version.trim().is_empty() {
            problems.push(problem("version", "must not be empty".into()));
        }
        if !is_identifier(&d.staging_table) || !d.staging_table.starts_with("u_") {
            problems.push(problem(
                "staging_table",
                "must start with u_ and use lowercase letters, digits and underscores".into(),
            ));
        } else if catalog.get(&d.staging_table).is_some() {
            problems.push(problem("staging_table", format!("{} is already a table", d.staging_table)));
        }
        let target = catalog.get(&d.target_table).cloned();
        if d.target_table != tables::INCIDENT {
            problems.push(problem("target_table", "only incident is supported as a target".into()));
        }

        let mut seen = std::collections::BTreeSet::new();
        for (i, f) in d.fields.iter().enumerate() {
            let key = format!("fields[{i}] ({})", f.name);
            if !is_identifier(&f.name) || !f.name.starts_with("u_") {
                problems.push(problem(
                    &key,
                    "field names start with u_ and use lowercase letters, digits and underscores".into(),
                ));
            }
            if !seen.insert(f.name.as_str()) {
                problems.push(problem(&key, "defined twice".into()));
            }
            match (f.kind, f.choices.is_empty()) {
                (FieldType::Choice, true) => problems.push(problem(&key, "a choice field needs choices".into())),
                (FieldType::Choice, false) | (_, true) => {}
                (_, false) => problems.push(problem(&key, "choices are only allowed on type = \"choice\"".into())),
            }
            if f.max_length == Some(0) {
                problems.push(problem(&key, "max_length must be at least 1".into()));
            }
        }

        let t = &d.transform;
        if t.name.trim().is_empty() {
            problems.push(problem("transform.name", "must not be empty".into()));
        }
        let mut mapped_targets = std::collections::BTreeSet::new();
        for (i, m) in t.field_map.iter().enumerate() {
            let key = format!("transform.field_map[{i}] ({} -> {})", m.source, m.target);
            if !seen.contains(m.source.as_str()) {
                problems.push(problem(&key, format!("source {} is not one of the fields", m.source)));
            }
            if !mapped_targets.insert(m.target.as_str()) {
                problems.push(problem(&key, format!("{} is mapped twice", m.target)));
            }
            let Some(target) = &target else { continue };
            let Some(field) = target.visible_field(&m.target) else {
                problems.push(problem(&key, format!("{} has no field {}", target.name, m.target)));
                continue;
            };
            if m.target.starts_with("sys_") || m.target == target.display_field {
                problems.push(problem(&key, format!("{} is set by sluice, not by a field map", m.target)));
            }
            match (&field.kind, &m.reference) {
                (FieldKind::Reference(table), Some(r)) => {
                    let referenced = catalog.get(table);
                    if r.match_fields.is_empty() {
                        problems.push(problem(&key, "reference.match needs at least one field".into()));
                    }
                    for mf in &r.match_fields {
                        if referenced.and_then(|s| s.visible_field(mf)).is_none() {
                            problems.push(problem(&key, format!("{table} has no field {mf} to match on")));
                        }
                    }
                }
                (FieldKind::Reference(_), None) => problems.push(problem(
                    &key,
                    format!("{} is a reference: add reference = {{ match = [...], on_unknown = ... }}", m.target),
                )),
                (_, Some(_)) => problems.push(problem(&key, format!("{} is not a reference field", m.target))),
                _ => {}
            }
            if let Some(spec) = d.fields.iter().find(|f| f.name == m.source) {
                for c in &spec.choices {
                    if !field.choices.is_empty() && field.choice_label(c).is_none() {
                        problems.push(problem(
                            &key,
                            format!("choice {c:?} is not a value of {}.{}", target.name, m.target),
                        ));
                    }
                }
            }
        }
        for (i, c) in t.coalesce.iter().enumerate() {
            if !mapped_targets.contains(c.as_str()) {
                problems
                    .push(problem(&format!("transform.coalesce[{i}]"), format!("{c} is not a mapped target field")));
            }
        }

        let (Some(target), true) = (target, problems.is_empty()) else {
            return Err(problems);
        };
        let columns = d
            .fields
            .iter()
            .map(|f| {
                let mut field = Field::new(&f.name, f.label.as_deref().unwrap_or(&f.name), FieldKind::String);
                field.max_length = f.max_length;
                field
            })
            .collect();
        let label = if d.description.is_empty() { d.name.clone() } else { d.description.clone() };
        let staging = Arc::new(tables::staging(&d.staging_table, &label, &d.target_table, columns));
        Ok(Self { definition, staging, target, origin: origin.to_owned() })
    }

    /// Loads every `*.toml` file of a folder. Each file is checked on its own and against the
    /// others (no two integrations may share a staging table); every problem is reported.
    pub fn load_dir(dir: &Path, catalog: &Catalog) -> Result<Vec<Self>, Vec<DefinitionProblem>> {
        let entries = std::fs::read_dir(dir).map_err(|e| {
            vec![DefinitionProblem { file: dir.display().to_string(), key: "(folder)".into(), message: e.to_string() }]
        })?;
        let mut paths: Vec<_> = entries
            .filter_map(|e| e.ok().map(|e| e.path()))
            .filter(|p| p.extension().is_some_and(|x| x == "toml"))
            .collect();
        paths.sort();
        let mut problems = Vec::new();
        let mut loaded: Vec<Self> = Vec::new();
        for path in paths {
            let origin = path.display().to_string();
            match std::fs::read_to_string(&path) {
                Err(e) => {
                    problems.push(DefinitionProblem { file: origin, key: "(file)".into(), message: e.to_string() })
                }
                Ok(text) => match Self::parse(&text, &origin, catalog) {
                    Err(p) => problems.extend(p),
                    Ok(i) => {
                        if let Some(other) = loaded
                            .iter()
                            .find(|o| o.definition.staging_table == i.definition.staging_table || o.name() == i.name())
                        {
                            problems.push(DefinitionProblem {
                                file: origin,
                                key: "staging_table".into(),
                                message: format!("name or staging table already used by {}", other.origin),
                            });
                        } else {
                            loaded.push(i);
                        }
                    }
                },
            }
        }
        if loaded.is_empty() && problems.is_empty() {
            problems.push(DefinitionProblem {
                file: dir.display().to_string(),
                key: "(folder)".into(),
                message: "no *.toml integration definitions found".into(),
            });
        }
        if problems.is_empty() { Ok(loaded) } else { Err(problems) }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_builtin_default_is_valid() {
        let i = Integration::builtin_default(&Catalog::builtin());
        assert_eq!(i.definition.staging_table, "u_incident_import");
        assert!(i.staging.field("u_short_description").is_some());
        assert!(i.staging.field("sys_import_state").is_some());
    }

    #[test]
    fn every_problem_is_reported_with_its_key() {
        let text = r#"
name = "Bad Name"
version = "1"
staging_table = "incident"
target_table = "incident"
[[fields]]
name = "u_a"
type = "choice"
[transform]
name = "m"
coalesce = ["correlation_id"]
[[transform.field_map]]
source = "u_missing"
target = "nonexistent"
"#;
        let problems = Integration::parse(text, "bad.toml", &Catalog::builtin()).unwrap_err();
        let keys: Vec<_> = problems.iter().map(|p| p.key.as_str()).collect();
        assert!(keys.contains(&"name"), "{problems:?}");
        assert!(keys.contains(&"staging_table"), "{problems:?}");
        assert!(keys.iter().any(|k| k.starts_with("fields[0]")), "{problems:?}");
        assert!(keys.iter().any(|k| k.starts_with("transform.field_map[0]")), "{problems:?}");
        assert!(keys.contains(&"transform.coalesce[0]"), "{problems:?}");
        assert!(problems.iter().all(|p| p.file == "bad.toml"));
    }

    #[test]
    fn unknown_keys_are_errors_not_silent_defaults() {
        let text = DEFAULT_DEFINITION.replace("coalesce_active_only", "coalesce_activ_only");
        let problems = Integration::parse(&text, "typo.toml", &Catalog::builtin()).unwrap_err();
        assert!(problems[0].message.contains("coalesce_activ_only"), "{problems:?}");
    }

    #[test]
    fn a_reference_target_needs_a_lookup() {
        let text = DEFAULT_DEFINITION.replace(
            "reference = { match = [\"name\"], on_unknown = \"ignore\" }\n\n[[transform.field_map]]\nsource = \"u_cmdb_ci\"",
            "\n[[transform.field_map]]\nsource = \"u_cmdb_ci\"",
        );
        let problems = Integration::parse(&text, "x.toml", &Catalog::builtin()).unwrap_err();
        assert!(problems[0].message.contains("assignment_group is a reference"), "{problems:?}");
    }
}
