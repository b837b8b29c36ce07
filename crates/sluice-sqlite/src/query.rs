//! Encoded queries ([`EncodedQuery`]) to SQLite SQL for one table: the SQLite [`Dialect`] of
//! the shared translation in `query_sql.rs`.
//!
//! Semantics, following ServiceNow on MySQL: text comparisons ignore ASCII case (`sys_id` and
//! reference fields hold lowercase sys_ids, so there the value is lowercased and compared as is,
//! which keeps their binary indexes usable); `LIKE`,
//! `STARTSWITH` and `ENDSWITH` take their value literally (`%`, `_`, `\` are escaped); integer
//! fields compare as numbers; ordering comparisons (`<`, `<=`, `>`, `>=`, `BETWEEN`) never match an
//! empty value (ServiceNow's NULL); date-times are `yyyy-MM-dd HH:mm:ss` text, which orders as
//! time does. Conditions are combined into balanced trees so a long `^OR` chain does not hit
//! SQLite's expression depth limit.

use rusqlite::types::Value;
use sluice_core::query::{DatePart, EncodedQuery, Operator};
use sluice_core::schema::{Field, FieldKind, TableSchema};
use sluice_core::tables::Catalog;

use sluice_store::query_sql::{self, Dialect, escape_like};

/// The `WHERE` and `ORDER BY` parts of a list query, and the values for the `WHERE` part.
pub type Filter = query_sql::Filter<Value>;
type Part = query_sql::Part<Value>;

pub(crate) struct Sqlite;

impl Dialect for Sqlite {
    type Value = Value;
    const TRUE: &'static str = "1";
    const INSERTION_ORDER: &'static str = "rowid";

    fn ident(name: &str) -> String {
        name.to_owned()
    }

    fn predicate(col: &str, field: &Field, op: &Operator) -> Option<Part> {
        predicate(col, field, op)
    }

    fn order_key(col: &str, field: &Field) -> String {
        format!("{col}{}", Compare::of(field).collate())
    }

    fn nonempty(col: &str, _field: &Field) -> String {
        format!("{col} <> ''")
    }

    fn comparable(col: &str, field: &Field) -> String {
        // lower() folds ASCII only, as NOCASE does.
        if Compare::of(field) == Compare::Text { format!("lower({col})") } else { col.to_owned() }
    }

    fn date_part(col: &str, part: DatePart) -> String {
        // strftime answers NULL for an empty (or unreadable) value.
        let number = |format: &str| format!("CAST(strftime('{format}', {col}) AS INTEGER)");
        match part {
            // %w is 0 for Sunday; ISO weekdays run from 1 (Monday) to 7 (Sunday).
            DatePart::DayOfWeek => format!("(({} + 6) % 7 + 1)", number("%w")),
            DatePart::DayOfMonth => number("%d"),
            DatePart::Week => number("%W"),
            DatePart::Month => number("%m"),
            DatePart::Quarter => format!("(({} + 2) / 3)", number("%m")),
            DatePart::Year => number("%Y"),
            DatePart::Hour => number("%H"),
        }
    }

    fn epoch(col: &str) -> String {
        format!("CAST(strftime('%s', {col}) AS INTEGER)")
    }

    fn text(v: &str) -> Value {
        text(v)
    }

    fn int(v: i64) -> Value {
        Value::Integer(v)
    }
}

/// The filter and ordering of `query` on `schema`; references are followed through `catalog`.
pub fn translate(catalog: &Catalog, schema: &TableSchema, query: &EncodedQuery) -> Filter {
    query_sql::translate::<Sqlite>(catalog, schema, query)
}

fn text(v: &str) -> Value {
    Value::Text(v.to_owned())
}

/// How a field's values compare.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Compare {
    /// INTEGER affinity: a bound text value that looks like a number is compared as one.
    Number,
    /// `sys_id` and references: lowercase sys_ids (or empty). Comparing with the value lowercased
    /// ignores case exactly as NOCASE would, and can use the primary key and binary indexes.
    Key,
    /// Any other text: ASCII case ignored.
    Text,
}

impl Compare {
    fn of(field: &Field) -> Self {
        match field.kind {
            FieldKind::Integer => Compare::Number,
            FieldKind::Reference(_) => Compare::Key,
            _ if query_sql::stored_lowercase(field) => Compare::Key,
            _ => Compare::Text,
        }
    }

