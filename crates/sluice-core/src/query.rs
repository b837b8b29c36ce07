//! ServiceNow encoded queries (`sysparm_query`): `active=true^priority<3^ORurgency=1^NQ...`,
//! parsed into a typed tree. No SQL here: the store translates the tree against a table schema.
//!
//! What stays lenient, as on ServiceNow: a condition on a field the table does not have is
//! dropped by the store (it knows the schema), and one whose field name is not even the shape of
//! one (`Bad=1`, `a.b.c=1`) is skipped here and recorded in [`EncodedQuery::ignored`]. What is
//! refused with a [`QueryError`] naming the term, because running the rest would answer more
//! records than asked for: an operator this parser does not know, one that only means something
//! in business-rule conditions (`VALCHANGES`, `CHANGESFROM`, `CHANGESTO`), features sluice does
//! not have (`INSTANCEOF`, `RLQUERY`, keyword search), and a value it cannot read (a malformed
//! relative date, a `javascript:` expression other than the GlideSystem date functions of
//! [`relative_date`]).
//!
//! `javascript:` values and relative operators are evaluated while parsing, against the `now`
//! passed in (UTC), so the tree holds only literal values: `>=javascript:gs.daysAgoStart(1)`
//! becomes `>=2026-12-06 00:00:00`, `ONToday@…@…` a `BETWEEN`, `RELATIVEGT@hour@ago@3` a `>`.
//!
//! Structure: `^NQ` separates [`Group`]s, which are ORed; inside a group the [`Clause`]s are
//! ANDed; `^OR` adds a [`Condition`] to the previous clause, so `a^b^ORc` is `a AND (b OR c)`.
//! `ORDERBY<field>` and `ORDERBYDESC<field>` terms may appear anywhere.

use std::fmt;

use crate::DateTime;

mod operator;
pub mod relative_date;

pub use relative_date::Unit;

/// A parsed `sysparm_query`. No groups means no condition: every record matches.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct EncodedQuery {
    /// Alternatives (`^NQ`): a record matches when it matches any group.
    pub groups: Vec<Group>,
    pub order_by: Vec<OrderBy>,
    /// Terms that could not be read, exactly as received (without the `^` around them).
    pub ignored: Vec<String>,
}

/// Clauses that must all hold.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Group {
    pub clauses: Vec<Clause>,
}

/// Conditions of which at least one must hold (`a^ORb^ORc`).
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Clause {
    pub any_of: Vec<Condition>,
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Condition {
    pub field: FieldPath,
    pub op: Operator,
}

/// A field name, or a reference field and a field of the referenced table (`caller_id.user_name`).
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct FieldPath(pub Vec<String>);

#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Operator {
    Eq(String),
    Ne(String),
    /// Contains.
    Like(String),
    /// Does not contain.
    NotLike(String),
    StartsWith(String),
    EndsWith(String),
    In(Vec<String>),
    NotIn(Vec<String>),
    IsEmpty,
    IsNotEmpty,
    EmptyString,
    /// Always true.
    Anything,
    Lt(String),
    Le(String),
    Gt(String),
    Ge(String),
    /// Inclusive range, `low@high` on the wire.
    Between(String, String),
    /// Outside an inclusive range of date-times, or empty (`NOTON`); written `NOTON@low@high`.
    NotBetween(String, String),
    /// A part of a date-time compared with a value (`DATEPART`): the ISO weekday (1 Monday to
    /// 7 Sunday), the month (1–12), quarter, year, week of the year (0–53, weeks from Monday),
    /// hour (0–23).
    DatePart {
        part: DatePart,
        sign: Sign,
        value: u32,
    },
    /// Compared with another field of the same record (`SAMEAS`, `NSAMEAS`, `GT_FIELD`,
    /// `GT_OR_EQUALS_FIELD`, `LT_FIELD`, `LT_OR_EQUALS_FIELD`); with `part`, only that part of
    /// the two date-times (`SAMEASsys_updated_on@day`). Empty values never compare.
    Field {
        sign: Sign,
        other: String,
        part: Option<DatePart>,
    },
    /// A date-time more (`MORETHAN`) or less (`LESSTHAN`) than `count` units before, after, or
    /// either side of another field's (`MORETHANsys_created_on@hour@after@2`).
    Apart {
        more: bool,
        other: String,
        unit: Unit,
        direction: Direction,
        count: i64,
    },
}

