//! Encoded queries to PostgreSQL SQL: the PostgreSQL [`Dialect`] of the shared translation in
//! `query_sql.rs`, with the same meaning as SQLite's (see `sqlite/query.rs`).
//!
//! Text columns are declared `COLLATE "C"`: comparisons and ordering are by bytes (code points),
//! and `lower()` folds ASCII only, exactly as SQLite's NOCASE. Values are folded in Rust, so
//! `lower(col) = $1` can use the `lower(col)` indexes. Integer fields are `BIGINT`, NULL when
//! empty. PostgreSQL text cannot hold NUL, so no stored value contains one: a value with a NUL is
//! decided here instead of being bound (nothing equals it; it orders right after its prefix).

use sluice_core::query::{DatePart, EncodedQuery, Operator};
use sluice_core::schema::{Field, FieldKind, TableSchema};
use sluice_core::tables::Catalog;

use sluice_store::query_sql::{self, Dialect, escape_like};

/// A bound value.
#[derive(Debug, Clone, PartialEq)]
pub enum PgValue {
    Text(String),
    Int(i64),
    Real(f64),
}

pub type Filter = query_sql::Filter<PgValue>;
type Part = query_sql::Part<PgValue>;

pub struct Postgres;

/// A quoted identifier (names passed `is_identifier`; quoting keeps words such as `user` usable).
pub fn ident(name: &str) -> String {
    format!("\"{name}\"")
}

impl Dialect for Postgres {
    type Value = PgValue;
    const TRUE: &'static str = "TRUE";
    const INSERTION_ORDER: &'static str = "sluice_rowid";

    fn ident(name: &str) -> String {
        ident(name)
    }

    fn predicate(col: &str, field: &Field, op: &Operator) -> Option<Part> {
        if field.kind == FieldKind::Integer {
            return number(col, op);
        }
        let key = matches!(field.kind, FieldKind::Reference(_)) || query_sql::stored_lowercase(field);
        // sys_ids are stored lowercase: comparing them as they are keeps the primary key usable.
        let folded = if key { col.to_owned() } else { format!("lower({col})") };
        Some(text(&folded, &format!("{col} <> ''"), &format!("{col} = ''"), op))
    }

    fn order_key(col: &str, field: &Field) -> String {
        let key =
            matches!(field.kind, FieldKind::Reference(_) | FieldKind::Integer) || query_sql::stored_lowercase(field);
        if key { col.to_owned() } else { format!("lower({col})") }
    }

    fn nonempty(col: &str, field: &Field) -> String {
        if field.kind == FieldKind::Integer { format!("{col} IS NOT NULL") } else { format!("{col} <> ''") }
    }

    fn comparable(col: &str, field: &Field) -> String {
        Self::order_key(col, field)
    }

    fn date_part(col: &str, part: DatePart) -> String {
        let t = format!("{col}::timestamp");
        let expr = match part {
            DatePart::DayOfWeek => format!("extract(isodow from {t})::int"),
            DatePart::DayOfMonth => format!("extract(day from {t})::int"),
            // SQLite's %W: weeks from Monday, 0 before the year's first Monday.
            DatePart::Week => format!("((extract(doy from {t})::int + 7 - extract(isodow from {t})::int) / 7)"),
            DatePart::Month => format!("extract(month from {t})::int"),
            DatePart::Quarter => format!("extract(quarter from {t})::int"),
            DatePart::Year => format!("extract(year from {t})::int"),
            DatePart::Hour => format!("extract(hour from {t})::int"),
        };
        // CASE, not AND: only CASE promises that the cast never sees an empty value.
        format!("(CASE WHEN {col} <> '' THEN {expr} END)")
    }

    fn epoch(col: &str) -> String {
        format!("(CASE WHEN {col} <> '' THEN extract(epoch from {col}::timestamp)::bigint END)")
    }

    fn text(v: &str) -> PgValue {
        PgValue::Text(v.to_owned())
    }

    fn int(v: i64) -> PgValue {
        PgValue::Int(v)
    }
}

/// The filter and ordering of `query` on `schema`, with `$1`, `$2`... placeholders.
pub fn translate(catalog: &Catalog, schema: &TableSchema, query: &EncodedQuery) -> Filter {
    let mut filter = query_sql::translate::<Postgres>(catalog, schema, query);
    filter.where_sql = number_placeholders(&filter.where_sql, 1);
    filter
}

/// `?` placeholders as `$start`, `$start+1`... (the dialect writes no `?` of its own).
pub fn number_placeholders(sql: &str, start: usize) -> String {
    let mut out = String::with_capacity(sql.len() + sql.len() / 4);
    let mut n = start;
    for c in sql.chars() {
        if c == '?' {
            out.push_str(&format!("${n}"));
            n += 1;
        } else {
            out.push(c);
        }
    }
    out
}

fn fold(v: &str) -> PgValue {
    PgValue::Text(v.to_ascii_lowercase())
}

/// The part of a value before its first NUL, when it has one.
fn before_nul(v: &str) -> Option<&str> {
    v.find('\0').map(|at| &v[..at])
}

