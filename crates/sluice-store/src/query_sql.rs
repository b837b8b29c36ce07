//! The dialect-independent half of turning an [`EncodedQuery`] into SQL: which conditions a
//! table lets clients use, how `^OR`, `^` and `^NQ` nest (as balanced trees), dot-walking through
//! a reference, and the `ORDER BY` list. Each database supplies a [`Dialect`]: the SQL of one
//! operator on one column, how a column orders, how identifiers are written.
//!
//! Column and table names in the SQL come only from schemas (visible, stored fields; referenced
//! tables from the catalog), never from the request; every value is a bound parameter, one per
//! `?` placeholder, in order (a dialect with numbered placeholders renumbers them afterwards).
//! As ServiceNow does by default, a condition on a field the table does not have (or hides) is
//! dropped and the rest of the query runs; so is one that cannot hold on its field's kind (a date
//! part of a text field, a number compared with a field of another kind).
//!
//! On a choice field, `=`, `!=`, `IN` and `NOT IN` take a choice's label for its value
//! (`state=New` is `state=1`), as ServiceNow does; a value that is a choice value stays one.
//!
//! Date-times are stored as `yyyy-MM-dd HH:mm:ss` (UTC) text, which orders as time does, so
//! `<`, `BETWEEN` and `NOTON` compare text; date parts and distances between two fields go
//! through the dialect's [`Dialect::date_part`] and [`Dialect::epoch`].

use sluice_core::DateTime;
use sluice_core::query::{Clause, Condition, DatePart, Direction, EncodedQuery, Group, Operator, OrderBy};
use sluice_core::schema::{Field, FieldKind, TableSchema, is_identifier};
use sluice_core::tables::Catalog;

/// Columns that hold only lowercase text sluice wrote itself (sys_ids, a staging row's state):
/// compared with the value lowercased, not case-folded, so their plain indexes serve a filter.
pub fn stored_lowercase(field: &Field) -> bool {
    field.name == "sys_id" || field.name == "sys_import_state"
}

/// What differs between databases.
pub trait Dialect {
    /// A bound value.
    type Value;
    /// A condition that holds for every row.
    const TRUE: &'static str;
    /// The column that keeps insertion order: the last ordering term, so pages are stable.
    const INSERTION_ORDER: &'static str;
    /// A table or column name as SQL text (`name` passed [`is_identifier`]).
    fn ident(name: &str) -> String;
    /// The SQL for one operator on one column (`col` is already written with [`Dialect::ident`],
    /// possibly table-qualified); `None` when the condition is invalid (it is then dropped).
    /// Operators that compare two fields or parts of dates ([`Operator::NotBetween`],
    /// [`Operator::DatePart`], [`Operator::Field`], [`Operator::Apart`]) are written here, from
    /// the primitives below, and never reach it.
    fn predicate(col: &str, field: &Field, op: &Operator) -> Option<Part<Self::Value>>;
    /// A condition that holds when the column has a value (ServiceNow's not NULL).
    fn nonempty(col: &str, field: &Field) -> String;
    /// The column as two fields compare: ASCII case folded for text, as it is otherwise.
    fn comparable(col: &str, field: &Field) -> String;
    /// An integer SQL expression: `part` of a date-time column, NULL when it is empty.
    fn date_part(col: &str, part: DatePart) -> String;
    /// An integer SQL expression: a date-time column as seconds since 1970, NULL when empty.
    fn epoch(col: &str) -> String;
    /// A bound text value.
    fn text(v: &str) -> Self::Value;
    /// A bound integer value.
    fn int(v: i64) -> Self::Value;
    /// What to order by for a field (`col` written with [`Dialect::ident`]).
    fn order_key(col: &str, field: &Field) -> String;
}

/// The `WHERE` and `ORDER BY` parts of a list query, and the values for the `WHERE` part.
#[derive(Debug, Clone, PartialEq)]
pub struct Filter<V> {
    /// ` WHERE ...`, or empty when every row matches.
    pub where_sql: String,
    /// ` ORDER BY ...`, always ending with the insertion order so pages are stable.
    pub order_sql: String,
    /// One value per `?` in `where_sql`, in order.
    pub params: Vec<V>,
}

/// A piece of SQL and the values of its placeholders.
#[derive(Debug)]
pub struct Part<V> {
    pub sql: String,
    pub params: Vec<V>,
}

impl<V> Part<V> {
    pub fn new(sql: String, params: Vec<V>) -> Self {
        Self { sql, params }
    }

    pub fn fixed(sql: &str) -> Self {
        Self::new(sql.to_owned(), Vec::new())
    }
}

