//! The dialect-independent half of an [`AggregateQuery`] in SQL: one `SELECT ... GROUP BY ...
//! HAVING ... ORDER BY ... LIMIT ?` over the filter's `WHERE` (from [`query_sql::translate`]),
//! and the answer's rows read back from its cells ([`row`]). Each database adds the few pieces
//! that differ ([`AggregateDialect`]).
//!
//! Both databases must answer alike, so nothing is left to a database's own arithmetic:
//! - Empty values are ServiceNow's NULL: integer columns read as NULL when empty (SQLite keeps
//!   `''` in them), text columns as `''` (and `NULL` as `''`), and `min`/`max` skip empty text.
//! - Groups are exact values (byte for byte); text groups order ignoring ASCII case, then by the
//!   exact value; empty values first (last when descending); ties end in group-by order.
//! - Sums are exact whatever their size: each integer is split into its high and low 32 bits,
//!   summed apart (neither sum can overflow 64 bits) and joined in 128 bits; averages are that
//!   sum divided by the count of values, rounded half away from zero to four decimals, as
//!   ServiceNow writes them (`"1.5000"`). `HAVING` and ordering by an average or a sum compare
//!   the same sums as floating-point numbers, the same operations on both databases.
//!
//! Names in the SQL come only from the schema (fields [`check`]ed first, written with
//! [`Dialect::ident`]); every value is a bound parameter (`?`, renumbered by dialects that number
//! them).

use sluice_core::schema::{Field, FieldKind, TableSchema};
use sluice_core::tables::Catalog;

use crate::aggregate::{
    Aggregate, AggregateProblem, AggregateQuery, AggregateRow, GroupOrder, aggregatable, check, groupable,
};
use crate::query_sql::{self, Dialect};

/// What differs between databases beyond [`Dialect`].
pub trait AggregateDialect: Dialect {
    /// An integer column's value, NULL when empty.
    fn number_column(col: &str) -> String;
    /// A text column's value, `''` when NULL, compared byte by byte.
    fn text_column(col: &str) -> String;
    /// `SUM` of integers, as a 64-bit integer (the sums here cannot overflow it).
    fn int_sum(expr: &str) -> String;
    /// A number as a double-precision float.
    fn real(expr: &str) -> String;
    fn real_value(v: f64) -> Self::Value;
}

/// What one selected column holds, for the backend to read it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Output {
    Int,
    Text,
}

/// One selected value as read back.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Cell {
    Null,
    Int(i64),
    Text(String),
}

/// The statement, its values (one per `?`, in order) and what each selected column holds.
#[derive(Debug)]
pub struct Statement<V> {
    pub sql: String,
    pub params: Vec<V>,
    pub outputs: Vec<Output>,
}

const LOW_BITS: &str = "4294967295";
const HIGH_FACTOR: &str = "4294967296.0";

/// A field's value as grouped, selected and compared.
fn value<D: AggregateDialect>(field: &Field) -> (String, Output) {
    let col = D::ident(&field.name);
    if field.kind == FieldKind::Integer {
        (D::number_column(&col), Output::Int)
    } else {
        (D::text_column(&col), Output::Text)
    }
}

/// A field's value for `min`/`max`: empty text is no value.
fn extreme_value<D: AggregateDialect>(field: &Field) -> (String, Output) {
    match value::<D>(field) {
        (v, Output::Text) => (format!("NULLIF({v}, '')"), Output::Text),
        int => int,
    }
}

/// The two exact halves of a field's sum and the count of its values.
fn sum_parts<D: AggregateDialect>(field: &Field) -> [String; 3] {
    let (n, _) = value::<D>(field);
    [D::int_sum(&format!("(({n}) >> 32)")), D::int_sum(&format!("(({n}) & {LOW_BITS})")), format!("COUNT({n})")]
}

