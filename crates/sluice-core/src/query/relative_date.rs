//! `javascript:` values of encoded queries: the GlideSystem date functions that ServiceNow's list
//! filters write (`javascript:gs.daysAgoStart(1)`, `javascript:gs.beginningOfToday()`,
//! `javascript:gs.dateGenerate('2026-01-01','00:00:00')`, `javascript:gs.datePart(...)`).
//!
//! No script engine: a hand-written reader of exactly one call `gs.<name>(<args>)` whose
//! arguments are integers or quoted strings, evaluated against a `now` passed in. Anything else
//! (another object, a second statement, nesting, an unknown function) is an error naming it.
//! Times are UTC, as sluice stores them; weeks start on Monday.

use crate::DateTime;
use crate::datetime::days_in_month;

use super::{DatePart, Sign};

/// Longest `javascript:` value read; longer ones are refused unread.
pub const MAX_EXPRESSION: usize = 200;
/// Largest count an `…Ago` function or a relative operator takes (about 270 years of days).
pub const MAX_COUNT: i64 = 100_000;
/// Longest quoted argument.
const MAX_STRING: usize = 32;

/// A period of the calendar (UTC; weeks start on Monday).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Unit {
    Minute,
    Hour,
    Day,
    Week,
    Month,
    Quarter,
    Year,
}

impl Unit {
    /// The unit of a relative operator (`RELATIVEGT@hour@ago@3`): ServiceNow writes days as
    /// `dayofweek`.
    pub fn parse(name: &str) -> Option<Self> {
        Some(match name {
            "minute" => Unit::Minute,
            "hour" => Unit::Hour,
            "day" | "dayofweek" => Unit::Day,
            "week" => Unit::Week,
            "month" => Unit::Month,
            "quarter" => Unit::Quarter,
            "year" => Unit::Year,
            _ => return None,
        })
    }

    /// The name [`Unit::parse`] reads (days as `day`).
    pub fn name(self) -> &'static str {
        match self {
            Unit::Minute => "minute",
            Unit::Hour => "hour",
            Unit::Day => "day",
            Unit::Week => "week",
            Unit::Month => "month",
            Unit::Quarter => "quarter",
            Unit::Year => "year",
        }
    }

    /// Its length in seconds, for units that have a fixed one.
    pub fn seconds(self) -> Option<i64> {
        match self {
            Unit::Minute => Some(60),
            Unit::Hour => Some(3600),
            Unit::Day => Some(86_400),
            Unit::Week => Some(7 * 86_400),
            Unit::Month | Unit::Quarter | Unit::Year => None,
        }
    }

    fn months(self) -> i64 {
        match self {
            Unit::Quarter => 3,
            Unit::Year => 12,
            _ => 1,
        }
    }
}

/// Earliest and latest instants a query value may name: four-digit years, as stored.
fn in_range(t: DateTime) -> Result<DateTime, String> {
    let lowest = DateTime::from_date(1, 1, 1);
    let highest = DateTime::from_date(9999, 12, 31).unix() + 86_399;
    if t < lowest || t.unix() > highest {
        return Err("the date is out of range (years 0001 to 9999)".into());
    }
    Ok(t)
}

/// `t` moved by `n` units (months keep the day where the target month has it, else its last day).
pub fn shift(t: DateTime, unit: Unit, n: i64) -> Result<DateTime, String> {
    let t = in_range(t)?;
    let moved = match unit.seconds() {
        Some(secs) => DateTime::from_unix(t.unix() + n * secs),
        None => {
            let (y, m, d) = t.date();
            let months = y * 12 + i64::from(m) - 1 + n * unit.months();
            let (y, m) = (months.div_euclid(12), months.rem_euclid(12) as u32 + 1);
            if !(1..=9999).contains(&y) {
                return Err("the date is out of range (years 0001 to 9999)".into());
            }
            let d = d.min(days_in_month(y, m));
            DateTime::from_unix(DateTime::from_date(y, m, d).unix() + t.seconds_of_day())
        }
    };
    in_range(moved)
}

