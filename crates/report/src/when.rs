//! The report's time range from the command line: `--from` / `--to` as RFC 3339 (`2026-11-30T12:00:00Z`)
//! or UTC ms, `--last` as a duration (`90s`, `15m`, `2h`, `3d`) ending at `--to` or now.

use crate::error::{Error, Result};
use crate::stats::Range;

/// Times before this (2010-01-01) are taken for a mistake: seconds given as ms, a stray number.
pub const EARLIEST_MS: i64 = 1_262_304_000_000;
/// The longest range a report covers (92 days): its per-minute figures stay in memory.
pub(crate) const MAX_RANGE_MS: i64 = 92 * 86_400_000;

/// An instant: RFC 3339 or integer UTC ms, not before 2010.
pub fn parse_time(text: &str, what: &str) -> Result<i64> {
    if let Ok(ms) = text.parse::<i64>() {
        if ms < EARLIEST_MS {
            return Err(Error::Invalid(format!(
                "{what} {text}: before 2010 as UTC ms (seconds? give ms, e.g. {}000, or RFC 3339)",
                text
            )));
        }
        return Ok(ms);
    }
    time::OffsetDateTime::parse(text, &time::format_description::well_known::Rfc3339)
        .map(|t| (t.unix_timestamp_nanos() / 1_000_000) as i64)
        .map_err(|e| {
            Error::Invalid(format!(
                "{what} {text:?}: {e}; expected RFC 3339 (2026-11-30T12:00:00Z) or UTC ms"
            ))
        })
}

/// A duration in ms: a positive integer with unit `s`, `m`, `h` or `d`.
pub fn parse_duration(text: &str) -> Result<i64> {
    let bad = || {
        Error::Invalid(format!(
            "--last {text:?}: expected a positive number with s, m, h or d (90s, 15m, 2h, 3d)"
        ))
    };
    let (number, unit) = text.split_at(text.len().saturating_sub(1));
    let n: i64 = number.parse().map_err(|_| bad())?;
    let unit_ms = match unit {
        "s" => 1_000,
        "m" => 60_000,
        "h" => 3_600_000,
        "d" => 86_400_000,
        _ => return Err(bad()),
    };
    if n <= 0 {
        return Err(bad());
    }
    n.checked_mul(unit_ms).ok_or_else(bad)
}

/// The range the arguments ask for; `None` (the data's own span) when none of them is given.
pub fn range_from_args(
    from: Option<&str>,
    to: Option<&str>,
    last: Option<&str>,
    now_ms: i64,
) -> Result<Option<Range>> {
    let to_ms = to.map(|t| parse_time(t, "--to")).transpose()?;
    let from_ms = match (from, last) {
        (Some(_), Some(_)) => return Err(Error::Invalid("give --from or --last, not both".into())),
        (Some(f), None) => Some(parse_time(f, "--from")?),
        (None, Some(l)) => Some(to_ms.unwrap_or(now_ms) - parse_duration(l)?),
        (None, None) => None,
    };
    let range = match (from_ms, to_ms) {
        (None, None) => return Ok(None),
        (Some(f), t) => Range {
            from_ms: f,
            to_ms: t.unwrap_or(now_ms),
        },
        (None, Some(_)) => return Err(Error::Invalid("--to needs --from or --last".into())),
    };
    check_range(range)?;
    Ok(Some(range))
}

/// A range that ends after it starts, within [`MAX_RANGE_MS`] and not before 2010.
pub fn check_range(range: Range) -> Result<()> {
    if range.to_ms <= range.from_ms {
        return Err(Error::Invalid(format!(
            "the range ends ({}) before it starts ({})",
            range.to_ms, range.from_ms
        )));
    }
    if range.from_ms < EARLIEST_MS {
        return Err(Error::Invalid(format!(
            "the range starts before 2010 ({} ms): give --from, or check the data's times",
            range.from_ms
        )));
    }
    if range.duration_ms() > MAX_RANGE_MS {
        return Err(Error::Invalid(format!(
            "the range spans {} days; at most 92 per report (give --from/--to or --last)",
            range.duration_ms() / 86_400_000
        )));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn times_and_durations() {
        assert_eq!(
            parse_time("2026-11-30T00:00:00Z", "--from").unwrap(),
            1_795_996_800_000
        );
        assert_eq!(
            parse_time("1795996800123", "--from").unwrap(),
            1_795_996_800_123
        );
        let e = parse_time("yesterday", "--from").unwrap_err().to_string();
        assert!(e.contains("--from") && e.contains("RFC 3339"), "{e}");
        assert_eq!(parse_duration("15m").unwrap(), 900_000);
        assert_eq!(parse_duration("3d").unwrap(), 259_200_000);
        for bad in ["", "m", "0h", "-1h", "5w", "1.5h"] {
            assert!(parse_duration(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn ranges() {
        const T: i64 = 1_795_996_800_000;
        let now = T + 10_000_000;
        assert_eq!(range_from_args(None, None, None, now).unwrap(), None);
        assert_eq!(
            range_from_args(None, None, Some("1h"), now).unwrap(),
            Some(Range {
                from_ms: now - 3_600_000,
                to_ms: now
            })
        );
        assert_eq!(
            range_from_args(
                Some(&(T + 5).to_string()),
                Some(&(T + 9).to_string()),
                None,
                now
            )
            .unwrap(),
            Some(Range {
                from_ms: T + 5,
                to_ms: T + 9
            })
        );
        assert!(range_from_args(Some("9"), Some("5"), None, now).is_err());
        assert!(range_from_args(Some("1"), None, Some("1h"), now).is_err());
        assert!(range_from_args(None, Some("5"), None, now).is_err());
    }
}