    fn collate(self) -> &'static str {
        if self == Compare::Text { " COLLATE NOCASE" } else { "" }
    }

    /// A value to compare for equality or membership.
    fn value(self, v: &str) -> Value {
        match self {
            Compare::Key => Value::Text(v.to_ascii_lowercase()),
            _ => text(v),
        }
    }

    /// A value to order against: a number for integer fields (a value that is not a number makes
    /// the condition invalid, so it is dropped), the text otherwise.
    fn ordered(self, v: &str) -> Option<Value> {
        if self != Compare::Number {
            return Some(self.value(v));
        }
        let v = v.trim();
        if let Ok(i) = v.parse::<i64>() {
            return Some(Value::Integer(i));
        }
        v.parse::<f64>().ok().filter(|f| f.is_finite()).map(Value::Real)
    }
}

/// SQLite refuses `LIKE` patterns over 50,000 bytes and reads a pattern only up to its first NUL;
/// such values are matched with length-aware functions instead.
const LONGEST_LIKE_PATTERN: usize = 10_000;

fn like_safe(v: &str) -> bool {
    v.len() <= LONGEST_LIKE_PATTERN && !v.contains('\0')
}

#[derive(Clone, Copy)]
enum Match {
    Contains,
    NotContains,
    Prefix,
    Suffix,
}

/// Contains / prefix / suffix, ASCII case-insensitive, the value taken literally.
fn matching(col: &str, how: Match, v: &str) -> Part {
    if like_safe(v) {
        let escaped = escape_like(v);
        let (not, pattern) = match how {
            Match::Contains => ("", format!("%{escaped}%")),
            Match::NotContains => ("NOT ", format!("%{escaped}%")),
            Match::Prefix => ("", format!("{escaped}%")),
            Match::Suffix => ("", format!("%{escaped}")),
        };
        // SQLite's LIKE ignores ASCII case already.
        return Part::new(format!("{col} {not}LIKE ? ESCAPE '\\'"), vec![Value::Text(pattern)]);
    }
    // instr, lower and blob substr work on the whole value, NULs included; lower is ASCII-only,
    // like LIKE's case folding.
    match how {
        Match::Contains => Part::new(format!("instr(lower({col}), lower(?)) > 0"), vec![text(v)]),
        Match::NotContains => Part::new(format!("instr(lower({col}), lower(?)) = 0"), vec![text(v)]),
        Match::Prefix => Part::new(format!("instr(lower({col}), lower(?)) = 1"), vec![text(v)]),
        Match::Suffix => {
            let n = Value::Integer(i64::try_from(v.len()).unwrap_or(i64::MAX));
            Part::new(
                format!(
                    "(length(CAST({col} AS BLOB)) >= ? AND substr(CAST(lower({col}) AS BLOB), -?) = CAST(lower(?) AS BLOB))"
                ),
                vec![n.clone(), n, text(v)],
            )
        }
    }
}

/// The SQL for one operator on one column (`col` is a schema name, possibly table-qualified).
fn predicate(col: &str, field: &Field, op: &Operator) -> Option<Part> {
    let compare = Compare::of(field);
    let nocase = compare.collate();
    let list = |values: &[String]| vec!["?"; values.len()].join(", ");
    let values = |values: &[String]| values.iter().map(|v| compare.value(v)).collect();
    let part = match op {
        Operator::Eq(v) => Part::new(format!("{col}{nocase} = ?"), vec![compare.value(v)]),
        Operator::Ne(v) => Part::new(format!("{col}{nocase} <> ?"), vec![compare.value(v)]),
        Operator::Like(v) => matching(col, Match::Contains, v),
        Operator::NotLike(v) => matching(col, Match::NotContains, v),
        Operator::StartsWith(v) => matching(col, Match::Prefix, v),
        Operator::EndsWith(v) => matching(col, Match::Suffix, v),
        Operator::In(vs) => Part::new(format!("{col}{nocase} IN ({})", list(vs)), values(vs)),
        Operator::NotIn(vs) => Part::new(format!("{col}{nocase} NOT IN ({})", list(vs)), values(vs)),
        Operator::IsEmpty | Operator::EmptyString => Part::new(format!("{col} = ''"), Vec::new()),
        Operator::IsNotEmpty => Part::new(format!("{col} <> ''"), Vec::new()),
        Operator::Anything => Part::fixed("1"),
        Operator::Lt(v) | Operator::Le(v) | Operator::Gt(v) | Operator::Ge(v) => {
            let sign = match op {
                Operator::Lt(_) => "<",
                Operator::Le(_) => "<=",
                Operator::Gt(_) => ">",
                _ => ">=",
            };
            let value = compare.ordered(v)?;
            Part::new(format!("({col} <> '' AND {col}{nocase} {sign} ?)"), vec![value])
        }
        Operator::Between(low, high) => {
            let (low, high) = (compare.ordered(low)?, compare.ordered(high)?);
            Part::new(format!("({col} <> '' AND {col}{nocase} BETWEEN ? AND ?)"), vec![low, high])
        }
        // Written by the shared translation from the primitives above.
        Operator::NotBetween(..) | Operator::DatePart { .. } | Operator::Field { .. } | Operator::Apart { .. } => {
            return None;
        }
    };
    Some(part)
}

