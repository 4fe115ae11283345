//! Points in time on the command line: an RFC 3339 date and time
//! (`2026-12-01T10:00:00Z`, `2026-12-01T11:00:00.250+01:00`) or a time relative to now
//! (`-10m`: ten minutes ago; units `s`, `m`, `h`, `d`), as milliseconds since the
//! epoch. Pure, apart from the caller's reading of the clock for relative times.

/// A point in time as given: absolute, or relative to when the command runs.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum When {
    /// Milliseconds since the epoch.
    At(i64),
    /// This many milliseconds before now.
    Ago(i64),
}

impl When {
    /// Milliseconds since the epoch, `now_ms` being now.
    pub fn to_ms(self, now_ms: i64) -> i64 {
        match self {
            When::At(ms) => ms,
            When::Ago(ms) => now_ms.saturating_sub(ms),
        }
    }
}

/// Now, in milliseconds since the epoch (what a relative time counts back from).
pub fn now_ms() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| i64::try_from(d.as_millis()).unwrap_or(i64::MAX))
}

/// Parses `-N<unit>` or an RFC 3339 date and time; `None` if `s` is neither (the
/// caller says what it expected).
pub fn parse(s: &str) -> Option<When> {
    if let Some(relative) = s.strip_prefix('-') {
        return parse_ago(relative).map(When::Ago);
    }
    parse_rfc3339(s).map(When::At)
}

/// `10m` as milliseconds.
fn parse_ago(s: &str) -> Option<i64> {
    let unit_at = s.len().checked_sub(1)?;
    let (count, unit) = s.split_at(unit_at);
    if count.is_empty() || !count.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    let unit_ms: i64 = match unit {
        "s" => 1_000,
        "m" => 60_000,
        "h" => 3_600_000,
        "d" => 86_400_000,
        _ => return None,
    };
    count.parse::<i64>().ok()?.checked_mul(unit_ms)
}

/// `YYYY-MM-DDTHH:MM:SS[.fraction](Z|±HH:MM)` as milliseconds since the epoch (`t` or
/// a space may stand for `T`, `z` for `Z`).
fn parse_rfc3339(s: &str) -> Option<i64> {
    let b = s.as_bytes();
    if b.len() < 20 || b[4] != b'-' || b[7] != b'-' || b[13] != b':' || b[16] != b':' {
        return None;
    }
    if !matches!(b[10], b'T' | b't' | b' ') {
        return None;
    }
    let year = digits(&b[0..4])?;
    let month = digits(&b[5..7])?;
    let day = digits(&b[8..10])?;
    let hour = digits(&b[11..13])?;
    let minute = digits(&b[14..16])?;
    let second = digits(&b[17..19])?;
    if !(1..=12).contains(&month)
        || day < 1
        || day > days_in_month(year, month)
        || hour > 23
        || minute > 59
        || second > 60
    {
        return None;
    }
    let mut rest = &b[19..];
    let mut millis = 0;
    if let Some((b'.', fraction)) = rest.split_first() {
        let len = fraction.iter().take_while(|c| c.is_ascii_digit()).count();
        if len == 0 {
            return None;
        }
        // Milliseconds: the first three digits, padded; finer digits are dropped.
        for i in 0..3 {
            millis = millis * 10
                + fraction
                    .get(i)
                    .filter(|_| i < len)
                    .map_or(0, |d| i64::from(d - b'0'));
        }
        rest = &fraction[len..];
    }
    let offset_ms = match rest {
        [b'Z' | b'z'] => 0,
        [sign @ (b'+' | b'-'), h1, h2, b':', m1, m2] => {
            let hours = digits(&[*h1, *h2])?;
            let minutes = digits(&[*m1, *m2])?;
            if hours > 23 || minutes > 59 {
                return None;
            }
            let ms = (hours * 60 + minutes) * 60_000;
            if *sign == b'+' {
                ms
            } else {
                -ms
            }
        }
        _ => return None,
    };
    let days = days_from_civil(year, month, day);
    let seconds = days * 86_400 + hour * 3_600 + minute * 60 + second.min(59);
    Some(seconds * 1_000 + millis - offset_ms)
}

fn digits(b: &[u8]) -> Option<i64> {
    b.iter().try_fold(0i64, |n, &c| {
        c.is_ascii_digit().then(|| n * 10 + i64::from(c - b'0'))
    })
}