/// An aggregate of a group as a number to compare and order by (float for `avg` and `sum`).
fn measure<D: AggregateDialect>(schema: &TableSchema, aggregate: Aggregate, field: Option<&str>) -> Option<String> {
    if aggregate == Aggregate::Count {
        return Some("COUNT(*)".into());
    }
    let field = aggregatable(schema, aggregate, field?)?;
    let [high, low, count] = sum_parts::<D>(field);
    let sum = format!("({} * {HIGH_FACTOR} + {})", D::real(&high), D::real(&low));
    Some(match aggregate {
        Aggregate::Sum => sum,
        Aggregate::Avg => format!("({sum} / NULLIF({count}, 0))"),
        Aggregate::Min => format!("MIN({})", extreme_value::<D>(field).0),
        _ => format!("MAX({})", extreme_value::<D>(field).0),
    })
}

fn direction(descending: bool) -> &'static str {
    // Empty values are the smallest: first going up, last going down (as on both databases).
    if descending { "DESC NULLS LAST" } else { "ASC NULLS FIRST" }
}

/// The order of a group-by field's groups: text ignoring case, then exact.
fn group_order<D: AggregateDialect>(field: &Field, descending: bool) -> Vec<String> {
    let (v, output) = value::<D>(field);
    let key = D::order_key(&v, field);
    let mut terms = vec![format!("{key} {}", direction(descending))];
    if output == Output::Text && key != v {
        terms.push(format!("{v} {}", direction(descending)));
    }
    terms
}

/// The numeric fields whose sums are selected (for `avg` or `sum`), each once, in query order.
fn summed<'a>(schema: &'a TableSchema, query: &AggregateQuery) -> Vec<&'a Field> {
    let mut fields: Vec<&Field> = Vec::new();
    for name in query.avg.iter().chain(&query.sum) {
        if let Some(f) = aggregatable(schema, Aggregate::Sum, name)
            && !fields.iter().any(|g| g.name == f.name)
        {
            fields.push(f);
        }
    }
    fields
}

/// The statement answering `query` on `schema` (references in the filter followed through
/// `catalog`); refused when the query names a field it may not ([`check`]).
pub fn statement<D: AggregateDialect>(
    catalog: &Catalog,
    schema: &TableSchema,
    query: &AggregateQuery,
) -> Result<Statement<D::Value>, AggregateProblem> {
    check(schema, query)?;
    let field = |name: &str| groupable(schema, name).expect("checked");
    let filter = query_sql::translate::<D>(catalog, schema, &query.filter);
    let mut params = filter.params;
    let (mut select, mut outputs) = (Vec::new(), Vec::new());
    let mut grouped = Vec::new();
    for name in &query.group_by {
        let (v, output) = value::<D>(field(name));
        grouped.push(v.clone());
        select.push(v);
        outputs.push(output);
    }
    if query.count {
        select.push("COUNT(*)".into());
        outputs.push(Output::Int);
    }
    for f in summed(schema, query) {
        select.extend(sum_parts::<D>(f));
        outputs.extend([Output::Int; 3]);
    }
    for (aggregate, function) in [(Aggregate::Min, "MIN"), (Aggregate::Max, "MAX")] {
        for name in query.fields(aggregate) {
            let (v, output) = extreme_value::<D>(field(name));
            select.push(format!("{function}({v})"));
            outputs.push(output);
        }
    }
    if select.is_empty() {
        // Nothing asked: one row per group (or one row) with no values.
        select.push("COUNT(*)".into());
        outputs.push(Output::Int);
    }
    let mut sql = format!("SELECT {} FROM {}{}", select.join(", "), D::ident(&schema.name), filter.where_sql);
    if !grouped.is_empty() {
        sql.push_str(&format!(" GROUP BY {}", grouped.join(", ")));
    }
    let mut having = Vec::new();
    for h in &query.having {
        let measured = measure::<D>(schema, h.aggregate, Some(&h.field)).expect("checked");
        having.push(format!("{measured} {} ?", h.op.sql()));
        params.push(D::real_value(h.value));
    }
    if !having.is_empty() {
        sql.push_str(&format!(" HAVING {}", having.join(" AND ")));
    }
    if !query.group_by.is_empty() {
        sql.push_str(&format!(" ORDER BY {}", order::<D>(schema, query).join(", ")));
    }
    sql.push_str(" LIMIT ?");
    params.push(D::int(i64::try_from(query.limit).unwrap_or(i64::MAX)));
    Ok(Statement { sql, params, outputs })
}