/// The first second of the period of `unit` that holds `t`.
pub fn start_of(t: DateTime, unit: Unit) -> DateTime {
    let midnight = t.unix() - t.seconds_of_day();
    let (y, m, _) = t.date();
    match unit {
        Unit::Minute => DateTime::from_unix(t.unix() - t.unix().rem_euclid(60)),
        Unit::Hour => DateTime::from_unix(t.unix() - t.unix().rem_euclid(3600)),
        Unit::Day => DateTime::from_unix(midnight),
        Unit::Week => DateTime::from_unix(midnight - i64::from(t.weekday() - 1) * 86_400),
        Unit::Month => DateTime::from_date(y, m, 1),
        Unit::Quarter => DateTime::from_date(y, (m - 1) / 3 * 3 + 1, 1),
        Unit::Year => DateTime::from_date(y, 1, 1),
    }
}

/// The last second of the period of `unit` that holds `t`.
pub fn end_of(t: DateTime, unit: Unit) -> Result<DateTime, String> {
    let next = shift(start_of(t, unit), unit, 1).or_else(|_| {
        // The period that ends with year 9999.
        Ok::<_, String>(DateTime::from_unix(DateTime::from_date(9999, 12, 31).unix() + 86_400))
    })?;
    Ok(DateTime::from_unix(next.unix() - 1))
}

enum Arg {
    Int(i64),
    Text(String),
}

/// `gs.<name>(<args>)`, read from the text after `javascript:`.
struct Call {
    name: String,
    args: Vec<Arg>,
}

struct Reader<'a> {
    rest: &'a str,
}

impl<'a> Reader<'a> {
    fn skip_space(&mut self) {
        self.rest = self.rest.trim_start_matches(' ');
    }

    fn eat(&mut self, token: &str) -> bool {
        self.skip_space();
        match self.rest.strip_prefix(token) {
            Some(rest) => {
                self.rest = rest;
                true
            }
            None => false,
        }
    }

    fn take_while(&mut self, keep: impl Fn(char) -> bool) -> &'a str {
        let end = self.rest.find(|c| !keep(c)).unwrap_or(self.rest.len());
        let (taken, rest) = self.rest.split_at(end);
        self.rest = rest;
        taken
    }

    fn arg(&mut self) -> Result<Arg, String> {
        self.skip_space();
        let quote = match self.rest.chars().next() {
            Some(q @ ('\'' | '"')) => q,
            _ => {
                let sign = if self.eat("-") { -1 } else { 1 };
                let digits = self.take_while(|c| c.is_ascii_digit());
                if digits.is_empty() || digits.len() > 9 {
                    return Err("an argument is not a whole number or a quoted string".into());
                }
                let n: i64 = digits.parse().map_err(|_| "an argument is not a whole number")?;
                return Ok(Arg::Int(sign * n));
            }
        };
        self.rest = &self.rest[1..];
        let text = self.take_while(|c| c != quote && c != '\\');
        if !self.rest.starts_with(quote) || text.chars().count() > MAX_STRING {
            return Err("a quoted argument is unterminated, escaped or too long".into());
        }
        self.rest = &self.rest[1..];
        Ok(Arg::Text(text.to_owned()))
    }
}

fn read_call(script: &str) -> Result<Call, String> {
    let mut r = Reader { rest: script };
    if !r.eat("gs.") {
        return Err("only GlideSystem date functions (gs.…) are evaluated".into());
    }
    let name = r.take_while(|c| c.is_ascii_alphanumeric()).to_owned();
    if name.is_empty() || !r.eat("(") {
        return Err("expected a call gs.<function>(…)".into());
    }
    let mut args = Vec::new();
    if !r.eat(")") {
        loop {
            args.push(r.arg()?);
            if r.eat(")") {
                break;
            }
            if !r.eat(",") || args.len() >= 3 {
                return Err(format!("gs.{name}: malformed arguments"));
            }
        }
    }
    r.eat(";");
    r.skip_space();
    if !r.rest.is_empty() {
        return Err("text after the call".into());
    }
    Ok(Call { name, args })
}

