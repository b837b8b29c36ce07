//! The staging row both backends write for a received record: the same fields whatever the
//! database.

use std::collections::BTreeMap;

use sluice_core::rules::{self, Actor};
use sluice_core::schema::TableSchema;
use sluice_core::{DateTime, Record, SysId};

/// A new staging row: the system fields, the integration's columns the schema has, and `system`.
pub(crate) fn staging_row(
    staging: &TableSchema,
    sys_id: &SysId,
    columns: &BTreeMap<String, String>,
    system: &[(&str, &str)],
    actor: &Actor,
    now: DateTime,
) -> Record {
    let mut row = rules::insert_simple(staging, &[], actor, now);
    row.insert("sys_id".into(), sys_id.to_string());
    for (k, v) in columns {
        if staging.field(k).is_some() {
            row.insert(k.clone(), v.clone());
        }
    }
    for (k, v) in system {
        row.insert((*k).into(), (*v).into());
    }
    row
}
