//! The Aggregate API's question to the store ([`AggregateQuery`]: filter, groups, aggregates,
//! `HAVING`, order, limit) and its answer ([`AggregateRow`], values in ServiceNow's wire form),
//! plus the one rule of which fields each part may name ([`check`]), shared by the server (which
//! refuses a query that breaks it) and the SQL building (which never writes a name that fails it).

use sluice_core::query::EncodedQuery;
use sluice_core::schema::{Field, FieldKind, TableSchema};

use crate::query_sql::queryable;

/// An aggregate function, as `sysparm_<aggregate>_fields`, `sysparm_having` and
/// `sysparm_order_by` name it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Aggregate {
    Count,
    Avg,
    Min,
    Max,
    Sum,
}

impl Aggregate {
    /// Its name in any case (`count`, `AVG`).
    pub fn parse(name: &str) -> Option<Self> {
        match name.to_ascii_lowercase().as_str() {
            "count" => Some(Self::Count),
            "avg" => Some(Self::Avg),
            "min" => Some(Self::Min),
            "max" => Some(Self::Max),
            "sum" => Some(Self::Sum),
            _ => None,
        }
    }

    /// The lowercase name, as the answer's `stats` keys it.
    pub fn name(self) -> &'static str {
        match self {
            Self::Count => "count",
            Self::Avg => "avg",
            Self::Min => "min",
            Self::Max => "max",
            Self::Sum => "sum",
        }
    }

    /// Whether it needs numbers: an average or a sum of text means nothing.
    pub fn numeric(self) -> bool {
        matches!(self, Self::Avg | Self::Sum)
    }
}

/// A comparison of a `HAVING` condition.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Comparison {
    Eq,
    Ne,
    Lt,
    Le,
    Gt,
    Ge,
}

impl Comparison {
    pub fn parse(op: &str) -> Option<Self> {
        match op {
            "=" => Some(Self::Eq),
            "!=" | "<>" => Some(Self::Ne),
            "<" => Some(Self::Lt),
            "<=" => Some(Self::Le),
            ">" => Some(Self::Gt),
            ">=" => Some(Self::Ge),
            _ => None,
        }
    }

    pub fn sql(self) -> &'static str {
        match self {
            Self::Eq => "=",
            Self::Ne => "<>",
            Self::Lt => "<",
            Self::Le => "<=",
            Self::Gt => ">",
            Self::Ge => ">=",
        }
    }
}

/// `aggregate^field^operator^value` of `sysparm_having`: only groups whose aggregate compares
/// so. `count` counts the group's records whatever the field.
#[derive(Debug, Clone, PartialEq)]
pub struct Having {
    pub aggregate: Aggregate,
    pub field: String,
    pub op: Comparison,
    /// Finite (the caller parses it).
    pub value: f64,
}

/// One term ordering the groups.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum GroupOrder {
    /// A group-by field's value.
    Field { name: String, descending: bool },
    /// An aggregate of each group (`COUNT`, `AVG^priority`); `field` is `None` for `COUNT`.
    Aggregate { aggregate: Aggregate, field: Option<String>, descending: bool },
}

/// What to aggregate, over which records, grouped how.
#[derive(Debug, Clone, Default)]
pub struct AggregateQuery {
    /// The records (a parsed `sysparm_query`, conditions on unknown fields dropped as for lists);
    /// its `ORDERBY` terms order the groups when they name a group-by field.
    pub filter: EncodedQuery,
    /// Group-by fields, in order; empty: one row over every matching record.
    pub group_by: Vec<String>,
    /// Count each group's records.
    pub count: bool,
    pub avg: Vec<String>,
    pub min: Vec<String>,
    pub max: Vec<String>,
    pub sum: Vec<String>,
    /// Conditions on each group's aggregates, all of which must hold.
    pub having: Vec<Having>,
    /// `sysparm_order_by`, before the filter's `ORDERBY` terms; ties end in group-by order.
    pub order_by: Vec<GroupOrder>,
    /// At most this many groups.
    pub limit: u64,
}

impl AggregateQuery {
    /// The fields of one aggregate (`Count` has none).
    pub fn fields(&self, aggregate: Aggregate) -> &[String] {
        match aggregate {
            Aggregate::Count => &[],
            Aggregate::Avg => &self.avg,
            Aggregate::Min => &self.min,
            Aggregate::Max => &self.max,
            Aggregate::Sum => &self.sum,
        }
    }
}

