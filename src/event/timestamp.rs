//! Event time: RFC 3339 text or integer epoch milliseconds.

use serde_json::Value;
use time::format_description::well_known::Rfc3339;
use time::OffsetDateTime;

/// Epoch milliseconds of an RFC 3339 timestamp.
/// Now, wall clock, in epoch milliseconds.
pub fn wall_clock_ms() -> i64 {
    (OffsetDateTime::now_utc().unix_timestamp_nanos() / 1_000_000) as i64
}

pub fn parse_timestamp_str(s: &str) -> Result<i64, String> {
    OffsetDateTime::parse(s, &Rfc3339)
        .map(|t| (t.unix_timestamp_nanos() / 1_000_000) as i64)
        .map_err(|e| format!("timestamp {s:?} is not RFC 3339 ({e})"))
}

/// Epoch milliseconds of a timestamp value, or why it is not one.
pub fn parse_timestamp(v: &Value) -> Result<i64, String> {
    match v {
        Value::String(s) => parse_timestamp_str(s),
        Value::Number(n) => match n.as_i64() {
            Some(ms) => Ok(ms),
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
