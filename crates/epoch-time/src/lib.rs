//! Epoch milliseconds to and from RFC 3339 UTC text ("2026-11-25T03:07:57.901Z"),
//! with the civil-calendar arithmetic of Howard Hinnant's algorithms; shared
//! by the host and the plugins that read or show timestamps.

/// Milliseconds since the epoch of an RFC 3339 UTC time ending in `Z`
/// (`YYYY-MM-DDThh:mm:ss[.fraction]Z`, year 1970 or later). Every field is
/// range-checked (no hour 25, minute 61 or February 31; a leap second `:60`
/// is refused), and anything else, multi-byte text included, is `None`.
pub fn parse_rfc3339_ms(text: &str) -> Option<u64> {
    let text = text.strip_suffix('Z')?;
    let (date, time) = text.split_once('T')?;
    let mut d = date.split('-');
    let (year, month, day) = (digits(d.next()?, 4)?, digits(d.next()?, 2)?, digits(d.next()?, 2)?);
    let (hms, frac) = time.split_once('.').unwrap_or((time, "0"));
    let mut t = hms.split(':');
    let (h, m, s) = (digits(t.next()?, 2)?, digits(t.next()?, 2)?, digits(t.next()?, 2)?);
    if d.next().is_some()
        || t.next().is_some()
        || frac.is_empty()
        || !frac.bytes().all(|b| b.is_ascii_digit())
    {
        return None;
    }
    if !(1..=12).contains(&month)
        || !(1..=days_in_month(year, month)).contains(&day)
        || h > 23
        || m > 59
        || s > 59
    {
        return None;
    }
    // ASCII digits only, so slicing by bytes is on character boundaries.
    let ms: u64 = format!("{:0<3}", &frac[..frac.len().min(3)]).parse().ok()?;
    let secs = ((days_from_civil(year, month, day) * 24 + h) * 60 + m) * 60 + s;
    u64::try_from(secs).ok().map(|secs| secs * 1000 + ms)
}

/// Exactly `len` ASCII digits.
fn digits(text: &str, len: usize) -> Option<i64> {
    (text.len() == len && text.bytes().all(|b| b.is_ascii_digit())).then(|| text.parse().ok()).flatten()
}

fn days_in_month(year: i64, month: i64) -> i64 {
    let leap = year % 4 == 0 && (year % 100 != 0 || year % 400 == 0);
    match month {
        2 if leap => 29,
        2 => 28,
        4 | 6 | 9 | 11 => 30,
        _ => 31,
    }
}

/// RFC 3339 UTC text of epoch milliseconds.
pub fn format_rfc3339_ms(ms: u64) -> String {
    let secs = (ms / 1000) as i64;
    let (year, month, day) = civil_from_days(secs.div_euclid(86_400));
    let rem = secs.rem_euclid(86_400);
    format!(
        "{year:04}-{month:02}-{day:02}T{:02}:{:02}:{:02}.{:03}Z",
        rem / 3600,
        rem % 3600 / 60,
        rem % 60,
        ms % 1000
    )
}

/// The UTC calendar date (year, month, day) of epoch milliseconds.
pub fn date_of_ms(ms: u64) -> (i64, i64, i64) {
    civil_from_days((ms / 86_400_000) as i64)
}

fn days_from_civil(year: i64, month: i64, day: i64) -> i64 {
    let y = if month <= 2 { year - 1 } else { year };
    let era = y.div_euclid(400);
    let yoe = y - era * 400;
    let doy = (153 * ((month + 9) % 12) + 2) / 5 + day - 1;
    era * 146_097 + yoe * 365 + yoe / 4 - yoe / 100 + doy - 719_468
}

fn civil_from_days(days: i64) -> (i64, i64, i64) {
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z - era * 146_097;
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let day = doy - (153 * mp + 2) / 5 + 1;
    let month = if mp < 10 { mp + 3 } else { mp - 9 };
    (yoe + era * 400 + i64::from(month <= 2), month, day)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_trips_and_known_dates() {
        assert_eq!(format_rfc3339_ms(0), "1970-01-01T00:00:00.000Z");
        assert_eq!(format_rfc3339_ms(1_700_000_001_500), "2023-11-14T22:13:21.500Z");
        assert_eq!(format_rfc3339_ms(951_782_400_000), "2000-02-29T00:00:00.000Z");
        for ms in [0, 1_500, 951_782_400_000, 1_700_000_001_500, 1_795_576_077_901] {
            assert_eq!(parse_rfc3339_ms(&format_rfc3339_ms(ms)), Some(ms));
        }
        assert_eq!(parse_rfc3339_ms("1970-01-01T00:00:01.5Z"), Some(1500));
        assert_eq!(parse_rfc3339_ms("2026-11-25T03:07:57Z"), Some(1_795_576_077_000));
        assert_eq!(parse_rfc3339_ms("yesterday"), None);
        assert_eq!(date_of_ms(1_795_576_077_901), (2026, 11, 25));
    }

    #[test]
    fn out_of_range_and_multi_byte_text_is_refused() {
        for bad in [
            "2026-11-25T25:00:00Z",
            "2026-11-25T03:61:00Z",
            "2026-11-25T03:07:60Z",
            "2026-02-31T00:00:00Z",
            "2025-02-29T00:00:00Z",
            "2026-13-01T00:00:00Z",
            "2026-00-01T00:00:00Z",
            "2026-11-00T00:00:00Z",
            "2026-11-25T03:07:57.9é1Z",
            "2026-11-25T03:07:57.éZ",
            "2026-11-25T03:07:57.Z",
            "+026-11-25T03:07:57Z",
            "2026-11-25T03:07:57:01Z",
        ] {
            assert_eq!(parse_rfc3339_ms(bad), None, "{bad}");
        }
        assert_eq!(parse_rfc3339_ms("2024-02-29T00:00:00Z"), Some(1_709_164_800_000));
    }

    proptest::proptest! {
        /// Against chrono, on any digits in the right places: the same
        /// instant, or both refuse (chrono accepts a leap second; Warden does not).
        #[test]
        fn agrees_with_chrono(
            y in 1970u32..2400, mo in 0u32..14, d in 0u32..33, h in 0u32..26, mi in 0u32..62,
            s in 0u32..60, frac in "[0-9]{1,9}",
        ) {
            let text = format!("{y:04}-{mo:02}-{d:02}T{h:02}:{mi:02}:{s:02}.{frac}Z");
            let reference = chrono::DateTime::parse_from_rfc3339(&text)
                .ok()
                .map(|t| u64::try_from(t.timestamp_millis()).unwrap());
            proptest::prop_assert_eq!(parse_rfc3339_ms(&text), reference, "{}", text);
        }

        #[test]
        fn never_panics(text in "\\PC{0,40}") {
            let _ = parse_rfc3339_ms(&text);
        }
    }
}