/// Joins parts with `AND` or `OR` as a balanced tree: `((a OR b) OR (c OR d))`. Databases limit
/// expression depth (SQLite 1000 by default); a left-deep chain of a few thousand terms exceeds it.
fn join<V>(mut parts: Vec<Part<V>>, op: &str) -> Option<Part<V>> {
    while parts.len() > 1 {
        let mut next = Vec::with_capacity(parts.len().div_ceil(2));
        let mut iter = parts.into_iter();
        while let Some(mut left) = iter.next() {
            match iter.next() {
                Some(right) => {
                    left.sql = format!("({} {op} {})", left.sql, right.sql);
                    left.params.extend(right.params);
                    next.push(left);
                }
                None => next.push(left),
            }
        }
        parts = next;
    }
    parts.pop()
}

/// A field a query may use: visible, and stored in the table (journal fields are not).
pub fn queryable<'a>(schema: &'a TableSchema, name: &str) -> Option<&'a Field> {
    schema.visible_field(name).filter(|f| f.kind != FieldKind::Journal && is_identifier(&f.name))
}

/// One condition, or `None` when it names a field the table (or the referenced table) does not
/// let clients query.
fn condition<D: Dialect>(catalog: &Catalog, schema: &TableSchema, condition: &Condition) -> Option<Part<D::Value>> {
    match condition.field.segments() {
        [name] => {
            let field = queryable(schema, name)?;
            predicate::<D>(schema, "", field, &condition.op)
        }
        [reference, name] => {
            let via = queryable(schema, reference)?;
            let target = catalog.get(via.reference_table()?)?;
            let field = queryable(target, name)?;
            if !is_identifier(&target.name) {
                return None;
            }
            if condition.op == Operator::Anything {
                return Some(Part::fixed(D::TRUE));
            }
            let inner = predicate::<D>(target, "r.", field, &condition.op)?;
            Some(Part::new(
                format!(
                    "{} IN (SELECT r.{} FROM {} AS r WHERE {})",
                    D::ident(&via.name),
                    D::ident("sys_id"),
                    D::ident(&target.name),
                    inner.sql
                ),
                inner.params,
            ))
        }
        _ => None,
    }
}

/// A value or list of values given as a choice's label, as its value (`New` → `1`); anything
/// else as it is.
fn choice_values(field: &Field, op: &Operator) -> Option<Operator> {
    if field.choices.is_empty() {
        return None;
    }
    let value_of = |v: &String| {
        if field.choices.iter().any(|c| c.value == *v) {
            return v.clone();
        }
        let label = field.choices.iter().find(|c| c.label.eq_ignore_ascii_case(v.trim()));
        label.map_or_else(|| v.clone(), |c| c.value.clone())
    };
    Some(match op {
        Operator::Eq(v) => Operator::Eq(value_of(v)),
        Operator::Ne(v) => Operator::Ne(value_of(v)),
        Operator::In(vs) => Operator::In(vs.iter().map(value_of).collect()),
        Operator::NotIn(vs) => Operator::NotIn(vs.iter().map(value_of).collect()),
        _ => return None,
    })
}

/// Text-like kinds compare with each other, integers with integers.
fn same_family(a: &Field, b: &Field) -> bool {
    (a.kind == FieldKind::Integer) == (b.kind == FieldKind::Integer)
        && a.kind != FieldKind::Journal
        && b.kind != FieldKind::Journal
}

