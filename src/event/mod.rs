//! The event contracts of `DESIGN.md`: inference-log events and feedback
//! events, decoded from bytes with per-model JSON-pointer locations. Decoding
//! never panics: every bad input becomes a [`Rejection`] with a bounded
//! [`RejectReason`] (usable as a metric label) and a human-readable detail.

mod decode;
mod fast;
mod timestamp;

pub use decode::{Decoder, FeatureValue, FeedbackEvent, InferenceEvent};
pub use timestamp::{parse_timestamp, parse_timestamp_str, wall_clock_ms};

/// Byte order of two short strings (feature names, categories) without a
/// call into libc's `memcmp`, which costs more than the comparison for the
/// few bytes these have. Same order as `str::cmp`.
#[inline]
pub fn cmp_short(a: &str, b: &str) -> std::cmp::Ordering {
    let (a, b) = (a.as_bytes(), b.as_bytes());
    for (x, y) in a.iter().zip(b) {
        if x != y {
            return x.cmp(y);
        }
    }
    a.len().cmp(&b.len())
}

/// `a == b` for short strings, as [`cmp_short`].
#[inline]
pub fn eq_short(a: &str, b: &str) -> bool {
    a.len() == b.len() && a.bytes().zip(b.bytes()).all(|(x, y)| x == y)
}

use std::fmt;

/// Why an event was rejected. The set is closed so it can label metrics.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, serde::Serialize)]
#[serde(rename_all = "snake_case")]
pub enum RejectReason {
    /// Larger than `limits.max_event_bytes`.
    TooLarge,
    /// Not UTF-8 JSON, or not a JSON object.
    InvalidJson,
    /// A required field is absent or null.
    MissingField,
    /// A field holds the wrong JSON type.
    WrongType,
    /// The timestamp is neither RFC 3339 nor integer epoch milliseconds.
    BadTimestamp,
    /// A number that does not fit a finite f64 (e.g. `1e400`).
    NonFinite,
    /// A new model beyond `limits.max_models`.
    TooManyModels,
    /// A new version of a model whose `limits.max_versions_per_model`
    /// versions all hold a role in the training loop.
    TooManyVersions,
    /// A model name, version, feature or embedding name longer than
    /// [`MAX_NAME_BYTES`] or holding control characters: names become metric
    /// labels, log fields and page text, so they are refused, not mangled.
    InvalidName,
    /// A categorical value longer than [`MAX_CATEGORY_BYTES`] or holding
    /// control characters, or a feedback rating outside `feedback.rating_range`.
    InvalidValue,
}

impl RejectReason {
    pub const ALL: [RejectReason; 10] = [
        Self::TooLarge,
        Self::InvalidJson,
        Self::MissingField,
        Self::WrongType,
        Self::BadTimestamp,
        Self::NonFinite,
        Self::TooManyModels,
        Self::TooManyVersions,
        Self::InvalidName,
        Self::InvalidValue,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            Self::TooLarge => "too_large",
            Self::InvalidJson => "invalid_json",
            Self::MissingField => "missing_field",
            Self::WrongType => "wrong_type",
            Self::BadTimestamp => "bad_timestamp",
            Self::NonFinite => "non_finite",
            Self::TooManyModels => "too_many_models",
            Self::TooManyVersions => "too_many_versions",
            Self::InvalidName => "invalid_name",
            Self::InvalidValue => "invalid_value",
        }
    }
}

impl fmt::Display for RejectReason {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// A rejected event: the reason and what exactly was wrong.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
#[error("{reason}: {detail}")]
pub struct Rejection {
    pub reason: RejectReason,
    pub detail: String,
}

impl Rejection {
    /// The detail is bounded ([`MAX_DETAIL_BYTES`]) and printable
    /// ([`printable`]): it quotes hostile input back into a Kafka header, a
    /// log line and a dead-letter file.
    pub(crate) fn new(reason: RejectReason, detail: impl Into<String>) -> Self {
        Self {
            reason,
            detail: printable(&detail.into(), MAX_DETAIL_BYTES),
        }
    }
}

/// Longest rejection detail kept, in bytes (before the note of what was cut).
pub const MAX_DETAIL_BYTES: usize = 512;

/// Longest model name, model version, feature or embedding name, in bytes.
pub const MAX_NAME_BYTES: usize = 128;

/// Largest feedback rating, in absolute value: ratings are scores on a
/// human scale (1 to 5, 0 to 100); far beyond that a sum of ratings loses
/// its precision, and at 1e308 overflows.
pub const MAX_ABS_RATING: f64 = 1e9;

/// Longest categorical value, in bytes. Text features (compared on their
/// token count) may be longer.
pub const MAX_CATEGORY_BYTES: usize = 1024;

/// `s` with control characters escaped (`\n`, `\u{1b}`, as Rust's
/// `escape_debug` writes them; everything else kept) and cut at a character
/// boundary after `max` bytes, saying how long it was: safe for a log line,
/// a header or a terminal whatever it held.
pub fn printable(s: &str, max: usize) -> String {
    let clean = !has_escapes(s);
    if clean && s.len() <= max {
        return s.to_owned();
    }
    let mut out = String::with_capacity(s.len().min(max) + 32);
    for c in s.chars() {
        if out.len() >= max {
            out.push_str(&format!("... ({} bytes in all)", s.len()));
            return out;
        }
        if needs_escape(c) {
            out.extend(c.escape_default());
        } else {
            out.push(c);
        }
    }
    out
}

/// Characters escaped by [`printable`] and refused in names: controls (C0,
/// DEL, C1), the line and paragraph separators (line breaks to JavaScript and
/// some log viewers), and the bidirectional overrides (which reorder the text
/// shown around them).
pub fn needs_escape(c: char) -> bool {
    c.is_control()
        || matches!(c, '\u{2028}' | '\u{2029}' | '\u{202a}'..='\u{202e}' | '\u{2066}'..='\u{2069}')
}

/// Tests of eight bytes at a time (one `u64`, little-endian): each sets bit
/// 7 of the bytes it finds, exactly for the lowest such byte (a byte after
/// it may be set too), which is all a scan for the first or for any needs.
pub(crate) mod swar {
    const ONES: u64 = 0x0101_0101_0101_0101;
    const HIGHS: u64 = 0x8080_8080_8080_8080;