/// One group (or, without group-by fields, every matching record): its group-by values and its
/// aggregates, each as ServiceNow writes them: strings, `""` for an empty value or an aggregate
/// over no values; averages with four decimals (`"2.5000"`).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct AggregateRow {
    /// The group-by fields' stored values, in the query's order.
    pub groups: Vec<String>,
    /// The number of records, when asked for.
    pub count: Option<String>,
    /// Per asked aggregate (never `Count`), (field, value) in the query's order.
    pub avg: Vec<(String, String)>,
    pub min: Vec<(String, String)>,
    pub max: Vec<(String, String)>,
    pub sum: Vec<(String, String)>,
}

/// Why a query cannot run: the parameter and field at fault.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{parameter}: {problem}")]
pub struct AggregateProblem {
    /// `sysparm_group_by`, `sysparm_avg_fields`, `sysparm_having`, `sysparm_order_by`...
    pub parameter: &'static str,
    pub field: String,
    pub problem: String,
}

/// A field the query may group by or take the minimum or maximum of: what a list query may
/// filter on (visible, stored, an identifier).
pub fn groupable<'a>(schema: &'a TableSchema, name: &str) -> Option<&'a Field> {
    queryable(schema, name)
}

/// A field `aggregate` may be taken of: any groupable field for `min`/`max`, integer fields for
/// `avg`/`sum`; `count` counts records, so any groupable field may be named with it.
pub fn aggregatable<'a>(schema: &'a TableSchema, aggregate: Aggregate, name: &str) -> Option<&'a Field> {
    groupable(schema, name).filter(|f| !aggregate.numeric() || f.kind == FieldKind::Integer)
}

/// Why `name` cannot be used with `aggregate` on `schema` (`None`: it can).
fn refusal(schema: &TableSchema, aggregate: Option<Aggregate>, name: &str) -> Option<String> {
    let Some(field) = groupable(schema, name) else {
        return Some(format!("{} has no field {name:?} that can be aggregated", schema.name));
    };
    match aggregate {
        Some(a) if a.numeric() && field.kind != FieldKind::Integer => {
            Some(format!("{}({name}) needs a number field; {name} is not one", a.name()))
        }
        // `HAVING` compares with numbers: a minimum or maximum of text cannot be.
        _ => None,
    }
}

/// The query names only fields its table lets each part use: group-by and `min`/`max` fields
/// are visible stored fields, `avg`/`sum` fields integer ones, `HAVING` compares aggregates of
/// integer fields (or counts), and `sysparm_order_by` fields are group-by fields. The first
/// problem found, in parameter order.
pub fn check(schema: &TableSchema, query: &AggregateQuery) -> Result<(), AggregateProblem> {
    let fail = |parameter, field: &str, problem| Err(AggregateProblem { parameter, field: field.to_owned(), problem });
    for name in &query.group_by {
        if let Some(problem) = refusal(schema, None, name) {
            return fail("sysparm_group_by", name, problem);
        }
    }
    let lists = [
        (Aggregate::Avg, "sysparm_avg_fields"),
        (Aggregate::Min, "sysparm_min_fields"),
        (Aggregate::Max, "sysparm_max_fields"),
        (Aggregate::Sum, "sysparm_sum_fields"),
    ];
    for (aggregate, parameter) in lists {
        for name in query.fields(aggregate) {
            if let Some(problem) = refusal(schema, Some(aggregate), name) {
                return fail(parameter, name, problem);
            }
        }
    }
    for h in &query.having {
        if let Some(problem) = refusal(schema, Some(h.aggregate), &h.field) {
            return fail("sysparm_having", &h.field, problem);
        }
        let field = groupable(schema, &h.field).map(|f| &f.kind);
        if matches!(h.aggregate, Aggregate::Min | Aggregate::Max) && field != Some(&FieldKind::Integer) {
            let problem = format!(
                "{}({}) compares with a number; {} is not a number field",
                h.aggregate.name(),
                h.field,
                h.field
            );
            return fail("sysparm_having", &h.field, problem);
        }
    }
    for o in &query.order_by {
        match o {
            GroupOrder::Field { name, .. } if !query.group_by.contains(name) => {
                let problem = format!(
                    "groups can be ordered by their group-by fields or an aggregate; {name} is not in sysparm_group_by"
                );
                return fail("sysparm_order_by", name, problem);
            }
            GroupOrder::Aggregate { aggregate, field: Some(name), .. } => {
                if let Some(problem) = refusal(schema, Some(*aggregate), name) {
                    return fail("sysparm_order_by", name, problem);
                }
            }
            _ => {}
        }
    }
    Ok(())
}
