//! Integration definitions: the contract a third-party system posts against (its staging table
//! and fields) and the transform map that turns a staged row into a target record. One TOML file
//! per integration; format documented in docs/integrations.md.

use std::fmt;
use std::path::Path;
use std::sync::Arc;

use serde::Deserialize;

use crate::schema::{Field, FieldKind, TableSchema, is_identifier};
use crate::tables::{self, Catalog};

mod format;
use format::apply_pointers;
pub use format::{JsonPointer, PointerError, SenderFormat};
pub mod forward;
pub mod signature;
pub use forward::{Forward, ForwardSpec, UpstreamAuth, UpstreamKind};
pub use signature::{Signature, SignatureSpec};

/// The definition `sluice serve` uses when no integrations folder is given.
pub const DEFAULT_DEFINITION: &str = include_str!("../integrations/u_incident_import.toml");
/// The built-in Alertmanager integration, active beside [`DEFAULT_DEFINITION`] when no
/// integrations folder is given.
pub const ALERTMANAGER_DEFINITION: &str = include_str!("../integrations/alertmanager.toml");
/// The built-in PagerDuty Events API v2 integration, active beside [`ALERTMANAGER_DEFINITION`].
pub const PAGERDUTY_DEFINITION: &str = include_str!("../integrations/pagerduty.toml");

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Definition {
    pub name: String,
    #[serde(default)]
    pub description: String,
    pub version: String,
    pub staging_table: String,
    pub target_table: String,
    /// How senders post: ServiceNow's Import Set API (the default) or a sender format taken at
    /// `/api/sluice/v1/hooks/{name}`.
    #[serde(default)]
    pub format: SenderFormat,
    /// Sender formats: staging field → JSON Pointer into the row's document. Applied as the
    /// field's `source` when the definition loads.
    #[serde(default)]
    pub pointers: std::collections::BTreeMap<String, String>,
    /// Sender formats: requests signed with HMAC-SHA256 (docs/senders.md, "Signed webhooks").
    #[serde(default)]
    pub signature: Option<SignatureSpec>,
    /// Deliver every record written to an upstream ticketing system (docs/forwarding.md).
    #[serde(default)]
    pub forward: Option<ForwardSpec>,
    /// Who to call about this integration.
    #[serde(default)]
    pub contact: Option<Contact>,
    /// Accounts allowed to post to the staging table (admins always may). Empty: any account
    /// with the `import_set_loader` role.
    #[serde(default)]
    pub accounts: Vec<String>,
    /// Source networks (CIDR, IPv4 or IPv6) senders may post from. Empty: any.
    #[serde(default)]
    pub networks: Vec<String>,
    /// Agreed protocols, for the integration plan (e.g. "HTTPS", "JSON").
    #[serde(default)]
    pub protocols: Vec<String>,
    pub fields: Vec<FieldSpec>,
    pub transform: TransformSpec,
    /// Transform scripts in JavaScript. Core only carries their text; whether they compile is
    /// checked where definitions are loaded (the script engine is not a dependency of core).
    #[serde(default)]
    pub scripts: Option<ScriptsSpec>,
}

/// The `[scripts]` table: ServiceNow's `onBefore` and `onAfter` transform scripts.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ScriptsSpec {
    /// Runs per row after validation and the field map, before the commit; may change `target`,
    /// set `ignore` or `error`.
    #[serde(default)]
    pub on_before: Option<String>,
    /// Runs per row after a successful commit; may change the answer's status message or mark
    /// the answer as an error.
    #[serde(default)]
    pub on_after: Option<String>,
}

/// Definition keys of the scripts, as problems name them.
pub const ON_BEFORE_KEY: &str = "scripts.on_before";
pub const ON_AFTER_KEY: &str = "scripts.on_after";

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Contact {
    pub name: String,
    #[serde(default)]
    pub email: Option<String>,
    #[serde(default)]
    pub phone: Option<String>,
}

