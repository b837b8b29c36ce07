//! The dialect-independent half of turning an [`EncodedQuery`] into SQL: which conditions a
//! table lets clients use, how `^OR`, `^` and `^NQ` nest (as balanced trees), dot-walking through
//! a reference, and the `ORDER BY` list. Each database supplies a [`Dialect`]: the SQL of one
//! operator on one column, how a column orders, how identifiers are written.
//!
//! Column and table names in the SQL come only from schemas (visible, stored fields; referenced
//! tables from the catalog), never from the request; every value is a bound parameter, one per
//! `?` placeholder, in order (a dialect with numbered placeholders renumbers them afterwards).
//! As ServiceNow does by default, a condition on a field the table does not have (or hides) is
//! dropped and the rest of the query runs.

use sluice_core::query::{Clause, Condition, EncodedQuery, Group, Operator, OrderBy};
use sluice_core::schema::{Field, FieldKind, TableSchema, is_identifier};
use sluice_core::tables::Catalog;

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
    fn predicate(col: &str, field: &Field, op: &Operator) -> Option<Part<Self::Value>>;
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
            D::predicate(&D::ident(&field.name), field, &condition.op)
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
            let inner = D::predicate(&format!("r.{}", D::ident(&field.name)), field, &condition.op)?;
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
    terms.push(D::INSERTION_ORDER.to_owned());
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
