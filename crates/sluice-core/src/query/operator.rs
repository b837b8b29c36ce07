//! One condition's operator and value, the text after the field name: `=1`, `LIKEdisk`,
//! `ONToday@javascript:gs.beginningOfToday()@javascript:gs.endOfToday()`,
//! `RELATIVEGT@hour@ago@3`, `SAMEASassigned_to`... Relative dates and `javascript:` values are
//! evaluated here, against `now`, into literal date-times.

use crate::DateTime;

use super::relative_date::{self, MAX_COUNT, Unit, end_of, shift, start_of};
use super::{DatePart, Direction, Operator, Problem, Sign, is_name_char};

enum Shape {
    Value(fn(String) -> Operator),
    List(fn(Vec<String>) -> Operator),
    Range,
    Bare(Operator),
    On,
    NotOn,
    DatePart,
    Relative,
    Field(Sign),
    Apart {
        more: bool,
    },
    /// Meaningful only where a record changes (business-rule conditions).
    ConditionOnly,
    /// A ServiceNow feature sluice does not have.
    Unsupported(&'static str),
}

/// Operators in the order they are tried: a token that begins with another one comes before it
/// (`<=` before `<`, `NOTON` before nothing, `IN_HIERARCHY` before `IN`), so the longest wins.
/// `*`, `!*` and `%` are ServiceNow's shorthands for `LIKE`, `NOT LIKE` and `ENDSWITH`.
const OPERATORS: &[(&str, Shape)] = &[
    ("!=", Shape::Value(Operator::Ne)),
    ("!*", Shape::Value(Operator::NotLike)),
    ("=", Shape::Value(Operator::Eq)),
    ("<=", Shape::Value(Operator::Le)),
    ("<", Shape::Value(Operator::Lt)),
    (">=", Shape::Value(Operator::Ge)),
    (">", Shape::Value(Operator::Gt)),
    ("*", Shape::Value(Operator::Like)),
    ("%", Shape::Value(Operator::EndsWith)),
    ("NOT LIKE", Shape::Value(Operator::NotLike)),
    ("NOTLIKE", Shape::Value(Operator::NotLike)),
    ("NOT IN", Shape::List(Operator::NotIn)),
    ("NOTON", Shape::NotOn),
    ("LIKE", Shape::Value(Operator::Like)),
    ("STARTSWITH", Shape::Value(Operator::StartsWith)),
    ("ENDSWITH", Shape::Value(Operator::EndsWith)),
    ("ISEMPTY", Shape::Bare(Operator::IsEmpty)),
    ("ISNOTEMPTY", Shape::Bare(Operator::IsNotEmpty)),
    ("EMPTYSTRING", Shape::Bare(Operator::EmptyString)),
    ("ANYTHING", Shape::Bare(Operator::Anything)),
    ("BETWEEN", Shape::Range),
    ("ON", Shape::On),
    ("DATEPART", Shape::DatePart),
    ("RELATIVE", Shape::Relative),
    ("SAMEAS", Shape::Field(Sign::Eq)),
    ("NSAMEAS", Shape::Field(Sign::Ne)),
    ("GT_OR_EQUALS_FIELD", Shape::Field(Sign::Ge)),
    ("GT_FIELD", Shape::Field(Sign::Gt)),
    ("LT_OR_EQUALS_FIELD", Shape::Field(Sign::Le)),
    ("LT_FIELD", Shape::Field(Sign::Lt)),
    ("MORETHAN", Shape::Apart { more: true }),
    ("LESSTHAN", Shape::Apart { more: false }),
    ("VALCHANGES", Shape::ConditionOnly),
    ("CHANGESFROM", Shape::ConditionOnly),
    ("CHANGESTO", Shape::ConditionOnly),
    ("INSTANCEOF", Shape::Unsupported("INSTANCEOF (table hierarchies)")),
    ("IN_HIERARCHY", Shape::Unsupported("IN_HIERARCHY (hierarchical references)")),
    ("DYNAMIC", Shape::Unsupported("DYNAMIC (dynamic filter options)")),
    ("IN", Shape::List(Operator::In)),
];

fn invalid(message: impl Into<String>) -> Problem {
    Problem::InvalidValue(message.into())
}

/// A value as the condition compares it: a `javascript:` date expression becomes the date-time
/// it names, anything else is taken literally.
fn value(v: &str, now: DateTime) -> Result<String, Problem> {
    match relative_date::script(v) {
        Some(script) => relative_date::evaluate(script, now).map(|t| t.to_string()).map_err(invalid),
        None => Ok(v.to_owned()),
    }
}

/// A bound of `ON`/`NOTON`: a `javascript:` expression or a literal date-time.
fn bound(v: &str, now: DateTime) -> Result<String, Problem> {
    match relative_date::script(v) {
        Some(_) => value(v, now),
        None => DateTime::parse(v).map(|t| t.to_string()).map_err(|_| invalid(format!("{v:?} is not a date-time"))),
    }
}

/// `ON`/`NOTON`: `label@start@end` (ServiceNow's list filters write the label, e.g. `Today`).
fn on_range(v: &str, now: DateTime) -> Result<(String, String), Problem> {
    let mut parts = v.rsplitn(3, '@');
    let (Some(end), Some(start), Some(_label)) = (parts.next(), parts.next(), parts.next()) else {
        return Err(invalid("ON and NOTON take label@start@end"));
    };
    Ok((bound(start, now)?, bound(end, now)?))
}

fn count(text: &str) -> Result<i64, Problem> {
    text.parse::<i64>()
        .ok()
        .filter(|n| (0..=MAX_COUNT).contains(n))
        .ok_or_else(|| invalid(format!("{text:?} is not a count from 0 to {MAX_COUNT}")))
}

/// `RELATIVEGT@hour@ago@3`: after, before or on (`EE`: within that unit) `n` units ago or ahead.
fn relative(v: &str, now: DateTime) -> Result<Operator, Problem> {
    let shape = "RELATIVE takes <GT|GE|LT|LE|EE>@<unit>@<ago|ahead>@<count>";
    let parts: Vec<&str> = v.split('@').collect();
    let [sign, unit, direction, n] = parts.as_slice() else { return Err(invalid(shape)) };
    let unit = Unit::parse(unit).ok_or_else(|| invalid(format!("unknown unit {unit:?} ({shape})")))?;
    let n = match *direction {
        "ago" => -count(n)?,
        "ahead" => count(n)?,
        _ => return Err(invalid(shape)),
    };
    let then = shift(now, unit, n).map_err(invalid)?;
    let at = then.to_string();
    Ok(match *sign {
        "GT" => Operator::Gt(at),
        "GE" => Operator::Ge(at),
        "LT" => Operator::Lt(at),
        "LE" => Operator::Le(at),
        "EE" => Operator::Between(start_of(then, unit).to_string(), end_of(then, unit).map_err(invalid)?.to_string()),
        _ => return Err(invalid(shape)),
    })
}

/// `DATEPART<label>@javascript:gs.datePart('dayofweek','monday','EE')`.
fn date_part(v: &str) -> Result<Operator, Problem> {
    let script = v.rsplit_once('@').and_then(|(_, expr)| relative_date::script(expr));
    let script = script.ok_or_else(|| invalid("DATEPART takes <label>@javascript:gs.datePart(…)"))?;
    let (part, value, sign) = relative_date::date_part(script).map_err(invalid)?;
    Ok(Operator::DatePart { part, sign, value })
}

fn other_field(name: &str) -> Result<String, Problem> {
    if name.is_empty() || !name.chars().all(is_name_char) {
        return Err(invalid(format!("{name:?} is not a field name")));
    }
    Ok(name.to_owned())
}

/// `SAMEASassigned_to`, `SAMEASsys_updated_on@day`, `GT_FIELDreopen_count`.
fn field(sign: Sign, v: &str) -> Result<Operator, Problem> {
    let (other, part) = match v.split_once('@') {
        Some((other, granularity)) if matches!(sign, Sign::Eq | Sign::Ne) => {
            let part = DatePart::granularity(granularity).ok_or_else(|| {
                invalid(format!("unknown granularity {granularity:?} (hour, day, week, month, quarter, year)"))
            })?;
            (other, Some(part))
        }
        Some(_) => return Err(invalid("field comparisons take a field name")),
        None => (v, None),
    };
    Ok(Operator::Field { sign, other: other_field(other)?, part })
}

/// `MORETHANactivity_due@day@before@1`: units of a fixed length only (months differ).
fn apart(more: bool, v: &str) -> Result<Operator, Problem> {
    let shape = "MORETHAN and LESSTHAN take <field>@<minute|hour|day|week>@<before|after|before or after>@<count>";
    let parts: Vec<&str> = v.split('@').collect();
    let [other, unit, direction, n] = parts.as_slice() else { return Err(invalid(shape)) };
    let unit = Unit::parse(unit).filter(|u| u.seconds().is_some()).ok_or_else(|| invalid(shape))?;
    let direction = match *direction {
        "before" => Direction::Before,
        "after" => Direction::After,
        "before or after" => Direction::Either,
        _ => return Err(invalid(shape)),
    };
    Ok(Operator::Apart { more, other: other_field(other)?, unit, direction, count: count(n)? })
}

/// The operator and value after a field name.
pub(super) fn parse(text: &str, now: DateTime) -> Result<Operator, Problem> {
    let Some((token, shape)) = OPERATORS.iter().find(|(token, _)| text.starts_with(token)) else {
        if text.is_empty() {
            return Err(Problem::NoOperator);
        }
        // Name what looks like the operator: its capitals, or the first character.
        let end = text.find(|c: char| !(c.is_ascii_uppercase() || c == '_')).unwrap_or(text.len());
        let end = if end == 0 { text.chars().next().map_or(0, char::len_utf8) } else { end.min(40) };
        return Err(Problem::UnknownOperator(text[..end].to_owned()));
    };
    let v = &text[token.len()..];
    match shape {
        Shape::Value(make) => Ok(make(value(v, now)?)),
        Shape::List(make) => Ok(make(v.split(',').map(|item| value(item, now)).collect::<Result<_, _>>()?)),
        Shape::Range => {
            let (low, high) = v.split_once('@').ok_or_else(|| invalid("BETWEEN takes low@high"))?;
            Ok(Operator::Between(value(low, now)?, value(high, now)?))
        }
        Shape::Bare(op) if v.is_empty() => Ok(op.clone()),
        Shape::Bare(_) => Err(invalid(format!("{token} takes no value"))),
        Shape::On => on_range(v, now).map(|(low, high)| Operator::Between(low, high)),
        Shape::NotOn => on_range(v, now).map(|(low, high)| Operator::NotBetween(low, high)),
        Shape::DatePart => date_part(v),
        Shape::Relative => relative(v, now),
        Shape::Field(sign) => field(*sign, v),
        Shape::Apart { more } => apart(*more, v),
        Shape::ConditionOnly => Err(Problem::ConditionOnly(token)),
        Shape::Unsupported(what) => Err(Problem::Unsupported(what)),
    }
}
