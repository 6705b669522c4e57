//! Event time: RFC 3339 text or integer epoch milliseconds.

use serde_json::Value;
use time::format_description::well_known::Rfc3339;
use time::OffsetDateTime;

/// Earliest event time accepted, epoch milliseconds: 0000-01-01T00:00:00Z,
/// where RFC 3339 begins. Every event time lies within
/// [`MIN_MS`]..=[`MAX_MS`], so window arithmetic on it cannot overflow.
pub const MIN_MS: i64 = -62_167_219_200_000;
/// Latest event time accepted: 9999-12-31T23:59:59.999Z, where RFC 3339 ends.
pub const MAX_MS: i64 = 253_402_300_799_999;

/// Now, wall clock, in epoch milliseconds.
pub fn wall_clock_ms() -> i64 {
    (OffsetDateTime::now_utc().unix_timestamp_nanos() / 1_000_000) as i64
}

/// Epoch milliseconds of an RFC 3339 timestamp.
pub fn parse_timestamp_str(s: &str) -> Result<i64, String> {
    if let Some(ms) = utc_millis(s.as_bytes()) {
        return Ok(ms);
    }
    // The text is quoted back bounded: it may be anything an attacker sent.
    OffsetDateTime::parse(s, &Rfc3339)
        .map(|t| ((t.unix_timestamp_nanos() / 1_000_000) as i64).clamp(MIN_MS, MAX_MS))
        .map_err(|e| {
            format!(
                "timestamp {} is not RFC 3339 ({e})",
                super::printable(&format!("{s:?}"), 64)
            )
        })
}

/// The common shape, `YYYY-MM-DDTHH:MM:SS.mmmZ`, read directly (the
/// general parser was a tenth of decoding); `None` for anything else, which
/// the general parser then reads or refuses. Seconds above 59 are left to it.
fn utc_millis(b: &[u8]) -> Option<i64> {
    if b.len() != 24
        || b[4] != b'-'
        || b[7] != b'-'
        || b[10] != b'T'
        || b[13] != b':'
        || b[16] != b':'
        || b[19] != b'.'
        || b[23] != b'Z'
    {
        return None;
    }
    let num = |range: std::ops::Range<usize>| -> Option<i64> {
        b[range].iter().try_fold(0i64, |n, &c| {
            c.is_ascii_digit().then(|| n * 10 + i64::from(c - b'0'))
        })
    };
    let (year, month, day) = (num(0..4)?, num(5..7)?, num(8..10)?);
    let (hour, minute, second, milli) = (num(11..13)?, num(14..16)?, num(17..19)?, num(20..23)?);
    let leap = year % 4 == 0 && (year % 100 != 0 || year % 400 == 0);
    let days_in_month = match month {
        1 | 3 | 5 | 7 | 8 | 10 | 12 => 31,
        4 | 6 | 9 | 11 => 30,
        2 if leap => 29,
        2 => 28,
        _ => return None,
    };
    if day < 1 || day > days_in_month || hour > 23 || minute > 59 || second > 59 {
        return None;
    }
    // Days since 1970-01-01 of a proleptic Gregorian date (H. Hinnant's
    // days_from_civil).
    let y = if month <= 2 { year - 1 } else { year };
    let era = y.div_euclid(400);
    let yoe = y - era * 400;
    let mp = (month + 9) % 12;
    let doy = (153 * mp + 2) / 5 + day - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    let days = era * 146_097 + doe - 719_468;
    Some(((days * 24 + hour) * 60 + minute) * 60_000 + second * 1000 + milli)
}

/// Epoch milliseconds of a timestamp value, or why it is not one.
pub fn parse_timestamp(v: &Value) -> Result<i64, String> {
    match v {
        Value::String(s) => parse_timestamp_str(s),
        Value::Number(n) => match n.as_i64() {
            Some(ms) if (MIN_MS..=MAX_MS).contains(&ms) => Ok(ms),
            Some(ms) => Err(format!(
                "timestamp {ms} is outside the years 0000 to 9999 in epoch milliseconds"
            )),
            None => Err(format!(
                "timestamp {n} is not an integer number of epoch milliseconds"
            )),
        },
        other => Err(format!(
            "timestamp must be an RFC 3339 string or epoch milliseconds, got {}",
            json_type(other)
        )),
    }
}

pub(crate) fn json_type(v: &Value) -> &'static str {
    match v {
        Value::Null => "null",
        Value::Bool(_) => "a boolean",
        Value::Number(_) => "a number",
        Value::String(_) => "a string",
        Value::Array(_) => "an array",
        Value::Object(_) => "an object",
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn general(s: &str) -> Option<i64> {
        OffsetDateTime::parse(s, &Rfc3339)
            .ok()
            .map(|t| (t.unix_timestamp_nanos() / 1_000_000) as i64)
    }

    proptest::proptest! {
        // The direct reading of the common shape gives the general parser's
        // value, and takes nothing the general parser refuses.
        #[test]
        fn the_common_shape_reads_as_the_general_parser_reads_it(
            year in 0u32..10_000, month in 0u32..14, day in 0u32..33,
            hour in 0u32..26, minute in 0u32..62, second in 0u32..62, milli in 0u32..1000,
        ) {
            let s = format!("{year:04}-{month:02}-{day:02}T{hour:02}:{minute:02}:{second:02}.{milli:03}Z");
            let direct = utc_millis(s.as_bytes());
            if direct.is_some() {
                proptest::prop_assert_eq!(direct, general(&s), "{}", s);
            } else {
                // Only leap seconds and invalid dates fall through.
                proptest::prop_assert!(second > 59 || general(&s).is_none(), "{}", s);
            }
        }

        #[test]
        fn anything_else_is_left_to_the_general_parser(s in "[0-9T:.Z+-]{20,26}") {
            if let Some(ms) = utc_millis(s.as_bytes()) {
                proptest::prop_assert_eq!(Some(ms), general(&s), "{}", s);
            }
        }
    }

    #[test]
    fn table() {
        let cases = [
            (json!("2026-11-24T01:02:03.456Z"), Ok(1_795_482_123_456)),
            (
                json!("2026-11-24T02:02:03.456+01:00"),
                Ok(1_795_482_123_456),
            ),
            (json!(1_795_482_123_456i64), Ok(1_795_482_123_456)),
            (json!("yesterday"), Err("not RFC 3339")),
            (json!(i64::MAX), Err("outside the years 0000 to 9999")),
            (json!(i64::MIN), Err("outside the years 0000 to 9999")),
            (json!(MAX_MS), Ok(MAX_MS)),
            (json!(MIN_MS), Ok(MIN_MS)),
            (json!(MAX_MS + 1), Err("outside")),
            (json!("9999-12-31T23:59:59.999Z"), Ok(MAX_MS)),
            (json!("0000-01-01T00:00:00Z"), Ok(MIN_MS)),
            (json!(1.5), Err("not an integer")),
            (json!(true), Err("got a boolean")),
        ];
        for (input, want) in cases {
            match (parse_timestamp(&input), want) {
                (Ok(got), Ok(w)) => assert_eq!(got, w, "{input}"),
                (Err(e), Err(w)) => assert!(e.contains(w), "{input}: {e}"),
                (got, want) => panic!("{input}: got {got:?}, want {want:?}"),
            }
        }
    }
}
