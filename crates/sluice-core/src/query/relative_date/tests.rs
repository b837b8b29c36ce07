use super::*;

/// Sunday 2026-12-06 15:42:17 UTC: week from Monday 2026-11-30, Q4.
fn now() -> DateTime {
    DateTime::parse("2026-12-06 15:42:17").unwrap()
}

fn eval(script: &str) -> String {
    match evaluate(script, now()) {
        Ok(t) => t.to_string(),
        Err(e) => format!("error: {e}"),
    }
}

#[test]
fn every_function_against_a_fixed_now() {
    for (script, expected) in [
        ("gs.nowNoTZ()", "2026-12-06 15:42:17"),
        ("gs.nowDateTime()", "2026-12-06 15:42:17"),
        ("gs.daysAgo(1)", "2026-12-05 15:42:17"),
        ("gs.daysAgo(-2)", "2026-12-08 15:42:17"),
        ("gs.daysAgoStart(0)", "2026-12-06 00:00:00"),
        ("gs.daysAgoStart(1)", "2026-12-05 00:00:00"),
        ("gs.daysAgoEnd(0)", "2026-12-06 23:59:59"),
        ("gs.daysAgoEnd(6)", "2026-11-30 23:59:59"),
        ("gs.hoursAgo(3)", "2026-12-06 12:42:17"),
        ("gs.hoursAgoStart(3)", "2026-12-06 12:00:00"),
        ("gs.hoursAgoEnd(16)", "2026-12-05 23:59:59"),
        ("gs.minutesAgo(45)", "2026-12-06 14:57:17"),
        ("gs.minutesAgoStart(15)", "2026-12-06 15:27:00"),
        ("gs.minutesAgoEnd(0)", "2026-12-06 15:42:59"),
        ("gs.monthsAgo(1)", "2026-11-06 15:42:17"),
        ("gs.monthsAgoStart(12)", "2025-12-01 00:00:00"),
        ("gs.monthsAgoEnd(10)", "2026-02-28 23:59:59"),
        ("gs.quartersAgo(1)", "2026-09-06 15:42:17"),
        ("gs.quartersAgoStart(1)", "2026-07-01 00:00:00"),
        ("gs.quartersAgoEnd(0)", "2026-12-31 23:59:59"),
        ("gs.yearsAgo(2)", "2024-12-06 15:42:17"),
        ("gs.beginningOfToday()", "2026-12-06 00:00:00"),
        ("gs.endOfToday()", "2026-12-06 23:59:59"),
        ("gs.beginningOfYesterday()", "2026-12-05 00:00:00"),
        ("gs.endOfYesterday()", "2026-12-05 23:59:59"),
        ("gs.beginningOfTomorrow()", "2026-12-07 00:00:00"),
        ("gs.endOfTomorrow()", "2026-12-07 23:59:59"),
        ("gs.beginningOfThisWeek()", "2026-11-30 00:00:00"),
        ("gs.endOfThisWeek()", "2026-12-06 23:59:59"),
        ("gs.beginningOfLastWeek()", "2026-11-23 00:00:00"),
        ("gs.endOfLastWeek()", "2026-11-29 23:59:59"),
        ("gs.beginningOfNextWeek()", "2026-12-07 00:00:00"),
        ("gs.endOfNextWeek()", "2026-12-13 23:59:59"),
        ("gs.beginningOfThisMonth()", "2026-12-01 00:00:00"),
        ("gs.endOfThisMonth()", "2026-12-31 23:59:59"),
        ("gs.beginningOfLastMonth()", "2026-11-01 00:00:00"),
        ("gs.endOfLastMonth()", "2026-11-30 23:59:59"),
        ("gs.beginningOfNextMonth()", "2027-01-01 00:00:00"),
        ("gs.endOfNextMonth()", "2027-01-31 23:59:59"),
        ("gs.beginningOfThisQuarter()", "2026-10-01 00:00:00"),
        ("gs.endOfLastQuarter()", "2026-09-30 23:59:59"),
        ("gs.beginningOfNextQuarter()", "2027-01-01 00:00:00"),
        ("gs.beginningOfThisYear()", "2026-01-01 00:00:00"),
        ("gs.endOfThisYear()", "2026-12-31 23:59:59"),
        ("gs.beginningOfLastYear()", "2025-01-01 00:00:00"),
        ("gs.endOfNextYear()", "2027-12-31 23:59:59"),
        ("gs.dateGenerate('2026-01-01','00:00:00')", "2026-01-01 00:00:00"),
        ("gs.dateGenerate(\"2026-02-28\", \"end\")", "2026-02-28 23:59:59"),
        ("gs.dateGenerate('2026-03-01','start')", "2026-03-01 00:00:00"),
        (" gs.daysAgo( 1 ) ;", "2026-12-05 15:42:17"),
    ] {
        assert_eq!(eval(script), expected, "{script}");
    }
}

