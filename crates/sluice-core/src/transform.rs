//! Transform: apply the integration's field map to a valid row. What needs the database
//! (reference lookups, finding the coalesce target) is described here and carried out by the
//! store inside the committing transaction, so that concurrent rows cannot race.

use std::collections::BTreeMap;

use crate::integration::{Integration, OnUnknown, TooLong};
use crate::validate::{ErrorCode, FieldError, ValidRow};

/// A reference value to resolve against another table.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Lookup {
    pub source_field: String,
    pub target_field: String,
    pub table: String,
    pub match_fields: Vec<String>,
    pub value: String,
    pub on_unknown: OnUnknown,
}

#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Plan {
    /// Target fields and values that identify an existing record (empty value = not given).
    pub coalesce: Vec<(String, String)>,
    pub coalesce_active_only: bool,
    /// Resolved records (state 6) are no coalesce target either (the map's `coalesce_skip_resolved`).
    pub coalesce_skip_resolved: bool,
    pub create_on_empty_coalesce: bool,
    /// Write audit rows (the map's `run_business_rules`).
    pub audit: bool,
    /// Plain values for target fields.
    pub set: BTreeMap<String, String>,
    /// Reference values still to resolve into sys_ids.
    pub lookups: Vec<Lookup>,
    /// Set when an `on_before` script ignored the row: the row is staged as `ignored` with this
    /// status message, and nothing else is written (no target change, no referenced records).
    pub ignore: Option<String>,
    /// The `action` an `on_before` script was told, when one ran: what the coalesce search found
    /// before the commit. The commit searches again; when a concurrent row changed the answer
    /// (the script decided on stale facts) it writes nothing and leaves the row `pending`, to
    /// be judged again ([`RACED`]).
    pub judged_action: Option<Action>,
    /// The integration whose upstream the written record is queued for (its `[forward]`): the
    /// commit writes an outbox row in the same transaction.
    pub forward: Option<String>,
}

/// Whether a row writes a new record or updates the one it coalesces with.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Action {
    Insert,
    Update,
}

impl Action {
    /// The name scripts see (`action`).
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Insert => "insert",
            Self::Update => "update",
        }
    }
}

/// The status message of a row left `pending` because its target record changed between the
/// `on_before` script and the commit.
pub const RACED: &str = "Judged again: a concurrent row changed the record this one coalesces with";

/// How a row finds the record it writes, decided from the plan alone (every backend follows it).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TargetSearch {
    /// Search by the coalesce values.
    Coalesce,
    /// No coalesce fields, or empty values with `create_on_empty_coalesce`: a new record.
    Create,
    /// Coalesce fields without values: the row is `skipped` with this message.
    Skip(&'static str),
}

impl Plan {
    pub fn coalesce_given(&self) -> bool {
        !self.coalesce.is_empty() && self.coalesce.iter().all(|(_, v)| !v.is_empty())
    }

    /// Whether the commit searches for the coalesce target: every plan that coalesces on given
    /// values, and an ignored one only to check the action its script was told.
    pub fn searches_target(&self) -> bool {
        self.target_search() == TargetSearch::Coalesce && (self.ignore.is_none() || self.judged_action.is_some())
    }

    /// Whether the coalesce search leaves out resolved records of `target` (it has a `state`).
    pub fn skips_resolved(&self, target: &crate::schema::TableSchema) -> bool {
        self.coalesce_skip_resolved && target.field("state").is_some()
    }

    pub fn target_search(&self) -> TargetSearch {
        if self.coalesce_given() {
            TargetSearch::Coalesce
        } else if !self.coalesce.is_empty() && !self.create_on_empty_coalesce {
            TargetSearch::Skip("Unable to resolve target record, coalesce values not present")
        } else {
            TargetSearch::Create
        }
    }
}

