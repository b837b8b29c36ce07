//! The built-in tables (incident, users, groups, CIs, audit, journal, import sets) and the shape
//! of every staging table.

use std::collections::BTreeMap;
use std::sync::Arc;

use crate::incident;
use crate::schema::{Field, FieldKind as K, TableSchema};

pub const INCIDENT: &str = "incident";
pub const SYS_USER: &str = "sys_user";
pub const SYS_USER_GROUP: &str = "sys_user_group";
pub const CMDB_CI: &str = "cmdb_ci";
pub const SYS_AUDIT: &str = "sys_audit";
pub const SYS_JOURNAL_FIELD: &str = "sys_journal_field";
pub const SYS_IMPORT_SET: &str = "sys_import_set";
pub const SYS_CHOICE: &str = "sys_choice";
pub const SYS_ATTACHMENT: &str = "sys_attachment";

fn reference(name: &str, label: &str, table: &str) -> Field {
    Field::new(name, label, K::Reference(table.to_owned()))
}

/// `sys_id` first, the system fields last, as ServiceNow lists them.
fn table(name: &str, label: &str, display: &str, own: Vec<Field>) -> TableSchema {
    let mut fields = vec![Field::new("sys_id", "Sys ID", K::String).max(32)];
    fields.extend(own);
    fields.extend([
        Field::new("sys_created_on", "Created", K::DateTime),
        Field::new("sys_created_by", "Created by", K::String).max(40),
        Field::new("sys_updated_on", "Updated", K::DateTime),
        Field::new("sys_updated_by", "Updated by", K::String).max(40),
        Field::new("sys_mod_count", "Updates", K::Integer),
    ]);
    TableSchema { name: name.to_owned(), label: label.to_owned(), display_field: display.to_owned(), fields }
}

/// The upstream's ticket number and sys_id of a forwarded incident.
pub const UPSTREAM_NUMBER: &str = "u_upstream_number";
pub const UPSTREAM_SYS_ID: &str = "u_upstream_sys_id";

pub fn incident() -> TableSchema {
    table(
        INCIDENT,
        "Incident",
        "number",
        vec![
            Field::new("number", "Number", K::String).max(40),
            Field::new("short_description", "Short description", K::String).max(160),
            Field::new("description", "Description", K::String).max(4000),
            reference("caller_id", "Caller", SYS_USER),
            Field::new("category", "Category", K::String).max(40).choices(incident::CATEGORIES),
            Field::new("subcategory", "Subcategory", K::String).max(40),
            Field::new("impact", "Impact", K::Integer).choices(incident::LEVELS).strict(),
            Field::new("urgency", "Urgency", K::Integer).choices(incident::LEVELS).strict(),
            Field::new("priority", "Priority", K::Integer).choices(incident::PRIORITIES).strict(),
            Field::new("severity", "Severity", K::Integer).choices(incident::LEVELS),
            Field::new("state", "State", K::Integer).choices(incident::STATES).strict(),
            Field::new("incident_state", "Incident state", K::Integer).choices(incident::STATES).strict(),
            Field::new("hold_reason", "On hold reason", K::Integer).choices(incident::HOLD_REASONS).strict(),
            reference("assignment_group", "Assignment group", SYS_USER_GROUP),
            reference("assigned_to", "Assigned to", SYS_USER),
            reference("cmdb_ci", "Configuration item", CMDB_CI),
            Field::new("correlation_id", "Correlation ID", K::String).max(100),
            Field::new("correlation_display", "Correlation display", K::String).max(100),
            Field::new("contact_type", "Channel", K::String).max(40).choices(incident::CONTACT_TYPES),
            Field::new("opened_at", "Opened", K::DateTime),
            reference("opened_by", "Opened by", SYS_USER),
            Field::new("resolved_at", "Resolved", K::DateTime),
            reference("resolved_by", "Resolved by", SYS_USER),
            Field::new("closed_at", "Closed", K::DateTime),
            reference("closed_by", "Closed by", SYS_USER),
            Field::new("close_code", "Resolution code", K::String).max(40).choices(incident::CLOSE_CODES),
            Field::new("close_notes", "Resolution notes", K::String).max(4000),
            Field::new("active", "Active", K::Boolean),
            Field::new("reassignment_count", "Reassignment count", K::Integer),
            Field::new("reopen_count", "Reopen count", K::Integer),
            Field::new("work_notes", "Work notes", K::Journal),
            Field::new("comments", "Additional comments", K::Journal),
            Field::new("sys_class_name", "Class", K::String).max(80),
            // Set by forwarding (docs/forwarding.md): the upstream's ticket for this record.
            Field::new(UPSTREAM_NUMBER, "Upstream number", K::String).max(40),
            Field::new(UPSTREAM_SYS_ID, "Upstream sys_id", K::String).max(32),
        ],
    )
}