#[derive(Debug, Clone, Copy, Deserialize, serde::Serialize, PartialEq, Eq)]
#[serde(rename_all = "snake_case")]
pub enum FieldType {
    String,
    Integer,
    Boolean,
    Choice,
    DateTime,
    /// A name or sys_id of another record, resolved by the field map's `reference` lookup.
    Reference,
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
    /// A regular expression the whole value must match (`pattern_mismatch`).
    #[serde(default)]
    pub pattern: Option<String>,
    /// Where the value sits in the payload, as a JSON Pointer (`/alert/host`); default: the
    /// top-level key named like the field.
    #[serde(default)]
    pub source: Option<String>,
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
    /// Resolved records (state 6) do not match either: after a resolve the next event opens a
    /// new record, as PagerDuty's de-duplication does. Default false.
    #[serde(default)]
    pub coalesce_skip_resolved: bool,
    /// When every coalesce value is empty: insert (true) or skip the row (false, ServiceNow's
    /// default).
    #[serde(default)]
    pub create_on_empty_coalesce: bool,
    /// Run the target table's business rules and write audit rows (ServiceNow's "Run business
    /// rules"). Default true.
    #[serde(default = "yes")]
    pub run_business_rules: bool,
    /// Target field → value set on every row.
    #[serde(default)]
    pub constants: std::collections::BTreeMap<String, String>,
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
    /// Source value → target value (e.g. `critical = "1"`), matched case-insensitively. A value
    /// not in the map fails the row with `invalid_choice`.
    #[serde(default)]
    pub value_map: std::collections::BTreeMap<String, String>,
    /// Text put before every non-empty value (after the value map), e.g. `"alertmanager:"` to
    /// keep one sender's correlation ids apart from another's.
    #[serde(default)]
    pub prefix: Option<String>,
    /// What a value longer than the target field holds (with its prefix) becomes.
    #[serde(default)]
    pub too_long: TooLong,
}

/// What a field map does with a value longer than its target field holds.
#[derive(Debug, Clone, Copy, Default, Deserialize, PartialEq, Eq)]
#[serde(rename_all = "snake_case")]
pub enum TooLong {
    /// Written as it is.
    #[default]
    Store,
    /// Replaced by `sha256:` and its SHA-256 in hex (71 characters, after the prefix): a key
    /// longer than the field still identifies one record (PagerDuty's 255-character dedup keys
    /// in a 100-character correlation id).
    Digest,
}

impl TooLong {
    /// The length of a digest value.
    pub const DIGEST_CHARS: usize = 71;
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
    /// Compiled `pattern`s by field name.
    pub patterns: std::collections::BTreeMap<String, regex::Regex>,
    /// Parsed `networks` ([`crate::network`], the rule accounts use too).
    pub networks: Vec<crate::network::IpNet>,
    /// Where the definition came from, for messages.
    pub origin: String,
    /// `scripts.on_before`, shared with the script workers.
    pub on_before: Option<Arc<str>>,
    /// `scripts.on_after`.
    pub on_after: Option<Arc<str>>,
    /// The payload's JSON Schema and its compiled validator.
    pub contract: crate::contract::Contract,
    /// The checked `[signature]` table, its secret read.
    pub signature: Option<Signature>,
    /// The checked `[forward]` table, its credentials read.
    pub forward: Option<Forward>,
}

impl Integration {
    pub fn name(&self) -> &str {
        &self.definition.name
    }

    /// The scripts of this definition with their keys (`scripts.on_before`, `scripts.on_after`).
    pub fn scripts(&self) -> impl Iterator<Item = (&'static str, &Arc<str>)> {
        [(ON_BEFORE_KEY, &self.on_before), (ON_AFTER_KEY, &self.on_after)]
            .into_iter()
            .filter_map(|(key, script)| Some((key, script.as_ref()?)))
    }

    pub fn field(&self, name: &str) -> Option<&FieldSpec> {
        self.definition.fields.iter().find(|f| f.name == name)
    }

    /// Whether a sender at `ip` may post (no `networks` means anywhere).
    pub fn allows_source(&self, ip: std::net::IpAddr) -> bool {
        crate::network::allows_source(&self.networks, ip)
    }

    /// Whether the account may post (admins always; otherwise listed in `accounts`, or any
    /// account when the list is empty).
    pub fn allows_account(&self, user_name: &str, is_admin: bool) -> bool {
        is_admin || self.definition.accounts.is_empty() || self.definition.accounts.iter().any(|a| a == user_name)
    }

    pub fn builtin_default(catalog: &Catalog) -> Self {
        Self::parse(DEFAULT_DEFINITION, "built-in u_incident_import", catalog)
            .expect("the built-in default integration is valid")
    }