#[test]
fn month_ends_are_kept_in_shorter_months() {
    let march_31 = DateTime::parse("2024-03-31 08:00:00").unwrap();
    assert_eq!(evaluate("gs.monthsAgo(1)", march_31).unwrap().to_string(), "2024-02-29 08:00:00");
    assert_eq!(evaluate("gs.quartersAgo(-1)", march_31).unwrap().to_string(), "2024-06-30 08:00:00");
}

#[test]
fn anything_else_is_refused_by_name() {
    for (script, message) in [
        ("gs.getUserID()", "unknown function gs.getUserID"),
        ("gs.daysAgo(1);drop table incident", "text after the call"),
        ("gs.daysAgo(1); gs.daysAgo(2)", "text after the call"),
        ("gs.daysAgo(gs.daysAgo(1))", "an argument is not a whole number or a quoted string"),
        ("gs.daysAgo((1))", "an argument is not a whole number or a quoted string"),
        ("gs.daysAgo(99999999999999999999)", "an argument is not a whole number or a quoted string"),
        ("gs.daysAgo(100001)", "gs.daysAgo: the count is over 100000"),
        ("gs.monthsAgo(99999)", "the date is out of range (years 0001 to 9999)"),
        ("gs.daysAgo()", "gs.daysAgo takes one whole number"),
        ("gs.daysAgo('1')", "gs.daysAgo takes one whole number"),
        ("gs.beginningOfToday(1)", "gs.beginningOfToday takes no arguments"),
        ("gs.beginningOfLastFortnight()", "unknown function gs.beginningOfLastFortnight"),
        ("gs.yearsAgoStart(1)", "unknown function gs.yearsAgoStart"),
        ("gs.daysAgo(1", "gs.daysAgo: malformed arguments"),
        ("new GlideDateTime()", "only GlideSystem date functions (gs.…) are evaluated"),
        (
            "gs.dateGenerate('2026-02-30','start')",
            "gs.dateGenerate takes a date (yyyy-MM-dd) and a time (HH:mm:ss, 'start' or 'end')",
        ),
        ("gs.dateGenerate('it''s','x')", "gs.dateGenerate: malformed arguments"),
        ("gs.dateGenerate('a\\'b','x')", "a quoted argument is unterminated, escaped or too long"),
        ("gs.daysAgo", "expected a call gs.<function>(…)"),
    ] {
        assert_eq!(eval(script), format!("error: {message}"), "{script}");
    }
    let long = format!("gs.daysAgo({})", " ".repeat(MAX_EXPRESSION));
    assert!(eval(&long).contains("longer than"));
}

#[test]
fn periods_and_shifts() {
    let t = now();
    assert_eq!(start_of(t, Unit::Week).to_string(), "2026-11-30 00:00:00");
    assert_eq!(end_of(t, Unit::Quarter).unwrap().to_string(), "2026-12-31 23:59:59");
    assert_eq!(shift(t, Unit::Year, 1).unwrap().to_string(), "2027-12-06 15:42:17");
    let last = DateTime::parse("9999-12-31 12:00:00").unwrap();
    assert_eq!(end_of(last, Unit::Year).unwrap().to_string(), "9999-12-31 23:59:59");
    assert!(shift(last, Unit::Day, 1).is_err());
}

#[test]
fn date_parts() {
    let ok = |s: &str| date_part(s).unwrap();
    assert_eq!(ok("gs.datePart('dayofweek','monday','EE')"), (DatePart::DayOfWeek, 1, Sign::Eq));
    assert_eq!(ok("gs.datePart('month','jan','LE')"), (DatePart::Month, 1, Sign::Le));
    assert_eq!(ok("gs.datePart('month','December','GT')"), (DatePart::Month, 12, Sign::Gt));
    assert_eq!(ok("gs.datePart('quarter','1','GT')"), (DatePart::Quarter, 1, Sign::Gt));
    assert_eq!(ok("gs.datePart('year','2015','LT')"), (DatePart::Year, 2015, Sign::Lt));
    assert_eq!(ok("gs.datePart('week','0','EE')"), (DatePart::Week, 0, Sign::Eq));
    assert_eq!(ok("gs.datePart('hour', '12','GE')"), (DatePart::Hour, 12, Sign::Ge));
    for bad in [
        "gs.datePart('dayofweek','someday','EE')",
        "gs.datePart('hour','24','EE')",
        "gs.datePart('decade','1','EE')",
        "gs.datePart('hour','1','NE')",
        "gs.datePart('hour','1')",
        "gs.daysAgo(1)",
    ] {
        assert!(date_part(bad).is_err(), "{bad}");
    }
    assert_eq!(part_value_name(DatePart::DayOfWeek, 7), "sunday");
    assert_eq!(part_value_name(DatePart::Month, 2), "feb");
    assert_eq!(part_value_name(DatePart::Hour, 2), "2");
}