/// `sysparm_order_by`, then the filter's `ORDERBY` terms on group-by fields, then every group-by
/// field going up.
fn order<D: AggregateDialect>(schema: &TableSchema, query: &AggregateQuery) -> Vec<String> {
    let field = |name: &str| groupable(schema, name).expect("checked");
    let mut terms = Vec::new();
    for o in &query.order_by {
        match o {
            GroupOrder::Field { name, descending } => terms.extend(group_order::<D>(field(name), *descending)),
            GroupOrder::Aggregate { aggregate, field, descending } => {
                let measured = measure::<D>(schema, *aggregate, field.as_deref()).expect("checked");
                terms.push(format!("{measured} {}", direction(*descending)));
            }
        }
    }
    for o in query.filter.order_by.iter().filter(|o| query.group_by.contains(&o.field)) {
        terms.extend(group_order::<D>(field(&o.field), o.descending));
    }
    for name in &query.group_by {
        terms.extend(group_order::<D>(field(name), false));
    }
    terms
}

/// A value as ServiceNow writes it: the text, `""` for none.
fn wire(cell: Cell) -> String {
    match cell {
        Cell::Null => String::new(),
        Cell::Int(i) => i.to_string(),
        Cell::Text(t) => t,
    }
}

fn int(cell: &Cell) -> i64 {
    match cell {
        Cell::Int(i) => *i,
        _ => 0,
    }
}

/// `sum / count` rounded half away from zero to four decimals (`count` > 0).
pub fn average(sum: i128, count: i128) -> String {
    let scaled = sum * 10_000;
    let (quotient, remainder) = (scaled / count, scaled % count);
    let rounded = if remainder.abs() * 2 >= count { quotient + scaled.signum() } else { quotient };
    let sign = if rounded < 0 { "-" } else { "" };
    let magnitude = rounded.unsigned_abs();
    format!("{sign}{}.{:04}", magnitude / 10_000, magnitude % 10_000)
}

/// One row of the answer from the cells of one row of [`statement`]'s result, in its order.
pub fn row(schema: &TableSchema, query: &AggregateQuery, cells: Vec<Cell>) -> AggregateRow {
    let mut cells = cells.into_iter();
    let mut next = || cells.next().unwrap_or(Cell::Null);
    let mut out = AggregateRow { groups: query.group_by.iter().map(|_| wire(next())).collect(), ..Default::default() };
    if query.count {
        out.count = Some(wire(next()));
    }
    let mut sums = Vec::new();
    for f in summed(schema, query) {
        let (high, low, count) = (next(), next(), int(&next()));
        let sum = i128::from(int(&high)) * (1 << 32) + i128::from(int(&low));
        sums.push((f.name.as_str(), sum, count));
    }
    let total = |name: &str| sums.iter().find(|(n, ..)| *n == name).map(|&(_, s, c)| (s, c));
    for name in &query.avg {
        let avg = match total(name) {
            Some((sum, count)) if count > 0 => average(sum, i128::from(count)),
            _ => String::new(),
        };
        out.avg.push((name.clone(), avg));
    }
    for name in &query.sum {
        let sum = match total(name) {
            Some((sum, count)) if count > 0 => sum.to_string(),
            _ => String::new(),
        };
        out.sum.push((name.clone(), sum));
    }
    out.min = query.min.iter().map(|name| (name.clone(), wire(next()))).collect();
    out.max = query.max.iter().map(|name| (name.clone(), wire(next()))).collect();
    out
}

#[cfg(test)]
mod tests {
    use super::average;

    #[test]
    fn averages_have_four_decimals_rounded_half_away_from_zero() {
        assert_eq!(average(5, 2), "2.5000");
        assert_eq!(average(2, 3), "0.6667");
        assert_eq!(average(1, 3), "0.3333");
        assert_eq!(average(-2, 3), "-0.6667");
        assert_eq!(average(-1, 20_000), "-0.0001");
        assert_eq!(average(-1, 30_000), "0.0000");
        assert_eq!(average(1, 20_000), "0.0001");
        assert_eq!(average(7, 1), "7.0000");
        let big = i128::from(i64::MAX) * 2;
        assert_eq!(average(big, 2), format!("{}.0000", i64::MAX));
    }
}