/// One operator on one field of `table`, whose columns are written with `qualifier` (`r.` inside
/// a dot-walk's subquery).
fn predicate<D: Dialect>(table: &TableSchema, qualifier: &str, field: &Field, op: &Operator) -> Option<Part<D::Value>> {
    let col = format!("{qualifier}{}", D::ident(&field.name));
    let date = field.kind == FieldKind::DateTime;
    let other = |name: &str| queryable(table, name).map(|f| (format!("{qualifier}{}", D::ident(&f.name)), f));
    match op {
        Operator::NotBetween(low, high) if date => {
            // Bounds are date-times (the parser writes nothing else); others cannot hold.
            let (low, high) = (DateTime::parse(low).ok()?, DateTime::parse(high).ok()?);
            let folded = D::comparable(&col, field);
            let nonempty = D::nonempty(&col, field);
            Some(Part::new(
                format!("(NOT ({nonempty}) OR {folded} < ? OR {folded} > ?)"),
                vec![D::text(&low.to_string()), D::text(&high.to_string())],
            ))
        }
        Operator::DatePart { part, sign, value } if date => {
            Some(Part::new(format!("{} {} ?", D::date_part(&col, *part), sign.sql()), vec![D::int(i64::from(*value))]))
        }
        Operator::Field { sign, other: name, part } => {
            let (other_col, other_field) = other(name)?;
            if !same_family(field, other_field) {
                return None;
            }
            let (left, right) = match part {
                Some(part) if date && other_field.kind == FieldKind::DateTime => {
                    (D::date_part(&col, *part), D::date_part(&other_col, *part))
                }
                Some(_) => return None,
                None => (D::comparable(&col, field), D::comparable(&other_col, other_field)),
            };
            Some(Part::new(
                format!(
                    "({} AND {} AND {left} {} {right})",
                    D::nonempty(&col, field),
                    D::nonempty(&other_col, other_field),
                    sign.sql()
                ),
                Vec::new(),
            ))
        }
        Operator::Apart { more, other: name, unit, direction, count } if date => {
            let (other_col, other_field) = other(name)?;
            if other_field.kind != FieldKind::DateTime {
                return None;
            }
            let seconds = unit.seconds()?.checked_mul(*count)?;
            // `d` is how far this field lies after the other, in seconds.
            let d = format!("({} - {})", D::epoch(&col), D::epoch(&other_col));
            let (sql, bound) = match (more, direction) {
                (true, Direction::Before) => (format!("{d} < ?"), -seconds),
                (true, Direction::After) => (format!("{d} > ?"), seconds),
                (true, Direction::Either) => (format!("abs({d}) > ?"), seconds),
                (false, Direction::Before) => (format!("({d} <= 0 AND {d} > ?)"), -seconds),
                (false, Direction::After) => (format!("({d} >= 0 AND {d} < ?)"), seconds),
                (false, Direction::Either) => (format!("abs({d}) < ?"), seconds),
            };
            Some(Part::new(sql, vec![D::int(bound)]))
        }
        Operator::NotBetween(..) | Operator::DatePart { .. } | Operator::Apart { .. } => None,
        op => match choice_values(field, op) {
            Some(by_value) => D::predicate(&col, field, &by_value),
            None => D::predicate(&col, field, op),
        },
    }
}

/// ORed conditions; `None` when every one of them was dropped.
fn clause<D: Dialect>(catalog: &Catalog, schema: &TableSchema, clause: &Clause) -> Option<Part<D::Value>> {
    let parts: Vec<_> = clause.any_of.iter().filter_map(|c| condition::<D>(catalog, schema, c)).collect();
    join(parts, "OR")
}

/// ANDed clauses; `None` when nothing is left of them, i.e. the group matches every row.
fn group<D: Dialect>(catalog: &Catalog, schema: &TableSchema, group: &Group) -> Option<Part<D::Value>> {
    let parts: Vec<_> = group.clauses.iter().filter_map(|c| clause::<D>(catalog, schema, c)).collect();
    join(parts, "AND")
}

fn order<D: Dialect>(schema: &TableSchema, order_by: &[OrderBy]) -> String {
    let mut terms: Vec<String> = order_by
        .iter()
        .filter_map(|o| {
            let field = queryable(schema, &o.field)?;
            let key = D::order_key(&D::ident(&field.name), field);
            Some(format!("{key} {}", if o.descending { "DESC" } else { "ASC" }))
        })
        .collect();
    // Ties in the direction of the last term: `ORDER BY x DESC` is then one backward scan of an
    // index on x (which holds the insertion order after the key), not a sort of the ties.
    let last_descending =
        order_by.iter().rev().find(|o| queryable(schema, &o.field).is_some()).is_some_and(|o| o.descending);
    terms.push(if last_descending { format!("{} DESC", D::INSERTION_ORDER) } else { D::INSERTION_ORDER.to_owned() });
    format!(" ORDER BY {}", terms.join(", "))
}

/// The filter and ordering of `query` on `schema`; references are followed through `catalog`.
pub fn translate<D: Dialect>(catalog: &Catalog, schema: &TableSchema, query: &EncodedQuery) -> Filter<D::Value> {
    let order_sql = order::<D>(schema, &query.order_by);
    let mut groups = Vec::with_capacity(query.groups.len());
    for g in &query.groups {
        match group::<D>(catalog, schema, g) {
            Some(part) => groups.push(part),
            // One alternative matches every row, so the whole query does.
            None => return Filter { where_sql: String::new(), order_sql, params: Vec::new() },
        }
    }
    match join(groups, "OR") {
        Some(part) => Filter { where_sql: format!(" WHERE {}", part.sql), order_sql, params: part.params },
        None => Filter { where_sql: String::new(), order_sql, params: Vec::new() },
    }
}

/// `\`, `%` and `_` taken literally in a `LIKE ... ESCAPE '\'` pattern.
pub fn escape_like(v: &str) -> String {
    let mut out = String::with_capacity(v.len());
    for c in v.chars() {
        if matches!(c, '\\' | '%' | '_') {
            out.push('\\');
        }
        out.push(c);
    }
    out
}
