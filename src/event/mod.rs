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
}

impl RejectReason {
    pub const ALL: [RejectReason; 7] = [
        Self::TooLarge,
        Self::InvalidJson,
        Self::MissingField,
        Self::WrongType,
        Self::BadTimestamp,
        Self::NonFinite,
        Self::TooManyModels,
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
    pub(crate) fn new(reason: RejectReason, detail: impl Into<String>) -> Self {
        Self {
            reason,
            detail: detail.into(),
        }
    }
}