    /// Every built-in integration: `u_incident_import`, `alertmanager` and `pagerduty`.
    pub fn builtin_defaults(catalog: &Catalog) -> Vec<Self> {
        let alertmanager = Self::parse(ALERTMANAGER_DEFINITION, "built-in alertmanager", catalog)
            .expect("the built-in alertmanager integration is valid");
        let pagerduty = Self::parse(PAGERDUTY_DEFINITION, "built-in pagerduty", catalog)
            .expect("the built-in pagerduty integration is valid");
        vec![Self::builtin_default(catalog), alertmanager, pagerduty]
    }

    pub fn format(&self) -> SenderFormat {
        self.definition.format
    }

    /// Parses and checks one definition against the tables in `catalog`, reporting every problem.
    pub fn parse(text: &str, origin: &str, catalog: &Catalog) -> Result<Self, Vec<DefinitionProblem>> {
        let problem =
            |key: &str, message: String| DefinitionProblem { file: origin.to_owned(), key: key.to_owned(), message };
        let mut definition: Definition = toml::from_str(text).map_err(|e| {
            let key = e
                .span()
                .map(|s| format!("line {}", text[..s.start].lines().count().max(1)))
                .unwrap_or_else(|| "(file)".to_owned());
            vec![problem(&key, e.message().to_owned())]
        })?;
        let mut problems = apply_pointers(&mut definition, &problem);
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

        for (i, net) in d.networks.iter().enumerate() {
            if let Err(e) = crate::network::parse_network(net) {
                problems.push(problem(&format!("networks[{i}]"), e.to_string()));
            }
        }
        for (i, account) in d.accounts.iter().enumerate() {
            if crate::account::UserName::parse(account).is_err() {
                problems.push(problem(&format!("accounts[{i}]"), format!("{account:?} is not a user name")));
            }
        }
        if let Some(c) = &d.contact
            && c.name.trim().is_empty()
        {
            problems.push(problem("contact.name", "must not be empty".into()));
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
            if let Some(pattern) = &f.pattern
                && let Err(e) = compile_pattern(pattern)
            {
                problems.push(problem(&key, format!("pattern does not compile: {e}")));
            }
            if let Some(source) = &f.source
                && !is_json_pointer(source)
            {
                problems.push(problem(&key, format!("source {source:?} is not a JSON Pointer such as /alert/host")));
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
            if m.prefix.is_some() && m.reference.is_some() {
                problems.push(problem(&key, "a prefix cannot be put before a reference".into()));
            }
            if !mapped_targets.insert(m.target.as_str()) {
                problems.push(problem(&key, format!("{} is mapped twice", m.target)));
            }
            let Some(target) = &target else { continue };
            let Some(field) = target.visible_field(&m.target) else {
                problems.push(problem(&key, format!("{} has no field {}", target.name, m.target)));
                continue;
            };
            if m.target.starts_with("sys_")
                || m.target == target.display_field
                || [tables::UPSTREAM_NUMBER, tables::UPSTREAM_SYS_ID].contains(&m.target.as_str())
            {
                problems.push(problem(&key, format!("{} is set by sluice, not by a field map", m.target)));
            }
            if m.too_long == TooLong::Digest {
                let room = m.prefix.as_deref().map_or(0, |p| p.chars().count()) + TooLong::DIGEST_CHARS;
                match field.max_length {
                    _ if m.reference.is_some() => {
                        problems.push(problem(&key, "too_long = \"digest\" cannot be put on a reference".into()))
                    }
                    Some(max) if max < room => problems.push(problem(
                        &key,
                        format!("{} holds {max} characters: too few for a digest ({room} with the prefix)", m.target),
                    )),
                    _ => {}
                }
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
        for (field, value) in &t.constants {
            let key = format!("transform.constants.{field}");
            let Some(target) = &target else { continue };
            match target.visible_field(field) {
                None => problems.push(problem(&key, format!("{} has no field {field}", target.name))),
                Some(_) if field.starts_with("sys_") || *field == target.display_field => {
                    problems.push(problem(&key, format!("{field} is set by sluice")))
                }
                Some(f) if !f.choices.is_empty() && f.choice_label(value).is_none() => {
                    problems.push(problem(&key, format!("{value:?} is not a value of {}.{field}", target.name)))
                }
                Some(f) if matches!(f.kind, FieldKind::Reference(_) | FieldKind::Journal) => {
                    problems.push(problem(&key, format!("{field} cannot be a constant (reference or journal)")))
                }
                Some(_) if mapped_targets.contains(field.as_str()) => {
                    problems.push(problem(&key, format!("{field} is also set by a field map")))
                }
                Some(_) => {}
            }
        }
        for (i, c) in t.coalesce.iter().enumerate() {
            if !mapped_targets.contains(c.as_str()) {
                problems
                    .push(problem(&format!("transform.coalesce[{i}]"), format!("{c} is not a mapped target field")));
            }
        }

        if let Some(scripts) = &d.scripts {
            for (key, script) in [(ON_BEFORE_KEY, &scripts.on_before), (ON_AFTER_KEY, &scripts.on_after)] {
                if script.as_ref().is_some_and(|s| s.trim().is_empty()) {
                    problems.push(problem(key, "is empty: write a script or leave the key out".into()));
                }
            }
        }

        let signature = match &d.signature {
            Some(_) if !d.format.at_hook() => {
                problems.push(problem(
                    "signature",
                    format!("only requests to the sender hook are signed, not format {}", d.format),
                ));
                None
            }
            Some(spec) => signature::parse(spec, origin, &problem).map_err(|p| problems.extend(p)).ok(),
            None => None,
        };
        let forward = match (&d.forward, &target) {
            (Some(_), Some(t)) => forward::parse(d, t, origin, &problem).map_err(|p| problems.extend(p)).ok(),
            _ => None,
        };
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
        let patterns = d
            .fields
            .iter()
            .filter_map(|f| Some((f.name.clone(), compile_pattern(f.pattern.as_ref()?).ok()?)))
            .collect();
        let networks = d.networks.iter().filter_map(|n| crate::network::parse_network(n).ok()).collect();
        let scripts = d.scripts.clone().unwrap_or_default();
        let on_before = scripts.on_before.map(Arc::from);
        let on_after = scripts.on_after.map(Arc::from);
        let located = |found: Vec<crate::contract::SchemaProblem>| -> Vec<DefinitionProblem> {
            found.into_iter().map(|(key, message)| problem(&key, message)).collect()
        };
        let contract = crate::contract::Contract::build(d, &patterns).map_err(located)?;
        let integration = Self {
            definition,
            staging,
            target,
            patterns,
            networks,
            origin: origin.to_owned(),
            on_before,
            on_after,
            contract,
            signature,
            forward,
        };
        let problems = located(crate::contract::default_problems(&integration));
        if problems.is_empty() { Ok(integration) } else { Err(problems) }
    }

    /// Loads every `*.toml` file of a folder. Each file is checked on its own and against the
    /// others (no two integrations may share a staging table); every problem is reported.
    pub fn load_dir(dir: &Path, catalog: &Catalog) -> Result<Vec<Self>, Vec<DefinitionProblem>> {
        Self::load_dir_with(dir, catalog, &|_| Vec::new())
    }

    /// [`Integration::load_dir`] with one more check of each definition that parsed (e.g. that
    /// its scripts compile, which core cannot judge); its problems are reported with the others.
    pub fn load_dir_with(
        dir: &Path,
        catalog: &Catalog,
        check: &dyn Fn(&Self) -> Vec<DefinitionProblem>,
    ) -> Result<Vec<Self>, Vec<DefinitionProblem>> {
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
                        let found = check(&i);
                        if !found.is_empty() {
                            problems.extend(found);
                            continue;
                        }
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

/// Patterns must match the whole value. They are JSON Schema's (ECMA-262) regular expressions,
/// translated as the `jsonschema` crate translates them, so sluice reads a pattern exactly as the
/// published payload schema does (`\d` is `[0-9]`, `\w` is `[A-Za-z0-9_]`).
pub fn compile_pattern(pattern: &str) -> Result<regex::Regex, String> {
    let anchored = format!("^(?:{pattern})$");
    let translated = jsonschema_regex::to_rust_regex(&anchored)
        .map_err(|()| "not a JSON Schema (ECMA-262) regular expression".to_owned())?;
    regex::RegexBuilder::new(&translated).size_limit(1 << 20).build().map_err(|e| e.to_string())
}

fn is_json_pointer(p: &str) -> bool {
    p.starts_with('/') && p.len() > 1 && !p.split('/').skip(1).any(str::is_empty)
}

#[cfg(test)]
mod tests;