/// The field map applied to a valid row: constants, value maps, plain values and the lookups
/// still to resolve. A value missing from its field's value map fails the row.
pub fn plan(integration: &Integration, row: &ValidRow) -> Result<Plan, Vec<FieldError>> {
    let t = &integration.definition.transform;
    let mut plan = Plan {
        coalesce_active_only: t.coalesce_active_only,
        coalesce_skip_resolved: t.coalesce_skip_resolved,
        create_on_empty_coalesce: t.create_on_empty_coalesce,
        audit: t.run_business_rules,
        forward: integration.forward.is_some().then(|| integration.name().to_owned()),
        ..Plan::default()
    };
    let mut errors = Vec::new();
    plan.set.extend(t.constants.iter().map(|(k, v)| (k.clone(), v.clone())));
    for map in &t.field_map {
        let Some(value) = row.values.get(&map.source) else { continue };
        let mut value = value.to_db_string();
        if !map.value_map.is_empty() {
            match map.value_map.iter().find(|(from, _)| from.eq_ignore_ascii_case(&value)) {
                Some((_, to)) => value = to.clone(),
                None => {
                    let known: Vec<&str> = map.value_map.keys().map(String::as_str).collect();
                    errors.push(FieldError {
                        code: ErrorCode::InvalidChoice,
                        field: map.source.clone(),
                        message: format!("{value:?} is not one of {}", known.join(", ")),
                        path: None,
                    });
                    continue;
                }
            }
        }
        if map.too_long == TooLong::Digest
            && let Some(max) = integration.target.field(&map.target).and_then(|f| f.max_length)
            && map.prefix.as_deref().map_or(0, |p| p.chars().count()) + value.chars().count() > max
        {
            value = digest(&value);
        }
        if let Some(prefix) = &map.prefix
            && !value.is_empty()
        {
            value.insert_str(0, prefix);
        }
        match (&map.reference, integration.target.field(&map.target).and_then(|f| f.reference_table())) {
            (Some(r), Some(table)) => plan.lookups.push(Lookup {
                source_field: map.source.clone(),
                target_field: map.target.clone(),
                table: table.to_owned(),
                match_fields: r.match_fields.clone(),
                value,
                on_unknown: r.on_unknown,
            }),
            _ => {
                plan.set.insert(map.target.clone(), value);
            }
        }
    }
    plan.coalesce = t.coalesce.iter().map(|f| (f.clone(), plan.set.get(f).cloned().unwrap_or_default())).collect();
    if errors.is_empty() { Ok(plan) } else { Err(errors) }
}

/// `sha256:` and the value's SHA-256 in lower-case hex ([`TooLong::Digest`]).
fn digest(value: &str) -> String {
    use sha2::Digest;
    format!("sha256:{}", crate::id::hex(&sha2::Sha256::digest(value.as_bytes())))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::staging::stage;
    use crate::tables::Catalog;
    use crate::validate::validate;
    use serde_json::json;

    fn plan_for(payload: serde_json::Value) -> Plan {
        let i = Integration::builtin_default(&Catalog::builtin());
        let row = validate(&i, &stage(&i, payload.as_object().unwrap())).unwrap();
        plan(&i, &row).unwrap()
    }

    #[test]
    fn maps_each_u_field_to_its_target_and_defers_references() {
        let p = plan_for(json!({
            "u_short_description": "Disk full", "u_impact": "2", "u_urgency": 1,
            "u_correlation_id": "am:1", "u_caller": "monitoring.bot", "u_assignment_group": "Database",
        }));
        assert_eq!(p.set["short_description"], "Disk full");
        assert_eq!(p.set["impact"], "2");
        assert_eq!(p.set["urgency"], "1");
        assert_eq!(p.coalesce, vec![("correlation_id".to_owned(), "am:1".to_owned())]);
        assert!(p.coalesce_given());
        let lookups: Vec<_> =
            p.lookups.iter().map(|l| (l.target_field.as_str(), l.table.as_str(), l.on_unknown)).collect();
        assert_eq!(
            lookups,
            vec![
                ("caller_id", "sys_user", OnUnknown::Create),
                ("assignment_group", "sys_user_group", OnUnknown::Ignore)
            ]
        );
        assert!(!p.set.contains_key("caller_id"));
    }

    #[test]
    fn a_row_without_correlation_id_has_empty_coalesce_values() {
        let p = plan_for(json!({"u_short_description": "x"}));
        assert!(!p.coalesce_given());
        assert!(p.create_on_empty_coalesce);
    }
}