/// The script of a `javascript:` value, or `None` when the value is not one.
pub fn script(value: &str) -> Option<&str> {
    value.strip_prefix("javascript:")
}

fn count(name: &str, args: &[Arg]) -> Result<i64, String> {
    match args {
        [Arg::Int(n)] if n.abs() <= MAX_COUNT => Ok(*n),
        [Arg::Int(_)] => Err(format!("gs.{name}: the count is over {MAX_COUNT}")),
        _ => Err(format!("gs.{name} takes one whole number")),
    }
}

/// `beginningOf…`/`endOf…` periods: `Today`, `ThisWeek`, `LastMonth`, `NextYear`…
fn named_period(name: &str) -> Option<(Unit, i64)> {
    match name {
        "Today" => return Some((Unit::Day, 0)),
        "Tomorrow" => return Some((Unit::Day, 1)),
        "Yesterday" => return Some((Unit::Day, -1)),
        _ => {}
    }
    let (offset, unit) = if let Some(u) = name.strip_prefix("This") {
        (0, u)
    } else if let Some(u) = name.strip_prefix("Last") {
        (-1, u)
    } else {
        (1, name.strip_prefix("Next")?)
    };
    let unit = match unit {
        "Week" => Unit::Week,
        "Month" => Unit::Month,
        "Quarter" => Unit::Quarter,
        "Year" => Unit::Year,
        _ => return None,
    };
    Some((unit, offset))
}

/// `daysAgo`, `hoursAgoStart`, `monthsAgoEnd`…: the unit and which end of it.
fn ago_function(name: &str) -> Option<(Unit, Edge)> {
    let (stem, edge) = if let Some(s) = name.strip_suffix("AgoStart") {
        (s, Edge::Start)
    } else if let Some(s) = name.strip_suffix("AgoEnd") {
        (s, Edge::End)
    } else {
        (name.strip_suffix("Ago")?, Edge::Exact)
    };
    let unit = match stem {
        "minutes" => Unit::Minute,
        "hours" => Unit::Hour,
        "days" => Unit::Day,
        "months" => Unit::Month,
        "quarters" => Unit::Quarter,
        "years" if edge == Edge::Exact => Unit::Year,
        _ => return None,
    };
    Some((unit, edge))
}

#[derive(Clone, Copy, PartialEq, Eq)]
enum Edge {
    Exact,
    Start,
    End,
}

/// `gs.dateGenerate('2026-01-01', '00:00:00' | 'start' | 'end')`.
fn date_generate(args: &[Arg]) -> Result<DateTime, String> {
    let bad = || "gs.dateGenerate takes a date (yyyy-MM-dd) and a time (HH:mm:ss, 'start' or 'end')".to_owned();
    let [Arg::Text(date), Arg::Text(time)] = args else { return Err(bad()) };
    let time = match time.as_str() {
        "start" => "00:00:00",
        "end" => "23:59:59",
        t => t,
    };
    DateTime::parse(&format!("{date} {time}")).map_err(|_| bad())
}