fn is_leap(year: i64) -> bool {
    (year % 4 == 0 && year % 100 != 0) || year % 400 == 0
}

fn days_in_month(year: i64, month: i64) -> i64 {
    match month {
        2 if is_leap(year) => 29,
        2 => 28,
        4 | 6 | 9 | 11 => 30,
        _ => 31,
    }
}

/// Days since 1970-01-01 of a proleptic Gregorian date (Howard Hinnant's
/// `days_from_civil`).
fn days_from_civil(year: i64, month: i64, day: i64) -> i64 {
    let y = if month <= 2 { year - 1 } else { year };
    let era = y.div_euclid(400);
    let yoe = y - era * 400;
    let mp = (month + 9) % 12;
    let doy = (153 * mp + 2) / 5 + day - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    era * 146_097 + doe - 719_468
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rfc3339_times_are_read_in_utc() {
        assert_eq!(parse("1970-01-01T00:00:00Z"), Some(When::At(0)));
        // 2026-12-01T10:00:00Z, as `date -u -d 2026-12-01T10:00:00Z +%s` says.
        assert_eq!(
            parse("2026-12-01T10:00:00Z"),
            Some(When::At(1_796_119_200_000))
        );
        assert_eq!(
            parse("2026-12-01T11:00:00.25+01:00"),
            Some(When::At(1_796_119_200_250))
        );
        assert_eq!(
            parse("2026-12-01 09:30:00.123456-00:30"),
            Some(When::At(1_796_119_200_123))
        );
        assert_eq!(
            parse("2024-02-29T00:00:00Z"),
            Some(When::At(1_709_164_800_000))
        );
        assert_eq!(parse("1969-12-31T23:59:59Z"), Some(When::At(-1_000)));
    }

    #[test]
    fn relative_times_count_back_from_now() {
        assert_eq!(parse("-10m"), Some(When::Ago(600_000)));
        assert_eq!(parse("-30s"), Some(When::Ago(30_000)));
        assert_eq!(parse("-2h"), Some(When::Ago(7_200_000)));
        assert_eq!(parse("-1d"), Some(When::Ago(86_400_000)));
        assert_eq!(When::Ago(600_000).to_ms(1_000_000), 400_000);
        assert_eq!(When::At(5).to_ms(1_000_000), 5);
    }

    #[test]
    fn anything_else_is_refused() {
        for bad in [
            "",
            "-",
            "-m",
            "-10",
            "-10w",
            "-1.5h",
            "10m",
            "-+1m",
            "latest",
            "2026-12-01",
            "2026-12-01T10:00:00",
            "2026-13-01T10:00:00Z",
            "2026-02-30T10:00:00Z",
            "2026-12-01T24:00:00Z",
            "2026-12-01T10:00:00.Z",
            "2026-12-01T10:00:00+1:00",
            "2026-12-01X10:00:00Z",
            "-99999999999999999999d",
        ] {
            assert_eq!(parse(bad), None, "{bad:?}");
        }
    }

    /// The absolute time `s` names, if it names one.
    fn at(s: &str) -> Option<i64> {
        match parse(s) {
            Some(When::At(ms)) => Some(ms),
            _ => None,
        }
    }

    #[test]
    fn rfc3339_date_times_from_reset_offsets_become_epoch_milliseconds() {
        assert_eq!(at("1970-01-01T00:00:00Z"), Some(0));
        assert_eq!(at("2026-12-01T10:00:00Z"), Some(1_796_119_200_000));
        assert_eq!(at("2026-12-01T11:00:00.25+01:00"), Some(1_796_119_200_250));
        assert_eq!(
            at("2000-02-29 23:59:59.999999-00:30"),
            Some(951_870_599_999)
        );
        assert_eq!(at("1969-12-31T23:59:59Z"), Some(-1_000));
        for bad in [
            "2026-12-01",
            "2026-12-01T10:00:00",
            "2026-13-01T10:00:00Z",
            "2025-02-29T10:00:00Z",
            "2026-12-01T24:00:00Z",
            "2026-12-01T10:00:00.Z",
            "2026-12-01T10:00:00+0100",
            "2026-12-01T10:00:00+01:00x",
            "20x6-12-01T10:00:00Z",
            "1234",
        ] {
            assert_eq!(at(bad), None, "{bad}");
        }
    }
}
