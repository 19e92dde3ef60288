//! Times as every output writes them and every `--at` reads them: one grammar, one format.

use std::fmt;

use serde::Serialize;
use time::{Duration, OffsetDateTime, UtcOffset};

use crate::error::{Error, Result};

/// A time in RFC 3339, UTC, whole seconds (`2026-11-27T10:00:00Z`); empty for a year RFC 3339
/// cannot write (outside 0000–9999, which X.509 cannot hold either).
#[derive(Clone, Copy, Debug)]
pub struct Rfc3339Utc(pub OffsetDateTime);

impl Rfc3339Utc {
    /// The text, made on the stack (`core::fmt` padding cost more than the rest of an item's
    /// fields); `None` outside the years RFC 3339 can write.
    fn text(self) -> Option<[u8; 20]> {
        let t = self.0.to_offset(UtcOffset::UTC);
        let year = u16::try_from(t.year()).ok().filter(|y| *y <= 9999)?;
        let mut out = *b"0000-00-00T00:00:00Z";
        let mut put = |at: usize, value: u16, width: usize| {
            let mut v = value;
            for i in (at..at + width).rev() {
                out[i] = b'0' + (v % 10) as u8;
                v /= 10;
            }
        };
        put(0, year, 4);
        put(5, u8::from(t.month()).into(), 2);
        put(8, t.day().into(), 2);
        put(11, t.hour().into(), 2);
        put(14, t.minute().into(), 2);
        put(17, t.second().into(), 2);
        Some(out)
    }
}

impl fmt::Display for Rfc3339Utc {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.text() {
            Some(text) => f.write_str(std::str::from_utf8(&text).map_err(|_| fmt::Error)?),
            None => Ok(()),
        }
    }
}

impl Serialize for Rfc3339Utc {
    fn serialize<S: serde::Serializer>(&self, serializer: S) -> std::result::Result<S::Ok, S::Error> {
        let text = self.text();
        serializer.serialize_str(text.as_ref().and_then(|t| std::str::from_utf8(t).ok()).unwrap_or(""))
    }
}

/// RFC 3339 in UTC, whole seconds: `2026-11-27T10:00:00Z`.
pub fn rfc3339(t: OffsetDateTime) -> String {
    Rfc3339Utc(t).to_string()
}

/// Parses `--at`: `now`, RFC 3339 (`2027-01-01T00:00:00Z`), a date (`2027-01-01`, midnight
/// UTC), or a time relative to `now` (`+90d`, `-12h`).
pub fn parse_time(s: &str, now: OffsetDateTime) -> Result<OffsetDateTime> {
    let invalid = |reason: &str| Error::InvalidValue { field: "time", value: s.to_owned(), reason: reason.to_owned() };
    let t = s.trim();
    if t == "now" {
        return Ok(now);
    }
    if let Some((sign, rest)) = t.strip_prefix('+').map(|r| (1, r)).or_else(|| t.strip_prefix('-').map(|r| (-1, r))) {
        let d = kubepki_pki::parse_duration(rest).map_err(|_| invalid("expected a relative time like +90d or -12h"))?;
        let d = Duration::try_from(d).map_err(|_| invalid("too large"))?;
        return now.checked_add(if sign < 0 { -d } else { d }).ok_or_else(|| invalid("out of range"));
    }
    if let Ok(t) = OffsetDateTime::parse(t, &time::format_description::well_known::Rfc3339) {
        return Ok(t);
    }
    let date_format = time::macros::format_description!("[year]-[month]-[day]");
    if let Ok(d) = time::Date::parse(t, &date_format) {
        return Ok(d.midnight().assume_utc());
    }
    Err(invalid("expected RFC 3339 (2027-01-01T00:00:00Z), a date (2027-01-01), now, or +90d / -12h"))
}

/// apimachinery's `duration.ShortHumanDuration` of whole seconds: `<invalid>` below −1 s,
/// `0s` at −1 s, then `Ns`, `Nm`, `Nh`, `Nd` (below 365 days) and `Ny`.
pub fn short_human_duration(seconds: i64) -> String {
    if seconds < -1 {
        return "<invalid>".into();
    }
    if seconds < 0 {
        return "0s".into();
    }
    if seconds < 60 {
        return format!("{seconds}s");
    }
    let minutes = seconds / 60;
    if minutes < 60 {
        return format!("{minutes}m");
    }
    let hours = seconds / 3600;
    if hours < 24 {
        return format!("{hours}h");
    }
    if hours < 24 * 365 {
        return format!("{}d", hours / 24);
    }
    format!("{}y", hours / 24 / 365)
}

#[cfg(test)]
mod tests {
    use time::format_description::well_known::Rfc3339;

    use super::*;

    #[test]
    fn times_are_written_in_utc_whole_seconds() {
        let t = OffsetDateTime::parse("2027-03-04T05:06:07.89+02:00", &Rfc3339).unwrap();
        assert_eq!(rfc3339(t), "2027-03-04T03:06:07Z");
        assert_eq!(rfc3339(OffsetDateTime::UNIX_EPOCH), "1970-01-01T00:00:00Z");
        let end = OffsetDateTime::parse("9999-12-31T23:59:59Z", &Rfc3339).unwrap();
        assert_eq!(serde_json::to_string(&Rfc3339Utc(end)).unwrap(), "\"9999-12-31T23:59:59Z\"");
        let early = OffsetDateTime::parse("0001-02-03T04:05:06Z", &Rfc3339).unwrap();
        assert_eq!(rfc3339(early), "0001-02-03T04:05:06Z");
        let before = time::Date::from_calendar_date(-1, time::Month::January, 1).unwrap().midnight().assume_utc();
        assert_eq!(
            (rfc3339(before), serde_json::to_string(&Rfc3339Utc(before)).unwrap()),
            (String::new(), "\"\"".into())
        );
    }

    #[test]
    fn times_parse_absolute_and_relative() {
        let now = OffsetDateTime::parse("2026-01-01T12:00:00Z", &Rfc3339).unwrap();
        assert_eq!(parse_time("now", now).unwrap(), now);
        assert_eq!(rfc3339(parse_time("+90d", now).unwrap()), "2026-04-01T12:00:00Z");
        assert_eq!(rfc3339(parse_time("-12h", now).unwrap()), "2026-01-01T00:00:00Z");
        assert_eq!(rfc3339(parse_time("2027-03-04T05:06:07+01:00", now).unwrap()), "2027-03-04T04:06:07Z");
        assert_eq!(rfc3339(parse_time("2027-03-04", now).unwrap()), "2027-03-04T00:00:00Z");
        for bad in ["", "tomorrow", "+", "+3x", "2027-13-01"] {
            assert!(parse_time(bad, now).unwrap_err().to_string().starts_with("invalid time"), "{bad}");
        }
    }
}