/// How two values compare.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Sign {
    Eq,
    Ne,
    Lt,
    Le,
    Gt,
    Ge,
}

impl Sign {
    /// The SQL operator.
    pub fn sql(self) -> &'static str {
        match self {
            Sign::Eq => "=",
            Sign::Ne => "<>",
            Sign::Lt => "<",
            Sign::Le => "<=",
            Sign::Gt => ">",
            Sign::Ge => ">=",
        }
    }
}

/// A part of a date-time (UTC).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum DatePart {
    /// ISO weekday: 1 for Monday to 7 for Sunday.
    DayOfWeek,
    DayOfMonth,
    /// Week of the year, weeks starting on Monday: 0 before the first Monday, up to 53.
    Week,
    Month,
    Quarter,
    Year,
    Hour,
}

impl DatePart {
    /// A part as `gs.datePart` names it.
    pub fn parse(name: &str) -> Option<Self> {
        Some(match name {
            "dayofweek" => DatePart::DayOfWeek,
            "week" => DatePart::Week,
            "month" => DatePart::Month,
            "quarter" => DatePart::Quarter,
            "year" => DatePart::Year,
            "hour" => DatePart::Hour,
            _ => return None,
        })
    }

    /// A granularity of `SAMEAS`/`NSAMEAS` on date-times (`@day` is the day of the month).
    pub fn granularity(name: &str) -> Option<Self> {
        match name {
            "day" => Some(DatePart::DayOfMonth),
            "dayofweek" => None,
            other => Self::parse(other),
        }
    }

    fn name(self) -> &'static str {
        match self {
            DatePart::DayOfWeek => "dayofweek",
            DatePart::DayOfMonth => "day",
            DatePart::Week => "week",
            DatePart::Month => "month",
            DatePart::Quarter => "quarter",
            DatePart::Year => "year",
            DatePart::Hour => "hour",
        }
    }
}

impl fmt::Display for DatePart {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

/// Which side of the other date-time `MORETHAN`/`LESSTHAN` look at.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Direction {
    Before,
    After,
    Either,
}

/// Why a term was refused.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum Problem {
    #[error("unknown operator {0:?}")]
    UnknownOperator(String),
    #[error("no operator after the field name")]
    NoOperator,
    #[error("{0} is only meaningful in business-rule conditions, not in queries")]
    ConditionOnly(&'static str),
    #[error("{0} is not supported by sluice")]
    Unsupported(&'static str),
    #[error("{0}")]
    InvalidValue(String),
}

/// A term of `sysparm_query` that cannot be run: what is wrong, and the term (cut to
/// [`MAX_TERM_SHOWN`] characters).
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[error("{problem} in the query term {term:?}")]
pub struct QueryError {
    pub term: String,
    pub problem: Problem,
}

/// How much of a refused term an error shows.
pub const MAX_TERM_SHOWN: usize = 120;

impl QueryError {
    fn new(term: &str, problem: Problem) -> Self {
        let term = match term.char_indices().nth(MAX_TERM_SHOWN) {
            Some((end, _)) => format!("{}…", &term[..end]),
            None => term.to_owned(),
        };
        Self { term, problem }
    }
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct OrderBy {
    pub field: String,
    pub descending: bool,
}

/// Longest dot-walk the parser accepts: a reference field and a field of its table.
pub const MAX_PATH_SEGMENTS: usize = 2;

fn is_name_char(c: char) -> bool {
    c.is_ascii_lowercase() || c.is_ascii_digit() || c == '_'
}

impl FieldPath {
    /// One name, or at most [`MAX_PATH_SEGMENTS`] names joined by `.`; each name is made of
    /// `[a-z0-9_]` and is not empty.
    pub fn parse(text: &str) -> Option<Self> {
        let segments: Vec<&str> = text.split('.').collect();
        let valid = segments.len() <= MAX_PATH_SEGMENTS
            && segments.iter().all(|s| !s.is_empty() && s.chars().all(is_name_char));
        valid.then(|| Self(segments.into_iter().map(str::to_owned).collect()))
    }

    /// A path of one field.
    pub fn field(name: &str) -> Self {
        Self(vec![name.to_owned()])
    }

    pub fn segments(&self) -> &[String] {
        &self.0
    }
}

impl fmt::Display for FieldPath {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0.join("."))
    }
}