/// A bound on the folded column: `< v` and `<= v` for a `v` with a NUL at `k` mean `<= v[..k]`
/// (no stored value has a NUL), `> v` and `>= v` mean `> v[..k]`.
fn bound(sign: &str, v: &str) -> (String, PgValue) {
    match before_nul(v) {
        None => (sign.to_owned(), fold(v)),
        Some(prefix) => ((if sign.starts_with('<') { "<=" } else { ">" }).to_owned(), fold(prefix)),
    }
}

/// Text and keys: `folded` is the column as compared (lowercased or not), `nonempty`/`empty`
/// test for ServiceNow's NULL.
fn text(folded: &str, nonempty: &str, empty: &str, op: &Operator) -> Part {
    let list = |n: usize| vec!["?"; n].join(", ");
    let usable = |vs: &[String]| vs.iter().filter(|v| !v.contains('\0')).map(|v| fold(v)).collect::<Vec<_>>();
    match op {
        Operator::Eq(v) if v.contains('\0') => Part::fixed("FALSE"),
        Operator::Ne(v) if v.contains('\0') => Part::fixed("TRUE"),
        Operator::Eq(v) => Part::new(format!("{folded} = ?"), vec![fold(v)]),
        Operator::Ne(v) => Part::new(format!("{folded} <> ?"), vec![fold(v)]),
        Operator::Like(v) => like(folded, "", "%", v, "%"),
        Operator::NotLike(v) => like(folded, "NOT ", "%", v, "%"),
        Operator::StartsWith(v) => like(folded, "", "", v, "%"),
        Operator::EndsWith(v) => like(folded, "", "%", v, ""),
        Operator::In(vs) => match usable(vs) {
            values if values.is_empty() => Part::fixed("FALSE"),
            values => Part::new(format!("{folded} IN ({})", list(values.len())), values),
        },
        Operator::NotIn(vs) => match usable(vs) {
            values if values.is_empty() => Part::fixed("TRUE"),
            values => Part::new(format!("{folded} NOT IN ({})", list(values.len())), values),
        },
        Operator::IsEmpty | Operator::EmptyString => Part::fixed(empty),
        Operator::IsNotEmpty => Part::fixed(nonempty),
        Operator::Anything => Part::fixed("TRUE"),
        Operator::Lt(v) | Operator::Le(v) | Operator::Gt(v) | Operator::Ge(v) => {
            let sign = match op {
                Operator::Lt(_) => "<",
                Operator::Le(_) => "<=",
                Operator::Gt(_) => ">",
                _ => ">=",
            };
            let (sign, value) = bound(sign, v);
            Part::new(format!("({nonempty} AND {folded} {sign} ?)"), vec![value])
        }
        Operator::Between(low, high) => {
            let (low_sign, low) = bound(">=", low);
            let (high_sign, high) = bound("<=", high);
            Part::new(format!("({nonempty} AND {folded} {low_sign} ? AND {folded} {high_sign} ?)"), vec![low, high])
        }
        // Written by the shared translation; never reaches a dialect.
        Operator::NotBetween(..) | Operator::DatePart { .. } | Operator::Field { .. } | Operator::Apart { .. } => {
            Part::fixed("FALSE")
        }
    }
}

/// Contains / prefix / suffix, the value taken literally; nothing contains a NUL.
fn like(folded: &str, not: &str, before: &str, v: &str, after: &str) -> Part {
    if v.contains('\0') {
        return Part::fixed(if not.is_empty() { "FALSE" } else { "TRUE" });
    }
    let pattern = format!("{before}{}{after}", escape_like(&v.to_ascii_lowercase()));
    Part::new(format!("{folded} {not}LIKE ? ESCAPE '\\'"), vec![PgValue::Text(pattern)])
}

/// A value as a number, as SQLite's INTEGER affinity reads it; `None` when it is not one.
fn numeric(v: &str) -> Option<PgValue> {
    let v = v.trim();
    if let Ok(i) = v.parse::<i64>() {
        return Some(PgValue::Int(i));
    }
    v.parse::<f64>().ok().filter(|f| f.is_finite()).map(PgValue::Real)
}