pub fn sys_user() -> TableSchema {
    table(
        SYS_USER,
        "User",
        "name",
        vec![
            Field::new("user_name", "User ID", K::String).max(40),
            Field::new("name", "Name", K::String).max(151),
            Field::new("first_name", "First name", K::String).max(50),
            Field::new("last_name", "Last name", K::String).max(50),
            Field::new("email", "Email", K::String).max(100),
            Field::new("active", "Active", K::Boolean),
            Field::new("web_service_access_only", "Web service access only", K::Boolean),
            Field::new("roles", "Roles", K::String).max(255),
            Field::new("password_hash", "Password", K::String).hidden(),
            Field::new("credentials_version", "Credentials version", K::Integer).hidden(),
            Field::new("credentials_changed_at", "Credentials changed", K::DateTime).hidden(),
            // The account's policy: source networks (comma-separated CIDRs) and its own rate limit
            // (whole requests per second and burst; empty: the server's default).
            Field::new("source_networks", "Source networks", K::String).hidden(),
            Field::new("rate_per_second", "Rate per second", K::String).hidden(),
            Field::new("rate_burst", "Rate burst", K::String).hidden(),
        ],
    )
}

pub fn sys_user_group() -> TableSchema {
    table(
        SYS_USER_GROUP,
        "Group",
        "name",
        vec![
            Field::new("name", "Name", K::String).max(80),
            Field::new("description", "Description", K::String).max(1000),
            Field::new("email", "Group email", K::String).max(100),
            reference("manager", "Manager", SYS_USER),
            Field::new("active", "Active", K::Boolean),
        ],
    )
}

pub fn cmdb_ci() -> TableSchema {
    table(
        CMDB_CI,
        "Configuration Item",
        "name",
        vec![
            Field::new("name", "Name", K::String).max(255),
            Field::new("short_description", "Description", K::String).max(1000),
            Field::new("ip_address", "IP Address", K::String).max(255),
            Field::new("operational_status", "Operational status", K::Integer).choices(&[
                ("1", "Operational"),
                ("2", "Non-Operational"),
                ("3", "Repair in Progress"),
                ("6", "Retired"),
            ]),
            Field::new("sys_class_name", "Class", K::String).max(80),
        ],
    )
}

pub fn sys_audit() -> TableSchema {
    table(
        SYS_AUDIT,
        "Audit",
        "documentkey",
        vec![
            Field::new("tablename", "Table name", K::String).max(80),
            Field::new("documentkey", "Document key", K::String).max(32),
            Field::new("fieldname", "Field name", K::String).max(80),
            Field::new("oldvalue", "Old value", K::String),
            Field::new("newvalue", "New value", K::String),
            Field::new("user", "User", K::String).max(40),
            Field::new("reason", "Reason", K::String),
            Field::new("record_checkpoint", "Record checkpoint", K::Integer),
            Field::new("internal_checkpoint", "Internal checkpoint", K::String),
            // Which inbound payload caused the change (empty for changes not made by an import).
            Field::new("source_table", "Source table", K::String).max(80),
            Field::new("source_row", "Source row", K::String).max(32),
        ],
    )
}

pub fn sys_journal_field() -> TableSchema {
    table(
        SYS_JOURNAL_FIELD,
        "Journal Entry",
        "value",
        vec![
            Field::new("name", "Table name", K::String).max(80),
            Field::new("element", "Element", K::String).max(80),
            Field::new("element_id", "Element ID", K::String).max(32),
            Field::new("value", "Value", K::String),
        ],
    )
}

pub fn sys_import_set() -> TableSchema {
    table(
        SYS_IMPORT_SET,
        "Import Set",
        "number",
        vec![
            Field::new("number", "Set", K::String).max(40),
            Field::new("table_name", "Import set table", K::String).max(80),
            Field::new("mode", "Mode", K::String)
                .choices(&[("synchronous", "Synchronous"), ("asynchronous", "Asynchronous")]),
            Field::new("state", "State", K::String).choices(&[
                ("loading", "Loading"),
                ("loaded", "Loaded"),
                ("processed", "Processed"),
            ]),
            // insertMultiple: the multi import set the set belongs to (ServiceNow's
            // `multi_import_set_id`); empty for web-service sets of single rows.
            Field::new("multi_import_set", "Multi import set", K::String).max(32),
            // A sender hook's request body exactly as received (its rows hold one alert each);
            // empty otherwise. Read through GET /api/sluice/v1/import_sets/{id}.
            Field::new("request_body", "Request body as received", K::String).hidden(),
        ],
    )
}