    /// Bytes equal to `b`.
    #[inline(always)]
    pub fn equal(w: u64, b: u8) -> u64 {
        let x = w ^ (ONES * u64::from(b));
        x.wrapping_sub(ONES) & !x & HIGHS
    }

    /// Bytes below 0x20 (control characters).
    #[inline(always)]
    pub fn control(w: u64) -> u64 {
        w.wrapping_sub(ONES * 0x20) & !w & HIGHS
    }

    /// Bytes of 0x80 or more (not ASCII), every one of them.
    #[inline(always)]
    pub fn high(w: u64) -> u64 {
        w & HIGHS
    }
}

/// Whether any character of `s` is one [`needs_escape`] names. Runs for
/// every name and category of every event, so eight bytes are looked at a
/// time: a word with no byte below 0x20, no DEL (0x7f) and no byte of a
/// non-ASCII character cannot hold one; only text with such a byte is
/// decoded into characters and tested exactly.
#[inline]
pub fn has_escapes(s: &str) -> bool {
    let mut chunks = s.as_bytes().chunks_exact(8);
    let mut suspect = false;
    for c in &mut chunks {
        let w = u64::from_le_bytes(c.try_into().expect("eight bytes"));
        // A byte below 0x20, DEL, or a non-ASCII byte: never missed.
        if swar::high(w) | swar::control(w) | swar::equal(w, 0x7f) != 0 {
            suspect = true;
            break;
        }
    }
    if !suspect {
        suspect = chunks
            .remainder()
            .iter()
            .any(|&b| !(0x20..0x7f).contains(&b));
    }
    suspect && s.chars().any(needs_escape)
}

/// Why `name` cannot be a model, version, feature or embedding name, if it cannot.
#[inline]
pub fn check_name(what: &str, name: &str) -> Result<(), Rejection> {
    if name.len() <= MAX_NAME_BYTES && !has_escapes(name) {
        return Ok(());
    }
    name_problem(what, name)
}

/// [`check_name`]'s answer for a name that fails it, kept off the hot path.
#[cold]
#[inline(never)]
fn name_problem(what: &str, name: &str) -> Result<(), Rejection> {
    if name.len() > MAX_NAME_BYTES {
        return Err(Rejection::new(
            RejectReason::InvalidName,
            format!(
                "{what} is {} bytes, at most {MAX_NAME_BYTES} are allowed: {}",
                name.len(),
                printable(name, 64)
            ),
        ));
    }
    if has_escapes(name) {
        return Err(Rejection::new(
            RejectReason::InvalidName,
            format!(
                "{what} holds a control character: {}",
                printable(name, MAX_NAME_BYTES)
            ),
        ));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    proptest::proptest! {
        // The byte scan says what the character test says, for any text.
        #[test]
        fn the_byte_scan_agrees_with_the_character_test(s in "\\PC*|[\\x00-\\x7f]{0,40}|.{0,20}") {
            proptest::prop_assert_eq!(has_escapes(&s), s.chars().any(needs_escape));
        }
    }

    #[test]
    fn escapes_table() {
        for (s, want) in [
            ("plain", false),
            ("模型-ü", false),
            ("a\tb", true),
            ("del\u{7f}", true),
            ("c1\u{85}", true),
            ("bidi\u{202e}", true),
            ("line\u{2028}", true),
            ("", false),
        ] {
            assert_eq!(has_escapes(s), want, "{s:?}");
        }
        assert_eq!(printable("a\nb", 100), "a\\nb");
        let long = printable(&"x".repeat(600), 512);
        assert!(
            long.starts_with(&"x".repeat(512)) && long.ends_with("(600 bytes in all)"),
            "{long}"
        );
    }
}