/// The instant a `javascript:` date expression names (`script` is the text after `javascript:`).
pub fn evaluate(script: &str, now: DateTime) -> Result<DateTime, String> {
    if script.len() > MAX_EXPRESSION {
        return Err(format!("the expression is longer than {MAX_EXPRESSION} bytes"));
    }
    let Call { name, args } = read_call(script)?;
    let no_args =
        |t: Result<DateTime, String>| if args.is_empty() { t } else { Err(format!("gs.{name} takes no arguments")) };
    if name == "nowNoTZ" || name == "nowDateTime" {
        return no_args(Ok(now));
    }
    if name == "dateGenerate" {
        return date_generate(&args);
    }
    if let Some(period) = name.strip_prefix("beginningOf").and_then(named_period) {
        let (unit, n) = period;
        return no_args(shift(now, unit, n).map(|t| start_of(t, unit)));
    }
    if let Some(period) = name.strip_prefix("endOf").and_then(named_period) {
        let (unit, n) = period;
        return no_args(shift(now, unit, n).and_then(|t| end_of(t, unit)));
    }
    if let Some((unit, edge)) = ago_function(&name) {
        let then = shift(now, unit, -count(&name, &args)?)?;
        return match edge {
            Edge::Exact => Ok(then),
            Edge::Start => Ok(start_of(then, unit)),
            Edge::End => end_of(then, unit),
        };
    }
    Err(format!("unknown function gs.{name}"))
}

const WEEKDAYS: [&str; 7] = ["monday", "tuesday", "wednesday", "thursday", "friday", "saturday", "sunday"];
const MONTHS: [&str; 12] = ["jan", "feb", "mar", "apr", "may", "jun", "jul", "aug", "sep", "oct", "nov", "dec"];

/// The canonical text of a date part's value: weekday and month names, numbers otherwise.
pub fn part_value_name(part: DatePart, value: u32) -> String {
    let index = value as usize;
    match part {
        DatePart::DayOfWeek if (1..=7).contains(&index) => WEEKDAYS[index - 1].to_owned(),
        DatePart::Month if (1..=12).contains(&index) => MONTHS[index - 1].to_owned(),
        _ => value.to_string(),
    }
}

fn part_value(part: DatePart, text: &str) -> Option<u32> {
    let lower = text.trim().to_ascii_lowercase();
    let number = lower.parse::<u32>().ok();
    let (value, range) = match part {
        DatePart::DayOfWeek => (WEEKDAYS.iter().position(|d| *d == lower).map(|i| i as u32 + 1).or(number), 1..=7),
        DatePart::Month => {
            let by_name = MONTHS.iter().position(|m| lower.len() >= 3 && m.starts_with(&lower[..3]));
            (by_name.map(|i| i as u32 + 1).or(number), 1..=12)
        }
        DatePart::Quarter => (number, 1..=4),
        DatePart::Year => (number, 1..=9999),
        DatePart::Week => (number, 0..=53),
        DatePart::Hour => (number, 0..=23),
        DatePart::DayOfMonth => (number, 1..=31),
    };
    value.filter(|v| range.contains(v))
}

/// `gs.datePart('dayofweek','monday','EE')` of a `DATEPART` condition: the part, its value and
/// how the record's part compares with it.
pub fn date_part(script: &str) -> Result<(DatePart, u32, Sign), String> {
    if script.len() > MAX_EXPRESSION {
        return Err(format!("the expression is longer than {MAX_EXPRESSION} bytes"));
    }
    let Call { name, args } = read_call(script)?;
    if name != "datePart" {
        return Err(format!("DATEPART takes gs.datePart(…), not gs.{name}"));
    }
    let bad = "gs.datePart takes a part, a value and a comparison ('EE', 'GT', 'GE', 'LT' or 'LE')";
    let [Arg::Text(part), Arg::Text(value), Arg::Text(sign)] = args.as_slice() else {
        return Err(bad.into());
    };
    let part = DatePart::parse(part).ok_or_else(|| format!("gs.datePart: unknown part {part:?}"))?;
    let value = part_value(part, value).ok_or_else(|| format!("gs.datePart: {value:?} is not a value of {part}"))?;
    let sign = match sign.as_str() {
        "EE" => Sign::Eq,
        "GT" => Sign::Gt,
        "GE" => Sign::Ge,
        "LT" => Sign::Lt,
        "LE" => Sign::Le,
        _ => return Err(bad.into()),
    };
    Ok((part, value, sign))
}

#[cfg(test)]
mod tests;