/// The choice lists of every choice field (`sys_choice`), generated from the schemas.
pub fn sys_choice() -> TableSchema {
    table(
        SYS_CHOICE,
        "Choice",
        "label",
        vec![
            Field::new("name", "Table", K::String).max(80),
            Field::new("element", "Element", K::String).max(80),
            Field::new("value", "Value", K::String).max(40),
            Field::new("label", "Label", K::String).max(100),
            Field::new("sequence", "Sequence", K::Integer),
            Field::new("inactive", "Inactive", K::Boolean),
            Field::new("language", "Language", K::String).max(40),
        ],
    )
}

/// Attachment metadata (ServiceNow's `sys_attachment`); the content is kept beside it, in the
/// store's own table. Every field is the wire form of ServiceNow's answer.
pub fn sys_attachment() -> TableSchema {
    table(
        SYS_ATTACHMENT,
        "Attachment",
        "file_name",
        vec![
            Field::new("file_name", "File name", K::String).max(crate::attachment::MAX_FILE_NAME),
            Field::new("table_name", "Table name", K::String).max(80),
            Field::new("table_sys_id", "Table sys ID", K::String).max(32),
            // Sniffed from the bytes (`attachment::content_type`), not the client's label.
            Field::new("content_type", "Content type", K::String).max(100),
            Field::new("size_bytes", "Size bytes", K::Integer),
            // Stored as received: the size as stored, and `compressed` false.
            Field::new("size_compressed", "Size compressed", K::Integer),
            Field::new("compressed", "Compressed", K::Boolean),
            // SHA-256 of the content, lowercase hex.
            Field::new("hash", "Hash", K::String).max(64),
            Field::new("state", "State", K::String).max(40),
            Field::new("image_width", "Image width", K::String).max(40),
            Field::new("image_height", "Image height", K::String).max(40),
            Field::new("average_image_color", "Average image color", K::String).max(40),
            Field::new("sys_tags", "Tags", K::String),
        ],
    )
}

/// The staging (import set row) table of one integration: the system columns of ServiceNow's
/// `sys_import_set_row`, the raw payload, and the integration's own `u_` columns (all strings,
/// as ServiceNow stores staged values).
pub fn staging(name: &str, label: &str, target_table: &str, columns: Vec<Field>) -> TableSchema {
    let mut own = vec![
        reference("sys_import_set", "Set", SYS_IMPORT_SET),
        Field::new("sys_import_row", "Row", K::Integer),
        Field::new("sys_import_state", "State", K::String).choices(&[
            ("pending", "Pending"),
            ("inserted", "Inserted"),
            ("updated", "Updated"),
            ("ignored", "Ignored"),
            ("skipped", "Skipped"),
            ("error", "Error"),
        ]),
        Field::new("sys_import_state_comment", "Comment", K::String),
        Field::new("sys_target_table", "Target table", K::String).max(80),
        reference("sys_target_sys_id", "Target record", target_table),
        Field::new("sys_transform_map", "Transform map", K::String).max(80),
        Field::new("sys_row_error", "Row error", K::String),
        // Every problem found, as a JSON array of {code, field, message}.
        Field::new("sys_row_errors", "Row errors", K::String),
        Field::new("sys_integration_version", "Integration version", K::String).max(40),
        // The body exactly as received; served through the Import Set API only.
        Field::new("sys_payload", "Payload", K::String).hidden(),
    ];
    own.extend(columns);
    table(name, label, "sys_id", own)
}

/// Every table the server knows, by name.
#[derive(Clone, Debug, Default)]
pub struct Catalog {
    tables: BTreeMap<String, Arc<TableSchema>>,
}

impl Catalog {
    pub fn builtin() -> Self {
        let mut c = Self::default();
        for t in [
            incident(),
            sys_user(),
            sys_user_group(),
            cmdb_ci(),
            sys_audit(),
            sys_journal_field(),
            sys_import_set(),
            sys_choice(),
            sys_attachment(),
        ] {
            c.insert(t);
        }
        c
    }

    pub fn insert(&mut self, schema: TableSchema) {
        self.tables.insert(schema.name.clone(), Arc::new(schema));
    }

    pub fn get(&self, name: &str) -> Option<&Arc<TableSchema>> {
        self.tables.get(name)
    }

    pub fn tables(&self) -> impl Iterator<Item = &Arc<TableSchema>> {
        self.tables.values()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::schema::is_identifier;

    #[test]
    fn every_builtin_name_is_a_safe_identifier_and_references_resolve() {
        let c = Catalog::builtin();
        for t in c.tables() {
            assert!(is_identifier(&t.name), "{}", t.name);
            assert!(t.field(&t.display_field).is_some(), "{} display", t.name);
            for f in &t.fields {
                assert!(is_identifier(&f.name), "{}.{}", t.name, f.name);
                if let Some(target) = f.reference_table() {
                    assert!(c.get(target).is_some(), "{}.{} -> {target}", t.name, f.name);
                }
            }
        }
    }
}
