//! Business rules for incidents: defaults, priority from impact × urgency (recomputed on every
//! change), the state model, and the data policy that resolving needs a resolution code and notes.
//! Produces the full record to store and the field-level changes to audit.

use std::collections::BTreeMap;

use crate::Record;
use crate::datetime::DateTime;
use crate::id::SysId;
use crate::incident::{self, STATE_CANCELED, STATE_CLOSED, STATE_NEW, STATE_RESOLVED};
use crate::schema::{FieldKind, TableSchema};
use crate::validate::{ErrorCode, FieldError};

/// Who is making a change: the authenticated account.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Actor {
    pub user_name: String,
    pub sys_id: SysId,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Change {
    pub field: String,
    pub old: String,
    pub new: String,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Applied {
    pub record: Record,
    /// Field-level changes, for `sys_audit`. Empty on an update means nothing changed.
    pub changes: Vec<Change>,
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum RuleViolation {
    /// ServiceNow answers these with 403 "Data Policy Exception".
    #[error("Data Policy Exception: \n\tThe following fields are mandatory: {}", .labels.join(", "))]
    MandatoryFields { fields: Vec<String>, labels: Vec<String> },
}

/// Sets a field, allocating its name only when the record lacks it (records are built with every
/// field already present: `insert` would allocate and drop a key for each value set).
trait Put {
    fn put(&mut self, field: &str, value: String);
}

impl Put for Record {
    fn put(&mut self, field: &str, value: String) {
        match self.get_mut(field) {
            Some(slot) => *slot = value,
            None => {
                self.insert(field.to_owned(), value);
            }
        }
    }
}

/// A new record's identity and system fields: a new sys_id, created and updated by `actor` at
/// `now`, no updates yet.
fn stamp_new(r: &mut Record, actor: &Actor, now: String) {
    r.put("sys_id", SysId::generate().into_string());
    r.put("sys_created_on", now.clone());
    r.put("sys_created_by", actor.user_name.clone());
    r.put("sys_updated_on", now);
    r.put("sys_updated_by", actor.user_name.clone());
    r.put("sys_mod_count", "0".into());
}

/// Fields the rules own; changes to them are not audited (ServiceNow does not audit them either).
fn is_bookkeeping(field: &str) -> bool {
    matches!(
        field,
        "sys_updated_on" | "sys_updated_by" | "sys_mod_count" | "sys_created_on" | "sys_created_by" | "sys_id"
    )
}

impl Applied {
    /// What an update of the existing record writes: the changed fields, then the system fields
    /// the rules set (update count, when, by whom).
    pub fn update_columns(&self) -> Vec<(&str, &str)> {
        let mut set: Vec<(&str, &str)> = self.changes.iter().map(|c| (c.field.as_str(), c.new.as_str())).collect();
        for f in ["sys_mod_count", "sys_updated_on", "sys_updated_by"] {
            if let Some(value) = self.record.get(f) {
                set.push((f, value));
            }
        }
        set
    }

    /// Gives a new record its number once the rules have accepted it, so a refused insert does
    /// not use one up.
    pub fn assign_number(&mut self, number: &str) {
        self.record.insert("number".into(), number.into());
        self.changes.retain(|c| c.field != "number");
        self.changes.push(Change { field: "number".into(), old: String::new(), new: number.into() });
        self.changes.sort_by(|a, b| a.field.cmp(&b.field));
    }
}

/// A new incident: `set` holds the mapped values; everything else gets its default. The number
/// is assigned afterwards with [`Applied::assign_number`].
pub fn insert_incident(
    schema: &TableSchema,
    set: &BTreeMap<String, String>,
    actor: &Actor,
    now: DateTime,
) -> Result<Applied, RuleViolation> {
    let mut r: Record = schema.stored_fields().map(|f| (f.name.clone(), String::new())).collect();
    let now_s = now.to_string();
    for (k, v) in [
        ("state", STATE_NEW),
        ("impact", "3"),
        ("urgency", "3"),
        ("severity", "3"),
        ("category", "inquiry"),
        ("active", "true"),
        ("reassignment_count", "0"),
        ("reopen_count", "0"),
        ("sys_class_name", "incident"),
    ] {
        r.put(k, v.into());
    }
    r.put("opened_at", now_s.clone());
    r.put("opened_by", actor.sys_id.to_string());
    for (k, v) in set {
        if r.contains_key(k) && !v.is_empty() {
            r.put(k, v.clone());
        }
    }
    r.put("number", String::new());
    derive(&mut r, None, actor, now)?;
    stamp_new(&mut r, actor, now_s);
    let changes = insert_changes(&r);
    Ok(Applied { record: r, changes })
}

/// An existing incident changed by `set` (fields not in `set` keep their values).
pub fn update_incident(
    existing: &Record,
    set: &BTreeMap<String, String>,
    actor: &Actor,
    now: DateTime,
) -> Result<Applied, RuleViolation> {
    let mut r = merge(existing, set, &["number"]);
    derive(&mut r, Some(existing), actor, now)?;
    Ok(finish_update(existing, r, actor, now))
}

/// `existing` with the caller's values for its fields, except bookkeeping and `protected` ones.
fn merge(existing: &Record, set: &BTreeMap<String, String>, protected: &[&str]) -> Record {
    let mut r = existing.clone();
    for (k, v) in set {
        if r.contains_key(k) && !is_bookkeeping(k) && !protected.contains(&k.as_str()) {
            r.put(k, v.clone());
        }
    }
    r
}

/// The field-level changes from `existing` to `r`; any change counts as an update.
fn finish_update(existing: &Record, mut r: Record, actor: &Actor, now: DateTime) -> Applied {
    let changes: Vec<Change> = r
        .iter()
        .filter(|(k, v)| !is_bookkeeping(k) && existing.get(*k) != Some(*v))
        .map(|(k, v)| Change { field: k.clone(), old: existing.get(k).cloned().unwrap_or_default(), new: v.clone() })
        .collect();
    if !changes.is_empty() {
        touch(&mut r, actor, now);
    }
    Applied { record: r, changes }
}

/// A new record's changes: every field with a value.
fn insert_changes(r: &Record) -> Vec<Change> {
    r.iter()
        .filter(|(k, v)| !v.is_empty() && !is_bookkeeping(k))
        .map(|(k, v)| Change { field: k.clone(), old: String::new(), new: v.clone() })
        .collect()
}

fn level(r: &Record, field: &str, default: u8) -> u8 {
    r.get(field).and_then(|v| v.parse().ok()).filter(|v| (1..=3).contains(v)).unwrap_or(default)
}

/// Computed fields and the state model, applied after the caller's values.
fn derive(r: &mut Record, before: Option<&Record>, actor: &Actor, now: DateTime) -> Result<(), RuleViolation> {
    let impact = level(r, "impact", incident::DEFAULT_IMPACT);
    let urgency = level(r, "urgency", incident::DEFAULT_URGENCY);
    r.put("impact", impact.to_string());
    r.put("urgency", urgency.to_string());
    r.put("priority", incident::priority(impact, urgency).to_string());

    let state = r.get("state").cloned().filter(|s| !s.is_empty()).unwrap_or_else(|| STATE_NEW.into());
    let old_state = before.and_then(|b| b.get("state")).cloned().unwrap_or_default();
    r.put("state", state.clone());
    r.put("incident_state", state.clone());

    let resolving = state == STATE_RESOLVED || state == STATE_CLOSED;
    if resolving {
        let missing: Vec<(&str, &str)> = [("close_code", "Resolution code"), ("close_notes", "Resolution notes")]
            .into_iter()
            .filter(|(f, _)| r.get(*f).is_none_or(|v| v.trim().is_empty()))
            .collect();
        if !missing.is_empty() {
            return Err(RuleViolation::MandatoryFields {
                fields: missing.iter().map(|(f, _)| (*f).to_owned()).collect(),
                labels: missing.iter().map(|(_, l)| (*l).to_owned()).collect(),
            });
        }
    }
    let set_once = |r: &mut Record, at: &str, by: &str| {
        if r.get(at).is_none_or(|v| v.is_empty()) {
            r.put(at, now.to_string());
            r.put(by, actor.sys_id.to_string());
        }
    };
    if resolving {
        set_once(r, "resolved_at", "resolved_by");
    }
    if state == STATE_CLOSED {
        set_once(r, "closed_at", "closed_by");
    }
    let was_resolved = old_state == STATE_RESOLVED;
    if was_resolved && !resolving && state != STATE_CANCELED {
        // Reopened: ServiceNow clears the resolution stamp and counts the reopen.
        let count = r.get("reopen_count").and_then(|c| c.parse::<u64>().ok()).unwrap_or(0);
        r.put("reopen_count", (count + 1).to_string());
        for f in ["resolved_at", "resolved_by"] {
            r.put(f, String::new());
        }
    }
    let active = !(state == STATE_CLOSED || state == STATE_CANCELED);
    r.put("active", active.to_string());
    Ok(())
}

/// A new record of any writable table, with that table's rules (incidents: see
/// [`insert_incident`]; the number is assigned afterwards).
/// An imported row's values applied to its target: an update of the coalesced record (coalesce
/// values that already match it, case-insensitively as the search is, identify it and are not
/// rewritten) or a new incident; a data-policy refusal as one `data_policy` error per field.
pub fn apply_import(
    target: &TableSchema,
    existing: Option<&Record>,
    set: &BTreeMap<String, String>,
    coalesce: &[(String, String)],
    actor: &Actor,
    now: DateTime,
) -> Result<Applied, Vec<FieldError>> {
    let applied = match existing {
        Some(record) => {
            let mut set = set.clone();
            for (field, value) in coalesce {
                if record.get(field).is_some_and(|v| v.eq_ignore_ascii_case(value)) {
                    set.remove(field);
                }
            }
            update_incident(record, &set, actor, now)
        }
        None => insert_incident(target, set, actor, now),
    };
    applied.map_err(|RuleViolation::MandatoryFields { fields, .. }| {
        let message = format!("mandatory when the state is Resolved or Closed (missing: {})", fields.join(", "));
        fields
            .into_iter()
            .map(|field| FieldError { code: ErrorCode::DataPolicy, field, message: message.clone(), path: None })
            .collect()
    })
}

pub fn insert(
    schema: &TableSchema,
    set: &BTreeMap<String, String>,
    actor: &Actor,
    now: DateTime,
) -> Result<Applied, RuleViolation> {
    if schema.name == crate::tables::INCIDENT {
        return insert_incident(schema, set, actor, now);
    }
    let values: Vec<(&str, &str)> = set
        .iter()
        .filter(|(k, _)| schema.field(k).is_some() && !is_bookkeeping(k))
        .map(|(k, v)| (k.as_str(), v.as_str()))
        .collect();
    let record = insert_simple(schema, &values, actor, now);
    let changes = insert_changes(&record);
    Ok(Applied { record, changes })
}

/// An existing record of any writable table changed by `set`, with that table's rules.
pub fn update(
    schema: &TableSchema,
    existing: &Record,
    set: &BTreeMap<String, String>,
    actor: &Actor,
    now: DateTime,
) -> Result<Applied, RuleViolation> {
    if schema.name == crate::tables::INCIDENT {
        return update_incident(existing, set, actor, now);
    }
    let r = merge(existing, set, &["sys_class_name"]);
    Ok(finish_update(existing, r, actor, now))
}

/// Counts an update: `sys_mod_count` + 1, `sys_updated_on/by` now and the actor.
pub fn touch(r: &mut Record, actor: &Actor, now: DateTime) {
    let count = r.get("sys_mod_count").and_then(|c| c.parse::<u64>().ok()).unwrap_or(0);
    r.put("sys_mod_count", (count + 1).to_string());
    r.put("sys_updated_on", now.to_string());
    r.put("sys_updated_by", actor.user_name.clone());
}

/// A new record of a simple table (a user, group or CI created by a reference lookup).
pub fn insert_simple(schema: &TableSchema, values: &[(&str, &str)], actor: &Actor, now: DateTime) -> Record {
    let mut r: Record = schema.stored_fields().map(|f| (f.name.clone(), String::new())).collect();
    for f in schema.stored_fields() {
        if f.kind == FieldKind::Boolean && f.name == "active" {
            r.put(&f.name, "true".into());
        }
    }
    for (k, v) in values {
        r.put(k, (*v).into());
    }
    stamp_new(&mut r, actor, now.to_string());
    if r.contains_key("sys_class_name") {
        r.put("sys_class_name", schema.name.clone());
    }
    r
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::tables;

    fn actor() -> Actor {
        Actor { user_name: "integration.alerts".into(), sys_id: SysId::generate() }
    }

    fn set(pairs: &[(&str, &str)]) -> BTreeMap<String, String> {
        pairs.iter().map(|(k, v)| ((*k).into(), (*v).into())).collect()
    }

    #[test]
    fn insert_applies_defaults_and_priority() {
        let a = actor();
        let now = DateTime::from_unix(1_714_558_502);
        let mut applied =
            insert_incident(&tables::incident(), &set(&[("short_description", "Disk full")]), &a, now).unwrap();
        applied.assign_number("INC0010001");
        let r = &applied.record;
        assert_eq!(r["number"], "INC0010001");
        assert_eq!((r["impact"].as_str(), r["urgency"].as_str(), r["priority"].as_str()), ("3", "3", "5"));
        assert_eq!((r["state"].as_str(), r["incident_state"].as_str(), r["active"].as_str()), ("1", "1", "true"));
        assert_eq!(r["opened_at"], "2024-05-01 10:15:02");
        assert_eq!(r["opened_by"], a.sys_id.as_str());
        assert_eq!(r["sys_created_by"], "integration.alerts");
        assert_eq!(r["sys_mod_count"], "0");
        assert!(SysId::is_valid(&r["sys_id"]));
        let audited: Vec<_> = applied.changes.iter().map(|c| c.field.as_str()).collect();
        assert!(audited.contains(&"short_description") && audited.contains(&"priority"));
        assert!(!audited.contains(&"sys_mod_count") && !audited.contains(&"description"));
    }

    #[test]
    fn update_recomputes_priority_and_reports_old_and_new() {
        let a = actor();
        let t0 = DateTime::from_unix(0);
        let first = insert_incident(&tables::incident(), &set(&[("impact", "2"), ("urgency", "2")]), &a, t0).unwrap();
        assert_eq!(first.record["priority"], "3");
        let second = update_incident(&first.record, &set(&[("urgency", "1")]), &a, DateTime::from_unix(60)).unwrap();
        let changes: Vec<_> =
            second.changes.iter().map(|c| (c.field.as_str(), c.old.as_str(), c.new.as_str())).collect();
        assert_eq!(changes, vec![("priority", "3", "2"), ("urgency", "2", "1")]);
        assert_eq!(second.record["sys_mod_count"], "1");
        assert_eq!(second.record["sys_updated_on"], "1970-01-01 00:01:00");
    }

    #[test]
    fn an_update_that_changes_nothing_has_no_changes_and_keeps_the_count() {
        let a = actor();
        let first =
            insert_incident(&tables::incident(), &set(&[("short_description", "x")]), &a, DateTime::from_unix(0))
                .unwrap();
        let again =
            update_incident(&first.record, &set(&[("short_description", "x")]), &a, DateTime::from_unix(9)).unwrap();
        assert!(again.changes.is_empty());
        assert_eq!(again.record, first.record);
    }

    #[test]
    fn resolving_needs_code_and_notes_then_stamps_resolution() {
        let a = actor();
        let r = insert_incident(&tables::incident(), &set(&[]), &a, DateTime::from_unix(0)).unwrap().record;
        let err = update_incident(&r, &set(&[("state", "6")]), &a, DateTime::from_unix(5)).unwrap_err();
        assert_eq!(
            err.to_string(),
            "Data Policy Exception: \n\tThe following fields are mandatory: Resolution code, Resolution notes"
        );
        let done = update_incident(
            &r,
            &set(&[("state", "6"), ("close_code", "Solution provided"), ("close_notes", "rebooted")]),
            &a,
            DateTime::from_unix(5),
        )
        .unwrap();
        assert_eq!(done.record["resolved_at"], "1970-01-01 00:00:05");
        assert_eq!(done.record["active"], "true");
        let closed = update_incident(&done.record, &set(&[("state", "7")]), &a, DateTime::from_unix(9)).unwrap();
        assert_eq!(closed.record["active"], "false");
        assert_eq!(closed.record["closed_at"], "1970-01-01 00:00:09");
    }

    #[test]
    fn system_fields_cannot_be_set_by_callers() {
        let a = actor();
        let r = insert_incident(
            &tables::incident(),
            &set(&[("sys_mod_count", "99"), ("sys_created_by", "mallory"), ("priority", "1")]),
            &a,
            DateTime::from_unix(0),
        )
        .unwrap()
        .record;
        assert_eq!(r["sys_mod_count"], "0");
        assert_eq!(r["sys_created_by"], "integration.alerts");
        assert_eq!(r["priority"], "5");
    }
}