impl Operator {
    /// The operator as written between the field and the value.
    pub fn token(&self) -> &'static str {
        match self {
            Operator::Eq(_) => "=",
            Operator::Ne(_) => "!=",
            Operator::Like(_) => "LIKE",
            Operator::NotLike(_) => "NOT LIKE",
            Operator::StartsWith(_) => "STARTSWITH",
            Operator::EndsWith(_) => "ENDSWITH",
            Operator::In(_) => "IN",
            Operator::NotIn(_) => "NOT IN",
            Operator::IsEmpty => "ISEMPTY",
            Operator::IsNotEmpty => "ISNOTEMPTY",
            Operator::EmptyString => "EMPTYSTRING",
            Operator::Anything => "ANYTHING",
            Operator::Lt(_) => "<",
            Operator::Le(_) => "<=",
            Operator::Gt(_) => ">",
            Operator::Ge(_) => ">=",
            Operator::Between(..) => "BETWEEN",
            Operator::NotBetween(..) => "NOTON",
            Operator::DatePart { .. } => "DATEPART",
            Operator::Field { sign, .. } => match sign {
                Sign::Eq => "SAMEAS",
                Sign::Ne => "NSAMEAS",
                Sign::Gt => "GT_FIELD",
                Sign::Ge => "GT_OR_EQUALS_FIELD",
                Sign::Lt => "LT_FIELD",
                Sign::Le => "LT_OR_EQUALS_FIELD",
            },
            Operator::Apart { more: true, .. } => "MORETHAN",
            Operator::Apart { more: false, .. } => "LESSTHAN",
        }
    }
}

impl fmt::Display for Operator {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.token())?;
        match self {
            Operator::Eq(v)
            | Operator::Ne(v)
            | Operator::Like(v)
            | Operator::NotLike(v)
            | Operator::StartsWith(v)
            | Operator::EndsWith(v)
            | Operator::Lt(v)
            | Operator::Le(v)
            | Operator::Gt(v)
            | Operator::Ge(v) => f.write_str(v),
            Operator::In(values) | Operator::NotIn(values) => f.write_str(&values.join(",")),
            Operator::Between(low, high) => write!(f, "{low}@{high}"),
            Operator::NotBetween(low, high) => write!(f, "@{low}@{high}"),
            Operator::DatePart { part, sign, value } => {
                let sign = match sign {
                    Sign::Gt => "GT",
                    Sign::Ge => "GE",
                    Sign::Lt => "LT",
                    Sign::Le => "LE",
                    Sign::Eq | Sign::Ne => "EE",
                };
                let value = relative_date::part_value_name(*part, *value);
                write!(f, "@javascript:gs.datePart('{part}','{value}','{sign}')")
            }
            Operator::Field { other, part, .. } => match part {
                Some(part) => write!(f, "{other}@{part}"),
                None => f.write_str(other),
            },
            Operator::Apart { other, unit, direction, count, .. } => {
                let direction = match direction {
                    Direction::Before => "before",
                    Direction::After => "after",
                    Direction::Either => "before or after",
                };
                write!(f, "{other}@{}@{direction}@{count}", unit.name())
            }
            Operator::IsEmpty | Operator::IsNotEmpty | Operator::EmptyString | Operator::Anything => Ok(()),
        }
    }
}

impl fmt::Display for Condition {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}{}", self.field, self.op)
    }
}

fn order_by(rest: &str) -> Option<OrderBy> {
    let (field, descending) = match rest.strip_prefix("DESC") {
        Some(field) => (field, true),
        None => (rest, false),
    };
    FieldPath::parse(field).map(|_| OrderBy { field: field.to_owned(), descending })
}

enum Link {
    And,
    Or,
    NewGroup,
}

