//! ServiceNow's date-time: `yyyy-MM-dd HH:mm:ss`, always UTC, no zone suffix.

use std::fmt;
use std::time::{SystemTime, UNIX_EPOCH};

/// Seconds since the Unix epoch, UTC.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct DateTime(i64);

#[derive(Debug, thiserror::Error, PartialEq, Eq)]
#[error("expected a date-time as yyyy-MM-dd HH:mm:ss (UTC)")]
pub struct InvalidDateTime;

/// Milliseconds since the epoch, now (0 before 1970, saturated far after).
pub fn now_ms() -> i64 {
    SystemTime::now().duration_since(UNIX_EPOCH).map_or(0, |d| i64::try_from(d.as_millis()).unwrap_or(i64::MAX))
}

impl DateTime {
    pub fn now() -> Self {
        let secs = SystemTime::now().duration_since(UNIX_EPOCH).map(|d| d.as_secs() as i64).unwrap_or(0);
        Self(secs)
    }

    pub fn from_unix(secs: i64) -> Self {
        Self(secs)
    }

    /// The second a unix time in milliseconds falls in (the clock of statistics, sessions and
    /// the outbox: [`now_ms`]).
    pub fn from_unix_ms(ms: i64) -> Self {
        Self(ms.div_euclid(1000))
    }

    pub fn unix(self) -> i64 {
        self.0
    }

    /// The UTC calendar date as `(year, month, day)`.
    pub fn date(self) -> (i64, u32, u32) {
        civil_from_days(self.0.div_euclid(86_400))
    }

    /// Midnight UTC of a calendar date (`month` 1–12, `day` valid for the month).
    pub fn from_date(year: i64, month: u32, day: u32) -> Self {
        Self(days_from_civil(year, month, day) * 86_400)
    }

    /// Seconds since midnight UTC.
    pub fn seconds_of_day(self) -> i64 {
        self.0.rem_euclid(86_400)
    }

    /// The ISO weekday: 1 for Monday to 7 for Sunday.
    pub fn weekday(self) -> u32 {
        // 1970-01-01 was a Thursday.
        (self.0.div_euclid(86_400) + 3).rem_euclid(7) as u32 + 1
    }

    /// Parses `yyyy-MM-dd HH:mm:ss`; also accepts ISO 8601's `T` separator and a trailing `Z`,
    /// which monitoring tools commonly send.
    pub fn parse(s: &str) -> Result<Self, InvalidDateTime> {
        let s = s.trim();
        let s = s.strip_suffix('Z').unwrap_or(s);
        let b = s.as_bytes();
        if b.len() != 19 || b[4] != b'-' || b[7] != b'-' || !(b[10] == b' ' || b[10] == b'T') {
            return Err(InvalidDateTime);
        }
        if b[13] != b':' || b[16] != b':' {
            return Err(InvalidDateTime);
        }
        let num = |r: std::ops::Range<usize>| -> Result<i64, InvalidDateTime> {
            let part = &s[r];
            if !part.bytes().all(|c| c.is_ascii_digit()) {
                return Err(InvalidDateTime);
            }
            part.parse().map_err(|_| InvalidDateTime)
        };
        let (y, mo, d) = (num(0..4)?, num(5..7)?, num(8..10)?);
        let (h, mi, se) = (num(11..13)?, num(14..16)?, num(17..19)?);
        if !(1..=12).contains(&mo) || d < 1 || d > days_in_month(y, mo as u32) as i64 {
            return Err(InvalidDateTime);
        }
        if h > 23 || mi > 59 || se > 59 {
            return Err(InvalidDateTime);
        }
        let days = days_from_civil(y, mo as u32, d as u32);
        Ok(Self(days * 86_400 + h * 3600 + mi * 60 + se))
    }
}

impl fmt::Display for DateTime {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let (y, m, d) = self.date();
        let secs = self.0.rem_euclid(86_400);
        write!(f, "{y:04}-{m:02}-{d:02} {:02}:{:02}:{:02}", secs / 3600, secs % 3600 / 60, secs % 60)
    }
}

fn is_leap(y: i64) -> bool {
    (y % 4 == 0 && y % 100 != 0) || y % 400 == 0
}

/// Days in `m` (1–12) of year `y`.
pub fn days_in_month(y: i64, m: u32) -> u32 {
    match m {
        1 | 3 | 5 | 7 | 8 | 10 | 12 => 31,
        4 | 6 | 9 | 11 => 30,
        _ if is_leap(y) => 29,
        _ => 28,
    }
}

// Howard Hinnant's days_from_civil / civil_from_days (proleptic Gregorian calendar).
fn days_from_civil(y: i64, m: u32, d: u32) -> i64 {
    let y = if m <= 2 { y - 1 } else { y };
    let era = y.div_euclid(400);
    let yoe = y - era * 400;
    let m = m as i64;
    let doy = (153 * (if m > 2 { m - 3 } else { m + 9 }) + 2) / 5 + d as i64 - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    era * 146_097 + doe - 719_468
}

fn civil_from_days(z: i64) -> (i64, u32, u32) {
    let z = z + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z - era * 146_097;
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let y = yoe + era * 400;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = (doy - (153 * mp + 2) / 5 + 1) as u32;
    let m = if mp < 10 { mp + 3 } else { mp - 9 } as u32;
    (if m <= 2 { y + 1 } else { y }, m, d)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn formats_known_instants() {
        assert_eq!(DateTime::from_unix(0).to_string(), "1970-01-01 00:00:00");
        assert_eq!(DateTime::from_unix(137).to_string(), "1970-01-01 00:02:17");
        assert_eq!(DateTime::from_unix(1_714_558_502).to_string(), "2024-05-01 10:15:02");
        assert_eq!(DateTime::from_unix(951_782_400).to_string(), "2000-02-29 00:00:00");
    }

    #[test]
    fn calendar_parts() {
        let t = DateTime::parse("2024-05-01 10:15:02").unwrap();
        assert_eq!((t.weekday(), t.seconds_of_day()), (3, 36_902), "a Wednesday");
        assert_eq!(DateTime::from_date(2024, 5, 1).to_string(), "2024-05-01 00:00:00");
        assert_eq!(DateTime::parse("2026-12-06 23:00:00").unwrap().weekday(), 7, "a Sunday");
        assert_eq!((days_in_month(2024, 2), days_in_month(2100, 2), days_in_month(2000, 2)), (29, 28, 29));
    }

    #[test]
    fn parse_round_trips_over_many_days() {
        for secs in (0..4_000_000_000i64).step_by(7_777_777) {
            let dt = DateTime::from_unix(secs);
            assert_eq!(DateTime::parse(&dt.to_string()), Ok(dt));
        }
    }

    #[test]
    fn parse_accepts_iso_and_rejects_garbage() {
        assert_eq!(DateTime::parse("2024-05-01T10:15:02Z"), Ok(DateTime::from_unix(1_714_558_502)));
        for bad in [
            "2024-02-30 00:00:00",
            "2024-13-01 00:00:00",
            "2024-05-01 24:00:00",
            "yesterday",
            "2024-05-01",
            "+024-05-01 10:15:02",
        ] {
            assert_eq!(DateTime::parse(bad), Err(InvalidDateTime), "{bad}");
        }
    }
}