/// Integer fields (NULL when empty): equality with a value that is not a number matches nothing
/// (an empty value matches the empty rows), ordering with one is invalid (dropped), and text
/// operators see the number as text.
fn number(col: &str, op: &Operator) -> Option<Part> {
    let as_text = format!("COALESCE({col}::text, '')");
    let (nonempty, empty) = (format!("{col} IS NOT NULL"), format!("{col} IS NULL"));
    let part = match op {
        Operator::Eq(v) if v.trim().is_empty() => Part::fixed(&empty),
        Operator::Ne(v) if v.trim().is_empty() => Part::fixed(&nonempty),
        Operator::Eq(v) => match numeric(v) {
            Some(n) => Part::new(format!("{col} = ?"), vec![n]),
            None => Part::fixed("FALSE"),
        },
        Operator::Ne(v) => match numeric(v) {
            Some(n) => Part::new(format!("({empty} OR {col} <> ?)"), vec![n]),
            None => Part::fixed("TRUE"),
        },
        Operator::In(vs) | Operator::NotIn(vs) => {
            let numbers: Vec<PgValue> = vs.iter().filter_map(|v| numeric(v)).collect();
            let has_empty = vs.iter().any(|v| v.trim().is_empty());
            let list = vec!["?"; numbers.len()].join(", ");
            let negated = matches!(op, Operator::NotIn(_));
            match (negated, numbers.is_empty(), has_empty) {
                (false, true, false) => Part::fixed("FALSE"),
                (false, true, true) => Part::fixed(&empty),
                (false, false, false) => Part::new(format!("{col} IN ({list})"), numbers),
                (false, false, true) => Part::new(format!("({empty} OR {col} IN ({list}))"), numbers),
                (true, true, false) => Part::fixed("TRUE"),
                (true, true, true) => Part::fixed(&nonempty),
                (true, false, false) => Part::new(format!("({empty} OR {col} NOT IN ({list}))"), numbers),
                (true, false, true) => Part::new(format!("{col} NOT IN ({list})"), numbers),
            }
        }
        Operator::IsEmpty | Operator::EmptyString => Part::fixed(&empty),
        Operator::IsNotEmpty => Part::fixed(&nonempty),
        Operator::Anything => Part::fixed("TRUE"),
        Operator::Like(_) | Operator::NotLike(_) | Operator::StartsWith(_) | Operator::EndsWith(_) => {
            text(&as_text, &nonempty, &empty, op)
        }
        Operator::Lt(v) | Operator::Le(v) | Operator::Gt(v) | Operator::Ge(v) => {
            let sign = match op {
                Operator::Lt(_) => "<",
                Operator::Le(_) => "<=",
                Operator::Gt(_) => ">",
                _ => ">=",
            };
            Part::new(format!("{col} {sign} ?"), vec![numeric(v)?])
        }
        Operator::Between(low, high) => {
            Part::new(format!("{col} BETWEEN ? AND ?"), vec![numeric(low)?, numeric(high)?])
        }
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

    #[test]
    fn shapes() {
        let f = sql("number=INC1^ORnumber=INC2^impact<3^ORDERBYDESCpriority^ORDERBYnumber");
        assert_eq!(f.where_sql, " WHERE ((lower(\"number\") = $1 OR lower(\"number\") = $2) AND \"impact\" < $3)");
        assert_eq!(f.params, vec![fold("INC1"), fold("INC2"), PgValue::Int(3)]);
        assert_eq!(f.order_sql, " ORDER BY \"priority\" DESC, lower(\"number\") ASC, sluice_rowid");
        let f = sql("caller_id.user_name=bob^NQshort_descriptionLIKE50%_\\");
        assert_eq!(
            f.where_sql,
            " WHERE (\"caller_id\" IN (SELECT r.\"sys_id\" FROM \"sys_user\" AS r WHERE lower(r.\"user_name\") = $1) \
             OR lower(\"short_description\") LIKE $2 ESCAPE '\\')"
        );
    }

    #[test]
    fn dates_fields_and_choice_labels() {
        let f = sql("opened_atDATEPARTx@javascript:gs.datePart('week','3','EE')^short_descriptionSAMEASdescription");
        assert_eq!(
            f.where_sql,
            " WHERE ((CASE WHEN \"opened_at\" <> '' THEN ((extract(doy from \"opened_at\"::timestamp)::int + 7 \
             - extract(isodow from \"opened_at\"::timestamp)::int) / 7) END) = $1 AND (\"short_description\" <> '' \
             AND \"description\" <> '' AND lower(\"short_description\") = lower(\"description\")))"
        );
        assert_eq!(f.params, vec![PgValue::Int(3)]);
        let f = sql("opened_atLESSTHANsys_created_on@day@after@1");
        let d = "((CASE WHEN \"opened_at\" <> '' THEN extract(epoch from \"opened_at\"::timestamp)::bigint END) \
                 - (CASE WHEN \"sys_created_on\" <> '' THEN extract(epoch from \"sys_created_on\"::timestamp)::bigint END))";
        assert_eq!(f.where_sql, format!(" WHERE ({d} >= 0 AND {d} < $1)"));
        assert_eq!(f.params, vec![PgValue::Int(86_400)]);
        let f = sql("state=resolved^impactSAMEASurgency");
        assert_eq!(
            f.where_sql,
            " WHERE (\"state\" = $1 AND (\"impact\" IS NOT NULL AND \"urgency\" IS NOT NULL AND \"impact\" = \"urgency\"))"
        );
        assert_eq!(f.params, vec![PgValue::Int(6)]);
    }

    #[test]
    fn nul_values_are_decided_without_binding() {
        assert_eq!(sql("short_description=a\0b").where_sql, " WHERE FALSE");
        assert_eq!(sql("short_description!=a\0b").where_sql, " WHERE TRUE");
        let f = sql("short_description<disk\0");
        assert_eq!(f.where_sql, " WHERE (\"short_description\" <> '' AND lower(\"short_description\") <= $1)");
        assert_eq!(f.params, vec![fold("disk")]);
    }
}
