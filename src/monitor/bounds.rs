//! What the engine keeps of each item, and what it counts when it keeps
//! less. Events may be up to `limits.max_event_bytes` (1 MiB by default);
//! state that holds them for later (the feedback join, the captions scored
//! at a window's close) keeps a bounded part of each, so its size follows
//! the number of items, which other limits bound.

use std::borrow::Cow;

use serde::{Deserialize, Serialize};

/// Longest event id kept as it is; a longer one is kept as its first bytes
/// and a hash of the whole (so distinct ids stay distinct).
pub const MAX_STORED_ID_BYTES: usize = 128;
/// Longest caption or reference kept for scoring, in bytes (captions of an
/// alt-text model are tens of words).
pub const MAX_STORED_TEXT_BYTES: usize = 2048;
/// Most references of one feedback event kept (the COCO captions have five).
pub const MAX_REFERENCES: usize = 16;

/// Items kept shorter than they came, by kind.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct Truncations {
    pub event_ids: u64,
    pub captions: u64,
    pub references: u64,
}

impl Truncations {
    /// `(kind, count)` for the metric label.
    pub fn items(&self) -> [(&'static str, u64); 3] {
        [
            ("event_id", self.event_ids),
            ("caption", self.captions),
            ("reference", self.references),
        ]
    }
}

/// State dropped to stay within `limits.max_state_bytes`, by kind, in the
/// order it is dropped.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct Shed {
    /// Inference events waiting for their feedback (they count as expired).
    pub pending_feedback: u64,
    /// Joined captions waiting to be scored when their window closes (they
    /// count as unscored).
    pub scored_captions: u64,
    /// Open windows' samples for the learned checks (those windows report
    /// no learned checks).
    pub learned_samples: u64,
    /// Whole model versions (their open windows closed early).
    pub versions: u64,
}

impl Shed {
    /// `(kind, count)` for the metric label.
    pub fn items(&self) -> [(&'static str, u64); 4] {
        [
            ("pending_feedback", self.pending_feedback),
            ("scored_caption", self.scored_captions),
            ("learned_sample", self.learned_samples),
            ("version", self.versions),
        ]
    }
}

/// The id as stored: itself, or when longer than [`MAX_STORED_ID_BYTES`]
/// its first 64 bytes, `~` and 32 hex digits of its SHA-256.
pub fn storage_id(id: &str) -> Cow<'_, str> {
    if id.len() <= MAX_STORED_ID_BYTES {
        return Cow::Borrowed(id);
    }
    use sha2::Digest as _;
    let digest = sha2::Sha256::digest(id.as_bytes());
    let mut out = String::with_capacity(64 + 1 + 32);
    out.push_str(prefix(id, 64));
    out.push('~');
    for b in &digest[..16] {
        out.push_str(&format!("{b:02x}"));
    }
    Cow::Owned(out)
}

/// Cut `s` to at most [`MAX_STORED_TEXT_BYTES`] at a character boundary;
/// whether it was cut.
pub fn cut_text(s: &mut String) -> bool {
    if s.len() <= MAX_STORED_TEXT_BYTES {
        return false;
    }
    let keep = prefix(s, MAX_STORED_TEXT_BYTES).len();
    s.truncate(keep);
    true
}

/// The longest prefix of `s` of at most `max` bytes that ends on a
/// character boundary.
fn prefix(s: &str, max: usize) -> &str {
    if s.len() <= max {
        return s;
    }
    let mut end = max;
    while !s.is_char_boundary(end) {
        end -= 1;
    }
    &s[..end]
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ids_stay_distinct_and_bounded() {
        let a = "é".repeat(200);
        let mut b = a.clone();
        b.push('x');
        let (sa, sb) = (storage_id(&a), storage_id(&b));
        assert_ne!(sa, sb);
        assert!(sa.len() <= MAX_STORED_ID_BYTES, "{}", sa.len());
        assert!(sa.starts_with("éé"));
        assert_eq!(storage_id("short"), "short");
        assert_eq!(storage_id(&"a".repeat(128)), "a".repeat(128));
    }

    #[test]
    fn text_is_cut_on_a_character_boundary() {
        let mut s = "ü".repeat(2000);
        assert!(cut_text(&mut s));
        assert!(s.len() <= MAX_STORED_TEXT_BYTES && s.len() >= MAX_STORED_TEXT_BYTES - 1);
        let mut t = "ok".to_owned();
        assert!(!cut_text(&mut t));
    }
}