#[cfg(test)]
mod tests {
    use sluice_core::query::parse;
    use sluice_core::tables::{self, Catalog};

    use super::*;

    fn sql(query: &str) -> Filter {
        let catalog = Catalog::builtin();
        let incident = catalog.get(tables::INCIDENT).expect("incident").clone();
        translate(&catalog, &incident, &parse(query, sluice_core::DateTime::from_unix(0)).expect("a valid query"))
    }

    fn texts(values: &[&str]) -> Vec<Value> {
        values.iter().map(|v| text(v)).collect()
    }

    #[test]
    fn shapes() {
        let f = sql("number=INC1^ORnumber=INC2^impact<3^ORDERBYDESCpriority^ORDERBYnumber");
        assert_eq!(
            f.where_sql,
            " WHERE ((number COLLATE NOCASE = ? OR number COLLATE NOCASE = ?) AND (impact <> '' AND impact < ?))"
        );
        assert_eq!(f.params, vec![text("INC1"), text("INC2"), Value::Integer(3)]);
        assert_eq!(f.order_sql, " ORDER BY priority DESC, number COLLATE NOCASE ASC, rowid");

        let f = sql("caller_id.user_name=bob^NQshort_descriptionLIKE50%_\\");
        assert_eq!(
            f.where_sql,
            " WHERE (caller_id IN (SELECT r.sys_id FROM sys_user AS r WHERE r.user_name COLLATE NOCASE = ?) \
             OR short_description LIKE ? ESCAPE '\\')"
        );
        assert_eq!(f.params, texts(&["bob", "%50\\%\\_\\\\%"]));
    }

    #[test]
    fn unknown_hidden_and_journal_fields_are_dropped() {
        let everything = Filter { where_sql: String::new(), order_sql: " ORDER BY rowid".into(), params: vec![] };
        assert_eq!(sql(""), everything);
        assert_eq!(sql("nope=1^ORDERBYnope"), everything);
        assert_eq!(sql("work_notes=x^caller_id.password_hashSTARTSWITH$^caller_id.nope=1"), everything);
        assert_eq!(sql("impact<high"), everything, "not a number: an invalid comparison");
        assert_eq!(sql("number.short_description=x^caller_id.caller_id=x"), everything, "not references");
        // A group left empty matches every row, and so does the whole query.
        assert_eq!(sql("number=INC1^NQnope=1"), everything);
        let f = sql("nope=1^ORnumber=INC1^nope=2");
        assert_eq!((f.where_sql.as_str(), f.params), (" WHERE number COLLATE NOCASE = ?", texts(&["INC1"])));
    }

