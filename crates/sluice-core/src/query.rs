//! ServiceNow encoded queries (`sysparm_query`): `active=true^priority<3^ORurgency=1^NQ...`,
//! parsed into a typed tree. No SQL here: the store translates the tree against a table schema.
//!
//! The parser is lenient like ServiceNow: a term it cannot read is skipped (and recorded in
//! [`EncodedQuery::ignored`]) and the rest still applies. Whether a field exists is the store's
//! business (it knows the schema); the parser only checks the shape of a field name.
//!
//! Structure: `^NQ` separates [`Group`]s, which are ORed; inside a group the [`Clause`]s are
//! ANDed; `^OR` adds a [`Condition`] to the previous clause, so `a^b^ORc` is `a AND (b OR c)`.
//! `ORDERBY<field>` and `ORDERBYDESC<field>` terms may appear anywhere.

use std::fmt;

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
            Operator::IsEmpty | Operator::IsNotEmpty | Operator::EmptyString | Operator::Anything => Ok(()),
        }
    }
}

impl fmt::Display for Condition {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}{}", self.field, self.op)
    }
}

enum Shape {
    Value(fn(String) -> Operator),
    List(fn(Vec<String>) -> Operator),
    Range,
    Bare(Operator),
}

/// Operators in the order they are tried: a token that begins with another one comes before it
/// (`<=` before `<`, `>=` before `>`), so the longest token wins.
const OPERATORS: &[(&str, Shape)] = &[
    ("!=", Shape::Value(Operator::Ne)),
    ("=", Shape::Value(Operator::Eq)),
    ("<=", Shape::Value(Operator::Le)),
    ("<", Shape::Value(Operator::Lt)),
    (">=", Shape::Value(Operator::Ge)),
    (">", Shape::Value(Operator::Gt)),
    ("NOT LIKE", Shape::Value(Operator::NotLike)),
    ("NOT IN", Shape::List(Operator::NotIn)),
    ("LIKE", Shape::Value(Operator::Like)),
    ("STARTSWITH", Shape::Value(Operator::StartsWith)),
    ("ENDSWITH", Shape::Value(Operator::EndsWith)),
    ("ISEMPTY", Shape::Bare(Operator::IsEmpty)),
    ("ISNOTEMPTY", Shape::Bare(Operator::IsNotEmpty)),
    ("EMPTYSTRING", Shape::Bare(Operator::EmptyString)),
    ("ANYTHING", Shape::Bare(Operator::Anything)),
    ("BETWEEN", Shape::Range),
    ("IN", Shape::List(Operator::In)),
];

/// ServiceNow operators we do not support whose token begins with one we do (`IN`): they must be
/// skipped as a whole, not read as `IN` with a strange value.
const UNSUPPORTED_PREFIXED: &[&str] = &["IN_HIERARCHY", "INSTANCEOF"];

fn operator(text: &str) -> Option<Operator> {
    if UNSUPPORTED_PREFIXED.iter().any(|t| text.starts_with(t)) {
        return None;
    }
    let (token, shape) = OPERATORS.iter().find(|(token, _)| text.starts_with(token))?;
    let value = &text[token.len()..];
    match shape {
        Shape::Value(make) => Some(make(value.to_owned())),
        Shape::List(make) => Some(make(value.split(',').map(str::to_owned).collect())),
        Shape::Range => value.split_once('@').map(|(low, high)| Operator::Between(low.to_owned(), high.to_owned())),
        Shape::Bare(op) => value.is_empty().then(|| op.clone()),
    }
}

/// `<field><OP><value>`: the field name runs up to the first character that cannot be part of
/// one; the operator must follow right away.
fn condition(text: &str) -> Option<Condition> {
    let end = text.find(|c: char| !(is_name_char(c) || c == '.')).unwrap_or(text.len());
    let field = FieldPath::parse(&text[..end])?;
    let op = operator(&text[end..])?;
    Some(Condition { field, op })
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

/// Parses an encoded query. Never fails: unreadable terms land in [`EncodedQuery::ignored`].
pub fn parse(text: &str) -> EncodedQuery {
    let mut query = EncodedQuery::default();
    let mut terms = text.split('^');
    while let Some(raw) = terms.next() {
        // `GOTO` marks the query a list was opened with; it changes nothing.
        let term = raw.strip_prefix("GOTO").unwrap_or(raw);
        // Empty terms (`a=1^^b=2`, a trailing `^`) and the `^EQ` end marker carry nothing.
        if term.is_empty() || term == "EQ" {
            continue;
        }
        if term.starts_with("RLQUERY") {
            // A related-list query runs up to `ENDRLQUERY`; its inner terms are not conditions on
            // this table, so the whole block is skipped.
            let mut block = raw.to_owned();
            for inner in terms.by_ref() {
                block.push('^');
                block.push_str(inner);
                if inner == "ENDRLQUERY" {
                    break;
                }
            }
            query.ignored.push(block);
            continue;
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
        let Some(condition) = condition(body) else {
            query.ignored.push(raw.to_owned());
            continue;
        };
        query.push(link, condition);
    }
    query
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
/// received. For every query [`parse`] returns, `parse(&query.to_string()) == query`.
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
