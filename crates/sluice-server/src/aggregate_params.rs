//! Aggregate API query parameters (`GET /api/now/stats/{table}`), parsed once into a
//! [`sluice_store::AggregateQuery`]: lists split on commas, `sysparm_having` terms
//! (`aggregate^field^operator^value`) and `sysparm_order_by` terms (`field`, `COUNT`,
//! `AVG^field`, each optionally `^DESC`) read into typed values. Syntax is checked here
//! (`invalid_parameter`); which fields the table lets each part name is the store's rule
//! (`sluice_store::aggregate::check`, `invalid_aggregate`). As for the Table API, an empty
//! parameter means absent and booleans ignore case.

use sluice_core::query;
use sluice_core::schema::TableSchema;
use sluice_store::AggregateQuery;
use sluice_store::aggregate::{Aggregate, Comparison, GroupOrder, Having};

use crate::error::ApiError;
use crate::params::{DisplayMode, paging, truthy};

/// Groups answered when `sysparm_limit` does not say; also the most a request may ask for.
pub const MAX_GROUPS: u64 = 10_000;
/// Most group-by fields, fields per aggregate list, `HAVING` terms and ordering terms.
pub const MAX_TERMS: usize = 20;

#[derive(Debug, Clone)]
pub struct AggregateParams {
    pub query: AggregateQuery,
    /// How group-by values are answered (`sysparm_display_value`).
    pub display: DisplayMode,
}

fn invalid(detail: String) -> ApiError {
    ApiError::InvalidParameter(detail)
}

/// A comma list: items trimmed, empty ones dropped, repeats dropped, at most [`MAX_TERMS`].
fn list(key: &str, value: &str) -> Result<Vec<String>, ApiError> {
    let mut items: Vec<String> = Vec::new();
    for item in value.split(',').map(str::trim).filter(|s| !s.is_empty()) {
        if !items.iter().any(|i| i == item) {
            items.push(item.to_owned());
        }
    }
    if items.len() > MAX_TERMS {
        return Err(invalid(format!("{key} names {} items; at most {MAX_TERMS}", items.len())));
    }
    Ok(items)
}

/// `aggregate^field^operator^value`, e.g. `count^priority^>^3`.
fn having(term: &str) -> Result<Having, ApiError> {
    let wrong = |why: &str| invalid(format!("sysparm_having term {term:?}: {why} (aggregate^field^operator^value)"));
    let parts: Vec<&str> = term.split('^').map(str::trim).collect();
    let [aggregate, field, op, value] = parts[..] else { return Err(wrong("not four parts")) };
    let aggregate =
        Aggregate::parse(aggregate).ok_or_else(|| wrong("the aggregate is not count, avg, min, max or sum"))?;
    let op = Comparison::parse(op).ok_or_else(|| wrong("the operator is not =, !=, <, <=, > or >="))?;
    let value =
        value.parse::<f64>().ok().filter(|v| v.is_finite()).ok_or_else(|| wrong("the value is not a number"))?;
    Ok(Having { aggregate, field: field.to_owned(), op, value })
}

/// `field`, `COUNT`, `AVG^field` (`MIN`, `MAX`, `SUM` likewise), each optionally `^DESC` or `^ASC`.
fn order(term: &str) -> Result<GroupOrder, ApiError> {
    let wrong = |why: &str| invalid(format!("sysparm_order_by term {term:?}: {why}"));
    let mut parts: Vec<&str> = term.split('^').map(str::trim).collect();
    let descending = match parts.last().map(|p| p.to_ascii_uppercase()) {
        Some(d) if d == "DESC" || d == "ASC" => {
            parts.pop();
            d == "DESC"
        }
        _ => false,
    };
    match (parts.first().and_then(|p| Aggregate::parse(p)), &parts[..]) {
        (Some(Aggregate::Count), [_]) => {
            Ok(GroupOrder::Aggregate { aggregate: Aggregate::Count, field: None, descending })
        }
        (Some(aggregate), [_, field]) if !field.is_empty() => {
            Ok(GroupOrder::Aggregate { aggregate, field: Some((*field).to_owned()), descending })
        }
        (Some(_), _) => Err(wrong("an aggregate other than COUNT names one field: AVG^priority")),
        (None, [name]) if !name.is_empty() => Ok(GroupOrder::Field { name: (*name).to_owned(), descending }),
        (None, _) => Err(wrong("a group-by field or an aggregate, then optionally ^DESC")),
    }
}