/// Parses an encoded query, evaluating relative dates and `javascript:` values against `now`.
/// Conditions whose field name is not the shape of one land in [`EncodedQuery::ignored`]; a term
/// that cannot be run (see the module documentation) is an error naming it.
pub fn parse(text: &str, now: DateTime) -> Result<EncodedQuery, QueryError> {
    let mut query = EncodedQuery::default();
    for raw in text.split('^') {
        // `GOTO` marks the query a list was opened with; it changes nothing.
        let term = raw.strip_prefix("GOTO").unwrap_or(raw);
        // Empty terms (`a=1^^b=2`, a trailing `^`) and the `^EQ` end marker carry nothing.
        if term.is_empty() || term == "EQ" {
            continue;
        }
        if term.starts_with("RLQUERY") {
            return Err(QueryError::new(raw, Problem::Unsupported("RLQUERY (related-list conditions)")));
        }
        if let Some(rest) = term.strip_prefix("ORDERBY") {
            match order_by(rest) {
                Some(order) => query.order_by.push(order),
                None => query.ignored.push(raw.to_owned()),
            }
            continue;
        }
        let (link, body) = if let Some(body) = term.strip_prefix("NQ") {
            (Link::NewGroup, body)
        } else if let Some(body) = term.strip_prefix("OR") {
            (Link::Or, body)
        } else {
            (Link::And, term)
        };
        let body = body.strip_prefix("GOTO").unwrap_or(body);
        if body.starts_with("123TEXTQUERY321") || body.starts_with("IR_AND_OR_QUERY") {
            return Err(QueryError::new(raw, Problem::Unsupported("keyword search (123TEXTQUERY321)")));
        }
        // The field name runs up to the first character that cannot be part of one; the
        // operator must follow right away.
        let end = body.find(|c: char| !(is_name_char(c) || c == '.')).unwrap_or(body.len());
        let Some(field) = FieldPath::parse(&body[..end]) else {
            query.ignored.push(raw.to_owned());
            continue;
        };
        let op = operator::parse(&body[end..], now).map_err(|problem| QueryError::new(raw, problem))?;
        query.push(link, Condition { field, op });
    }
    Ok(query)
}

impl EncodedQuery {
    fn push(&mut self, link: Link, condition: Condition) {
        if matches!(link, Link::NewGroup) || self.groups.is_empty() {
            self.groups.push(Group::default());
        }
        let group = self.groups.last_mut().expect("a group was just ensured");
        match (link, group.clauses.last_mut()) {
            (Link::Or, Some(clause)) => clause.any_of.push(condition),
            _ => group.clauses.push(Clause { any_of: vec![condition] }),
        }
    }

    /// ANDs `field = value` into every group (creating one when there is none): what a plain
    /// `?field=value` URL parameter adds to `sysparm_query`.
    pub fn and_equals(&mut self, field: &str, value: &str) {
        self.and(field, Operator::Eq(value.to_owned()));
    }

    /// ANDs `field != value` into every group, as [`Self::and_equals`] does `=`.
    pub fn and_not_equals(&mut self, field: &str, value: &str) {
        self.and(field, Operator::Ne(value.to_owned()));
    }

    /// ANDs `field IN values` into every group, as [`Self::and_equals`] does `=`.
    pub fn and_in(&mut self, field: &str, values: &[&str]) {
        self.and(field, Operator::In(values.iter().map(|v| (*v).to_owned()).collect()));
    }

    fn and(&mut self, field: &str, op: Operator) {
        if self.groups.is_empty() {
            self.groups.push(Group::default());
        }
        let path = FieldPath(field.split('.').map(str::to_owned).collect());
        let condition = Condition { field: path, op };
        for group in &mut self.groups {
            group.clauses.push(Clause { any_of: vec![condition.clone()] });
        }
    }
}

/// The canonical encoded-query text: conditions, then the ordering, then the ignored terms as
/// received. For every query [`parse`] returns, `parse(&query.to_string(), now) == Ok(query)`
/// (evaluated values are written as the literal date-times they became).
impl fmt::Display for EncodedQuery {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let mut first = true;
        let mut term = |f: &mut fmt::Formatter<'_>, prefix: &str, body: &dyn fmt::Display| {
            let separator = if first { "" } else { "^" };
            first = false;
            write!(f, "{separator}{prefix}{body}")
        };
        for (g, group) in self.groups.iter().enumerate() {
            for (c, clause) in group.clauses.iter().enumerate() {
                for (k, condition) in clause.any_of.iter().enumerate() {
                    let prefix = match (g, c, k) {
                        (_, _, 1..) => "OR",
                        (1.., 0, 0) => "NQ",
                        _ => "",
                    };
                    term(f, prefix, condition)?;
                }
            }
        }
        for order in &self.order_by {
            term(f, if order.descending { "ORDERBYDESC" } else { "ORDERBY" }, &order.field)?;
        }
        for raw in &self.ignored {
            term(f, "", raw)?;
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests;
