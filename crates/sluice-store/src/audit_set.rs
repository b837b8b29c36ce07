//! How both backends store `sys_audit`: one row per change set (who, when, why, which record, and
//! the changes as a JSON array of `[field, old, new]`), read through the view `sys_audit` as one
//! row per changed field, as ServiceNow lists them. Creating an incident changes ~20 fields; one
//! row instead of twenty was the largest single saving on the write path.

use sluice_core::SysId;
use sluice_core::rules::Applied;

/// What caused a change set: the staging row (table and sys_id; empty for a Table API write) and
/// the reason recorded with it.
#[derive(Debug, Clone, Copy)]
pub struct Source<'a> {
    pub table: &'a str,
    pub row: &'a str,
    pub reason: &'a str,
}

/// Where rows written one per field are kept (the audit from before change sets, and a restored
/// dump's): the view reads them first, in their order, then the sets.
pub const FIELD_TABLE: &str = "sluice_audit_field";

/// The change sets.
pub const SET_TABLE: &str = "sluice_audit_set";

/// The table a dump's rows of `table` are loaded into: `sys_audit` is a view, its rows go where
/// rows written one per field are kept.
pub fn stored_in(table: &str) -> &str {
    if table == sluice_core::tables::SYS_AUDIT { FIELD_TABLE } else { table }
}

/// A change set's sys_id: a new id ending in 0000. The view gives the set's n-th change the same
/// id with n in those four hex digits, so a change's id leads back to its set.
pub fn set_id() -> String {
    let mut id = SysId::generate().into_string();
    id.replace_range(28.., "0000");
    id
}

/// The key of the set a `sys_audit` row's sys_id belongs to (the view's `sluice_set`): a lookup by
/// sys_id also names it, so the sets are searched by their primary key (the view cannot search
/// them by the ids it derives).
pub fn set_key(sys_id: &str) -> String {
    let mut set = sys_id.get(..28).unwrap_or(sys_id).to_owned();
    set.push_str("0000");
    set
}

/// Why a staged row changed its record: "Import Set {table} row {id}" (the reason the view
/// derives when none is stored), or its replay's.
pub fn reason(staging_table: &str, staging_row: &dyn std::fmt::Display, replayed_by: Option<&str>) -> String {
    match replayed_by {
        None => format!("Import Set {staging_table} row {staging_row}"),
        Some(by) => format!("Replay of Import Set {staging_table} row {staging_row} (requested by {by})"),
    }
}

/// The reason stored with a change set: empty for the usual import reason ("Import Set {table}
/// row {row}"), which the view derives from the source columns.
pub fn stored_reason<'a>(source_table: &str, source_row: &str, reason: &'a str) -> &'a str {
    let derived = !source_table.is_empty()
        && reason
            .strip_prefix("Import Set ")
            .and_then(|r| r.strip_prefix(source_table))
            .and_then(|r| r.strip_prefix(" row "))
            == Some(source_row);
    if derived { "" } else { reason }
}

/// The changes as stored, each value passed through `value` (PostgreSQL cannot hold NUL).
pub fn changes_json<'a>(applied: &'a Applied, value: impl Fn(&'a str) -> std::borrow::Cow<'a, str>) -> String {
    let triples: Vec<[std::borrow::Cow<'a, str>; 3]> = applied
        .changes
        .iter()
        .map(|c| [std::borrow::Cow::Borrowed(c.field.as_str()), value(&c.old), value(&c.new)])
        .collect();
    serde_json::to_string(&triples).expect("strings serialise")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_set_id_ends_in_zeros_and_is_new_each_time() {
        let (a, b) = (set_id(), set_id());
        assert!(SysId::is_valid(&a) && a.ends_with("0000") && a != b);
    }

    #[test]
    fn only_the_usual_import_reason_is_left_to_the_view() {
        assert_eq!(stored_reason("u_in", "r1", "Import Set u_in row r1"), "");
        assert_eq!(stored_reason("u_in", "r1", "Import Set u_in row r2"), "Import Set u_in row r2");
        assert_eq!(stored_reason("", "", "Table API"), "Table API");
        let replay = "Replay of Import Set u_in row r1 (requested by admin)";
        assert_eq!(stored_reason("u_in", "r1", replay), replay);
        assert_eq!(stored_reason("u_in", "r1", &reason("u_in", &"r1", None)), "");
        assert_eq!(reason("u_in", &"r1", Some("admin")), replay);
    }
}