impl AggregateParams {
    /// The parameters on `schema`: plain `field=value` parameters AND into the encoded query
    /// (unknown fields ignored, as for the Table API).
    pub fn parse(schema: &TableSchema, pairs: &[(String, String)]) -> Result<Self, ApiError> {
        let mut q = AggregateQuery { limit: MAX_GROUPS, ..Default::default() };
        let mut display = DisplayMode::Value;
        let mut filters = Vec::new();
        let mut text = None;
        for (key, value) in pairs {
            if value.is_empty() {
                continue;
            }
            match key.as_str() {
                "sysparm_query" => text = Some(value.as_str()),
                "sysparm_count" => q.count = truthy(value),
                "sysparm_group_by" => q.group_by = list(key, value)?,
                "sysparm_avg_fields" => q.avg = list(key, value)?,
                "sysparm_min_fields" => q.min = list(key, value)?,
                "sysparm_max_fields" => q.max = list(key, value)?,
                "sysparm_sum_fields" => q.sum = list(key, value)?,
                "sysparm_having" => q.having = list(key, value)?.iter().map(|t| having(t)).collect::<Result<_, _>>()?,
                // ServiceNow documents `sysparm_order_by`; `sysparm_orderby` is the Table API's spelling.
                "sysparm_order_by" | "sysparm_orderby" => {
                    q.order_by = list(key, value)?.iter().map(|t| order(t)).collect::<Result<_, _>>()?
                }
                "sysparm_display_value" => {
                    display = match value.to_ascii_lowercase().as_str() {
                        "true" => DisplayMode::Display,
                        "all" => DisplayMode::All,
                        _ => DisplayMode::Value,
                    }
                }
                "sysparm_limit" => q.limit = paging(key, value)?.min(MAX_GROUPS),
                k if k.starts_with("sysparm_") => {}
                k => filters.push((k, value.as_str())),
            }
        }
        q.filter = query::parse(text.unwrap_or_default(), sluice_core::DateTime::now())?;
        for (k, v) in filters {
            if schema.visible_field(k).is_some() {
                q.filter.and_equals(k, v);
            }
        }
        Ok(Self { query: q, display })
    }
}

#[cfg(test)]
mod tests {
    use sluice_core::tables;

    use super::*;

    fn parse(list: &[(&str, &str)]) -> Result<AggregateParams, ApiError> {
        let pairs: Vec<(String, String)> = list.iter().map(|(k, v)| ((*k).to_owned(), (*v).to_owned())).collect();
        AggregateParams::parse(&tables::incident(), &pairs)
    }

    #[test]
    fn lists_terms_and_defaults() {
        let p = parse(&[
            ("sysparm_count", "TRUE"),
            ("sysparm_group_by", " category, priority ,,category"),
            ("sysparm_avg_fields", "priority"),
            ("sysparm_sum_fields", ""),
            ("sysparm_having", "count^priority^>^3,AVG^priority^<=^2.5"),
            ("sysparm_order_by", "COUNT^DESC,avg^priority,category^desc,priority"),
            ("sysparm_display_value", "All"),
            ("category", "network"),
            ("bogus", "x"),
        ])
        .unwrap();
        let q = &p.query;
        assert!(q.count);
        assert_eq!(q.group_by, ["category", "priority"]);
        assert_eq!((q.avg.clone(), q.sum.clone()), (vec!["priority".to_owned()], vec![]));
        assert_eq!(
            q.having[0],
            Having { aggregate: Aggregate::Count, field: "priority".into(), op: Comparison::Gt, value: 3.0 }
        );
        assert_eq!(q.having[1].op, Comparison::Le);
        assert_eq!(
            q.order_by,
            [
                GroupOrder::Aggregate { aggregate: Aggregate::Count, field: None, descending: true },
                GroupOrder::Aggregate { aggregate: Aggregate::Avg, field: Some("priority".into()), descending: false },
                GroupOrder::Field { name: "category".into(), descending: true },
                GroupOrder::Field { name: "priority".into(), descending: false },
            ]
        );
        assert_eq!(p.display, DisplayMode::All);
        assert_eq!(q.limit, MAX_GROUPS);
        assert_eq!(q.filter, query::parse("category=network", sluice_core::DateTime::now()).unwrap());
        assert_eq!(parse(&[("sysparm_limit", "99999999")]).unwrap().query.limit, MAX_GROUPS);
        assert_eq!(parse(&[("sysparm_orderby", "COUNT")]).unwrap().query.order_by.len(), 1);
    }

    #[test]
    fn malformed_terms_are_refused() {
        for (k, v) in [
            ("sysparm_having", "count^priority^>"),
            ("sysparm_having", "median^priority^>^1"),
            ("sysparm_having", "count^priority^LIKE^1"),
            ("sysparm_having", "count^priority^>^high"),
            ("sysparm_having", "count^priority^>^NaN"),
            ("sysparm_having", "count^priority^>^inf"),
            ("sysparm_order_by", "AVG"),
            ("sysparm_order_by", "AVG^priority^state"),
            ("sysparm_order_by", "priority^state"),
            ("sysparm_order_by", "^DESC"),
            ("sysparm_limit", "-1"),
        ] {
            let e = parse(&[(k, v)]).unwrap_err();
            assert!(matches!(e, ApiError::InvalidParameter(_)), "{k}={v}: {e:?}");
        }
        let many = (0..=MAX_TERMS).map(|i| format!("f{i}")).collect::<Vec<_>>().join(",");
        assert!(parse(&[("sysparm_group_by", &many)]).is_err());
    }
}