    /// Searches by the usual keys (number, sys_id, correlation id, the document of an audit
    /// row, a user name through a reference, keyset paging by sys_id) use an index.
    #[test]
    fn searches_use_the_indexes() {
        let catalog = Catalog::builtin();
        let mut conn = rusqlite::Connection::open_in_memory().expect("in-memory database");
        crate::migrate::migrate(&mut conn, &catalog).expect("migrate");
        let plan = |table: &str, query: &str| {
            let schema = catalog.get(table).expect("table");
            let f =
                translate(&catalog, schema, &parse(query, sluice_core::DateTime::from_unix(0)).expect("a valid query"));
            let sql = format!("EXPLAIN QUERY PLAN SELECT sys_id FROM {table}{}{}", f.where_sql, f.order_sql);
            let mut stmt = conn.prepare(&sql).expect("prepare");
            let rows = stmt.query_map(rusqlite::params_from_iter(f.params.iter()), |r| r.get::<_, String>(3));
            rows.expect("plan").collect::<rusqlite::Result<Vec<_>>>().expect("plan").join("; ")
        };
        for (table, query, index) in [
            ("incident", "number=INC0010001", "USING INDEX incident_number (number=?)"),
            ("incident", "GOTOnumber=inc0010001^ORnumber=INC0010002", "USING INDEX incident_number (number=?)"),
            ("incident", "numberININC0010001,INC0010002", "USING INDEX incident_number (number=?)"),
            ("incident", "sys_id=0123456789ABCDEF0123456789abcdef", "sqlite_autoindex_incident_1 (sys_id=?)"),
            ("incident", "sys_id>0123456789abcdef^ORDERBYsys_id", "sqlite_autoindex_incident_1 (sys_id>?)"),
            ("incident", "correlation_id=am:1", "USING INDEX incident_correlation (correlation_id=?)"),
            ("incident", "caller_id.user_name=bob", "USING INDEX sys_user_user_name (user_name=?)"),
            ("sys_audit", "documentkey=0123456789abcdef", "USING INDEX sys_audit_document (documentkey=?)"),
            ("sys_audit", "documentkey=0123456789abcdef", "USING INDEX sluice_audit_set_document (documentkey=?)"),
            ("sys_journal_field", "element_id=0123", "USING INDEX sys_journal_field_element (element_id=?)"),
            ("sys_user", "user_name=Bob", "USING INDEX sys_user_user_name (user_name=?)"),
            ("sys_user", "email=bob@example.com", "USING INDEX sys_user_email (email=?)"),
            ("incident", "ORDERBYDESCsys_created_on", "SCAN incident USING INDEX incident_created"),
            ("incident", "priority=1^ORDERBYDESCsys_updated_on", "SCAN incident USING INDEX incident_updated"),
        ] {
            let plan = plan(table, query);
            assert!(plan.contains(index), "{table} {query}: {plan}");
        }
        // Newest first is read off the index backwards: nothing is sorted, not even the ties.
        for query in ["ORDERBYDESCsys_created_on", "ORDERBYsys_created_on", "active=true^ORDERBYDESCsys_updated_on"] {
            let plan = plan("incident", query);
            assert!(!plan.contains("TEMP B-TREE"), "{query}: {plan}");
        }
        // A sys_audit row by its sys_id: the per-field rows by theirs, the change sets by their key.
        let sql = "EXPLAIN QUERY PLAN SELECT fieldname FROM sys_audit WHERE sys_id = ?1 AND sluice_set = ?2";
        let plan: Vec<String> = conn
            .prepare(sql)
            .expect("prepare")
            .query_map(["0123456789abcdef0123456789ab0001", "0123456789abcdef0123456789ab0000"], |r| r.get(3))
            .expect("plan")
            .collect::<rusqlite::Result<_>>()
            .expect("plan");
        let plan = plan.join("; ");
        assert!(plan.contains("SEARCH s USING INDEX sqlite_autoindex_sluice_audit_set_1 (sys_id=?)"), "{plan}");
        assert!(plan.contains("USING INDEX sqlite_autoindex_sluice_audit_field_1 (sys_id=?)"), "{plan}");
    }

    #[test]
    fn dates_fields_and_choice_labels() {
        let f = sql("opened_atDATEPARTx@javascript:gs.datePart('dayofweek','monday','GE')^impactSAMEASurgency");
        assert_eq!(
            f.where_sql,
            " WHERE (((CAST(strftime('%w', opened_at) AS INTEGER) + 6) % 7 + 1) >= ? \
             AND (impact <> '' AND urgency <> '' AND impact = urgency))"
        );
        assert_eq!(f.params, vec![Value::Integer(1)]);
        let f =
            sql("opened_atMORETHANsys_created_on@hour@before@2^opened_atNOTON@2024-05-01 00:00:00@2024-05-01 23:59:59");
        assert_eq!(
            f.where_sql,
            " WHERE ((CAST(strftime('%s', opened_at) AS INTEGER) - CAST(strftime('%s', sys_created_on) AS INTEGER)) < ? \
             AND (NOT (opened_at <> '') OR lower(opened_at) < ? OR lower(opened_at) > ?))"
        );
        assert_eq!(f.params, vec![Value::Integer(-7200), text("2024-05-01 00:00:00"), text("2024-05-01 23:59:59")]);
        let f = sql("state=In progress^impactIN1 - High,2");
        assert_eq!(f.where_sql, " WHERE (state = ? AND impact IN (?, ?))");
        assert_eq!(f.params, texts(&["2", "1", "2"]));
    }

    #[test]
    fn keys_are_lowercased_not_collated() {
        let f = sql("sys_id=ABCdef^caller_idINAB,cd^assigned_to>F");
        assert_eq!(
            f.where_sql,
            " WHERE ((sys_id = ? AND caller_id IN (?, ?)) AND (assigned_to <> '' AND assigned_to > ?))"
        );
        assert_eq!(f.params, texts(&["abcdef", "ab", "cd", "f"]));
        assert_eq!(sql("ORDERBYcaller_id").order_sql, " ORDER BY caller_id ASC, rowid");
    }

    #[test]
    fn long_chains_are_balanced() {
        let q = (0..64).map(|n| format!("number={n}")).collect::<Vec<_>>().join("^OR");
        let f = sql(&q);
        assert_eq!(f.params.len(), 64);
        let depth = f.where_sql.chars().scan(0i32, |d, c| {
            *d += match c {
                '(' => 1,
                ')' => -1,
                _ => 0,
            };
            Some(*d)
        });
        assert_eq!(depth.max(), Some(6));
    }
}
