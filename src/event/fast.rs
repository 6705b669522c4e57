//! A fast path for decoding events in the contract's default layout: one
//! pass over the bytes with a hand-written JSON scanner, every string
//! borrowed from the input, no `serde_json::Value` tree and no allocation
//! beyond the event's three vectors. (serde into borrowed fields was half the
//! streaming path; this is about a quarter of that.)
//!
//! It only ever accepts: anything unusual returns `None` and the general
//! decoder, which owns every rejection reason, decides. Unusual means a
//! string with an escape, a duplicate key, a type the field does not expect,
//! a nested value inside `features` or `prediction`, a number that is not
//! finite, a model with its own field locations, or JSON that is not valid.
//! Numbers are read as serde_json reads them (integers as `u64`/`i64`, then
//! converted; the rest correctly rounded, as with its `float_roundtrip`), so
//! an accepted event is the general decoder's event exactly; property tests
//! in `decode.rs` check both agree.

use std::borrow::Cow;

use super::decode::{FeatureValue, InferenceEvent};
use super::timestamp::parse_timestamp_str;
use crate::config::ModelConfig;

/// Nesting deeper than this goes to the general decoder (serde_json's own
/// limit is 128).
const MAX_DEPTH: u32 = 64;

/// Bytes that end the fast scan of a string: the closing quote, an escape,
/// a control character (not allowed in JSON strings).
const STOPS: [bool; 256] = {
    let mut t = [false; 256];
    let mut c = 0;
    while c < 0x20 {
        t[c] = true;
        c += 1;
    }
    t[b'"' as usize] = true;
    t[b'\\' as usize] = true;
    // DEL: valid JSON, but not in a name (the general decoder says so).
    t[0x7f] = true;
    t
};

/// Index of the first byte of `s` in [`STOPS`], and whether every byte
/// before it is ASCII. Eight bytes at a time (a word has a stop when one of
/// its bytes is `"`, `\\` or below 0x20), then byte by byte in the last few.
#[inline(always)]
fn stop_position(s: &[u8]) -> Option<(usize, bool)> {
    use super::swar;
    let mut high = 0;
    let mut i = 0;
    while let Some(chunk) = s.get(i..i + 8) {
        let w = u64::from_le_bytes(chunk.try_into().expect("eight bytes"));
        let hits =
            swar::equal(w, b'"') | swar::equal(w, b'\\') | swar::control(w) | swar::equal(w, 0x7f);
        if hits != 0 {
            let p = hits.trailing_zeros() as usize / 8;
            // Only the bytes before the stop belong to the string.
            high |= swar::high(w) & ((1u64 << (8 * p)) - 1);
            return Some((i + p, high == 0));
        }
        high |= swar::high(w);
        i += 8;
    }
    let p = s[i..].iter().position(|&c| STOPS[usize::from(c)])?;
    Some((i + p, high == 0 && s[i..i + p].is_ascii()))
}

/// Powers of ten that are exact doubles.
const POW10: [f64; 23] = [
    1e0, 1e1, 1e2, 1e3, 1e4, 1e5, 1e6, 1e7, 1e8, 1e9, 1e10, 1e11, 1e12, 1e13, 1e14, 1e15, 1e16,
    1e17, 1e18, 1e19, 1e20, 1e21, 1e22,
];

/// A JSON number as serde_json parses it.
#[derive(Clone, Copy)]
enum Num {
    U64(u64),
    I64(i64),
    F64(f64),
}

impl Num {
    fn as_f64(self) -> f64 {
        match self {
            Self::U64(n) => n as f64,
            Self::I64(n) => n as f64,
            Self::F64(x) => x,
        }
    }
}

/// A scalar JSON value.
enum Scalar<'a> {
    Null,
    Bool(bool),
    Num(Num),
    Str(&'a str),
}

/// Reads JSON from bytes that need not be UTF-8: outside strings it takes
/// only ASCII, and each string is checked as it is read (checking the whole
/// input first was a tenth of decoding).
struct Scanner<'a> {
    b: &'a [u8],
    i: usize,
    /// Every string read so far was ASCII (so, past the stops, free of
    /// every character a name may not hold).
    ascii: bool,
}

impl<'a> Scanner<'a> {
    #[inline(always)]
    fn ws(&mut self) {
        while let Some(b' ' | b'\t' | b'\n' | b'\r') = self.b.get(self.i) {
            self.i += 1;
        }
    }

    #[inline(always)]
    fn peek(&self) -> Option<u8> {
        self.b.get(self.i).copied()
    }

    #[inline(always)]
    fn eat(&mut self, c: u8) -> Option<()> {
        (self.peek()? == c).then(|| self.i += 1)
    }

    /// A string without escapes or control characters, borrowed.
    #[inline(always)]
    fn string(&mut self) -> Option<&'a str> {
        self.eat(b'"')?;
        let start = self.i;
        let rest = &self.b[start..];
        let (len, ascii) = stop_position(rest)?;
        if rest[len] != b'"' {
            return None;
        }
        self.i = start + len + 1;
        let bytes = &rest[..len];
        self.ascii &= ascii;
        if ascii {
            // SAFETY: every byte is below 0x80 (`stop_position` checked the
            // bytes before the stop), and ASCII is valid UTF-8. Measured:
            // `from_utf8` per string, or over the whole input, cost 2-3 % of
            // the streaming path.
            #[allow(unsafe_code)]
            Some(unsafe { std::str::from_utf8_unchecked(bytes) })
        } else {
            std::str::from_utf8(bytes).ok()
        }
    }

    /// Pass over digits, folding them into `m` (`None` once it overflows).
    #[inline(always)]
    fn digits(&mut self, m: &mut Option<u64>) -> usize {
        let start = self.i;
        while let Some(c @ b'0'..=b'9') = self.peek() {
            *m = m
                .and_then(|m| m.checked_mul(10))
                .and_then(|m| m.checked_add(u64::from(c - b'0')));
            self.i += 1;
        }
        self.i - start
    }

    /// A number in JSON's grammar, valued as serde_json values it.
    fn number(&mut self) -> Option<Num> {
        let start = self.i;
        let negative = self.peek() == Some(b'-');
        if negative {
            self.i += 1;
        }
        let int_start = self.i;
        // All the digits as one integer, and the power of ten to scale it by.
        let mut m = Some(0u64);
        match self.digits(&mut m) {
            0 => return None,
            // No leading zeros ("01" is not JSON).
            n if n > 1 && self.b[int_start] == b'0' => return None,
            _ => {}
        }
        let mut integer = true;
        let mut exp10: i64 = 0;
        if self.peek() == Some(b'.') {
            self.i += 1;
            let n = self.digits(&mut m);
            if n == 0 {
                return None;
            }
            exp10 -= n as i64;
            integer = false;
        }
        if let Some(b'e' | b'E') = self.peek() {
            self.i += 1;
            let sign = match self.peek() {
                Some(b'-') => {
                    self.i += 1;
                    -1
                }
                Some(b'+') => {
                    self.i += 1;
                    1
                }
                _ => 1,
            };
            let mut e = Some(0u64);
            if self.digits(&mut e) == 0 {
                return None;
            }
            // An exponent too large for this is left to the full parser.
            exp10 = match e.filter(|&e| e < 100_000) {
                Some(e) => exp10 + sign * e as i64,
                None => i64::MAX,
            };
            integer = false;
        }
        if integer {
            match m {
                Some(n) if !negative => return Some(Num::U64(n)),
                // serde_json: negative integers that fit are i64; `-0` and
                // those below i64::MIN are floats.
                Some(n) => {
                    let neg = (n as i64).wrapping_neg();
                    return Some(if neg >= 0 {
                        Num::F64(-(n as f64))
                    } else {
                        Num::I64(neg)
                    });
                }
                None => {}
            }
        }
        // Clinger's fast path: an integer below 2^53 and a power of ten up to
        // 1e22 are both exact doubles, so one multiplication or division
        // rounds correctly, as the full parser does.
        if let Some(m) = m.filter(|&m| m <= 1 << 53) {
            if (-22..=22).contains(&exp10) {
                let p = POW10[exp10.unsigned_abs() as usize];
                let x = if exp10 < 0 {
                    m as f64 / p
                } else {
                    m as f64 * p
                };
                return Some(Num::F64(if negative { -x } else { x }));
            }
        }
        let x: f64 = std::str::from_utf8(&self.b[start..self.i])
            .ok()?
            .parse()
            .ok()?;
        // serde_json refuses numbers out of f64's range; the general decoder
        // reports them.
        x.is_finite().then_some(Num::F64(x))
    }

    #[inline(always)]
    fn literal(&mut self, word: &[u8]) -> Option<()> {
        self.b[self.i..]
            .starts_with(word)
            .then(|| self.i += word.len())
    }

    /// A scalar value; `None` for anything else (objects and arrays too).
    #[inline(always)]
    fn scalar(&mut self) -> Option<Scalar<'a>> {
        Some(match self.peek()? {
            b'"' => Scalar::Str(self.string()?),
            b'n' => {
                self.literal(b"null")?;
                Scalar::Null
            }
            b't' => {
                self.literal(b"true")?;
                Scalar::Bool(true)
            }
            b'f' => {
                self.literal(b"false")?;
                Scalar::Bool(false)
            }
            _ => Scalar::Num(self.number()?),
        })
    }

    /// Check and pass over any value.
    fn skip(&mut self, depth: u32) -> Option<()> {
        if depth > MAX_DEPTH {
            return None;
        }
        match self.peek()? {
            b'{' => {
                self.i += 1;
                self.ws();
                if self.eat(b'}').is_some() {
                    return Some(());
                }
                loop {
                    self.string()?;
                    self.ws();
                    self.eat(b':')?;
                    self.ws();
                    self.skip(depth + 1)?;
                    self.ws();
                    if self.eat(b',').is_some() {
                        self.ws();
                        continue;
                    }
                    return self.eat(b'}');
                }
            }
            b'[' => {
                self.i += 1;
                self.ws();
                if self.eat(b']').is_some() {
                    return Some(());
                }
                loop {
                    self.skip(depth + 1)?;
                    self.ws();
                    if self.eat(b',').is_some() {
                        self.ws();
                        continue;
                    }
                    return self.eat(b']');
                }
            }
            _ => self.scalar().map(drop),
        }
    }

    /// The entries of an object, or `null`, calling `entry` with each key
    /// once the scanner stands on its value.
    fn object(&mut self, mut entry: impl FnMut(&mut Self, &'a str) -> Option<()>) -> Option<()> {
        if self.peek()? == b'n' {
            return self.literal(b"null");
        }
        self.eat(b'{')?;
        self.ws();
        if self.eat(b'}').is_some() {
            return Some(());
        }
        loop {
            let key = self.string()?;
            self.ws();
            self.eat(b':')?;
            self.ws();
            entry(self, key)?;
            self.ws();
            if self.eat(b',').is_some() {
                self.ws();
                continue;
            }
            return self.eat(b'}');
        }
    }

    /// An array of numbers.
    fn numbers(&mut self) -> Option<Vec<f64>> {
        self.eat(b'[')?;
        self.ws();
        let mut out = Vec::new();
        if self.eat(b']').is_some() {
            return Some(out);
        }
        loop {
            out.push(self.number()?.as_f64());
            self.ws();
            if self.eat(b',').is_some() {
                self.ws();
                continue;
            }
            self.eat(b']')?;
            return Some(out);
        }
    }
}

type Pairs<'a> = Vec<(Cow<'a, str>, FeatureValue<'a>)>;

fn feature(s: Scalar<'_>) -> FeatureValue<'_> {
    match s {
        Scalar::Null => FeatureValue::Null,
        Scalar::Bool(b) => FeatureValue::Category(Cow::Borrowed(if b { "true" } else { "false" })),
        Scalar::Str(s) => FeatureValue::Category(Cow::Borrowed(s)),
        Scalar::Num(n) => FeatureValue::Number(n.as_f64()),
    }
}

/// Sorted by name; `None` on a duplicate name (the general decoder keeps
/// the last one).
fn sorted(mut pairs: Pairs<'_>) -> Option<Pairs<'_>> {
    pairs.sort_by(|a, b| super::cmp_short(&a.0, &b.0));
    if pairs.windows(2).any(|w| super::eq_short(&w[0].0, &w[1].0)) {
        return None;
    }
    Some(pairs)
}

/// An embedding by name; `None` for `null`.
type NamedVector<'a> = (&'a str, Option<Vec<f64>>);

/// Top-level fields, each at most once.
#[derive(Default)]
struct Fields<'a> {
    event_id: Option<Scalar<'a>>,
    timestamp: Option<Scalar<'a>>,
    model: Option<Scalar<'a>>,
    model_version: Option<Scalar<'a>>,
    latency_ms: Option<Scalar<'a>>,
    error: Option<Scalar<'a>>,
    features: Option<Pairs<'a>>,
    prediction: Option<Pairs<'a>>,
    /// `None` for a `null` vector (dropped, after the duplicate check).
    embeddings: Option<Vec<NamedVector<'a>>>,
}

fn set<T>(slot: &mut Option<T>, v: T) -> Option<()> {
    // A duplicate top-level key: serde_json keeps the last, the fast path
    // leaves it to the general decoder.
    if slot.is_some() {
        return None;
    }
    *slot = Some(v);
    Some(())
}

fn scalar_pairs<'a>(sc: &mut Scanner<'a>) -> Option<Pairs<'a>> {
    let mut out = Vec::with_capacity(12);
    sc.object(|sc, key| {
        out.push((Cow::Borrowed(key), feature(sc.scalar()?)));
        Some(())
    })?;
    Some(out)
}

/// The contract's top-level keys.
enum Top {
    EventId,
    Timestamp,
    Model,
    ModelVersion,
    LatencyMs,
    Error,
    Features,
    Prediction,
    Embeddings,
    Other,
}

/// Which top-level key `key` is: by length first, then a short comparison
/// (a `match` on strings calls libc's `bcmp` for each candidate).
#[inline(always)]
fn top_level(key: &str) -> Top {
    let is = |word: &str| super::eq_short(key, word);
    match key.len() {
        5 if is("model") => Top::Model,
        5 if is("error") => Top::Error,
        8 if is("event_id") => Top::EventId,
        8 if is("features") => Top::Features,
        9 if is("timestamp") => Top::Timestamp,
        10 if is("prediction") => Top::Prediction,
        10 if is("latency_ms") => Top::LatencyMs,
        10 if is("embeddings") => Top::Embeddings,
        13 if is("model_version") => Top::ModelVersion,
        _ => Top::Other,
    }
}

fn fields<'a>(sc: &mut Scanner<'a>) -> Option<Fields<'a>> {
    let mut f = Fields::default();
    sc.ws();
    sc.eat(b'{')?;
    sc.ws();
    if sc.eat(b'}').is_none() {
        loop {
            let key = sc.string()?;
            sc.ws();
            sc.eat(b':')?;
            sc.ws();
            match top_level(key) {
                Top::EventId => set(&mut f.event_id, sc.scalar()?)?,
                Top::Timestamp => set(&mut f.timestamp, sc.scalar()?)?,
                Top::Model => set(&mut f.model, sc.scalar()?)?,
                Top::ModelVersion => set(&mut f.model_version, sc.scalar()?)?,
                Top::LatencyMs => set(&mut f.latency_ms, sc.scalar()?)?,
                Top::Error => set(&mut f.error, sc.scalar()?)?,
                Top::Features => set(&mut f.features, scalar_pairs(sc)?)?,
                Top::Prediction => set(&mut f.prediction, scalar_pairs(sc)?)?,
                Top::Embeddings => {
                    let mut out = Vec::new();
                    sc.object(|sc, key| {
                        let v = if sc.peek()? == b'n' {
                            sc.literal(b"null")?;
                            None
                        } else {
                            Some(sc.numbers()?)
                        };
                        out.push((key, v));
                        Some(())
                    })?;
                    set(&mut f.embeddings, out)?
                }
                Top::Other => sc.skip(1)?,
            }
            sc.ws();
            if sc.eat(b',').is_some() {
                sc.ws();
                continue;
            }
            sc.eat(b'}')?;
            break;
        }
    }
    sc.ws();
    (sc.i == sc.b.len()).then_some(f)
}

/// Decode `bytes` when the event and `model` settings allow the fast path;
/// `None` sends the event to the general decoder. `ascii` is set to whether
/// every string of the event was ASCII: then none holds a control character
/// (the scan stops at those and at DEL), and only lengths are left to check.
/// (An out-parameter: a tuple return copied the event.)
pub fn decode<'a, 'c>(
    bytes: &'a [u8],
    model_for: impl Fn(&str) -> Option<&'c ModelConfig>,
    ascii: &mut bool,
) -> Option<InferenceEvent<'a>> {
    let mut sc = Scanner {
        b: bytes,
        i: 0,
        ascii: true,
    };
    let f = fields(&mut sc)?;
    let model = match f.model? {
        Scalar::Str(s) if !s.is_empty() => s,
        _ => return None,
    };
    let mc = model_for(model)?;
    let event_id = match f.event_id? {
        Scalar::Str(s) if !s.is_empty() => Cow::Borrowed(s),
        Scalar::Num(Num::U64(n)) => Cow::Owned(n.to_string()),
        Scalar::Num(Num::I64(n)) => Cow::Owned(n.to_string()),
        _ => return None,
    };
    let timestamp_ms = match f.timestamp? {
        Scalar::Str(s) => parse_timestamp_str(s).ok()?,
        Scalar::Num(Num::U64(n)) => i64::try_from(n).ok()?,
        Scalar::Num(Num::I64(n)) => n,
        _ => return None,
    };
    // Out of range: the general decoder says why.
    if !(super::timestamp::MIN_MS..=super::timestamp::MAX_MS).contains(&timestamp_ms) {
        return None;
    }
    let model_version = match f.model_version {
        None | Some(Scalar::Null) => None,
        Some(Scalar::Str(s)) => Some(Cow::Borrowed(s)),
        _ => return None,
    };
    let mut features = sorted(f.features.unwrap_or_default())?;
    if !mc.monitors_all() {
        features.retain(|(k, _)| mc.monitors(k));
    }
    let prediction = sorted(f.prediction.unwrap_or_default())?;
    let mut embeddings = f.embeddings.unwrap_or_default();
    embeddings.sort_by(|a, b| a.0.cmp(b.0));
    if embeddings.windows(2).any(|w| w[0].0 == w[1].0) {
        return None;
    }
    let embeddings = embeddings
        .into_iter()
        .filter_map(|(k, v)| Some((Cow::Borrowed(k), v?)))
        .collect();
    let latency_ms = match f.latency_ms {
        None | Some(Scalar::Null) => None,
        Some(Scalar::Num(n)) => Some(n.as_f64()),
        _ => return None,
    };
    let error = match f.error {
        None | Some(Scalar::Null) => None,
        Some(Scalar::Str(s)) => Some(Cow::Borrowed(s)),
        _ => return None,
    };
    *ascii = sc.ascii;
    Some(InferenceEvent {
        event_id,
        timestamp_ms,
        model: Cow::Borrowed(model),
        model_version,
        features,
        prediction,
        embeddings,
        latency_ms,
        error,
        caption_facts: None,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn scan(literal: &str) -> Option<Num> {
        let mut sc = Scanner {
            b: literal.as_bytes(),
            i: 0,
            ascii: true,
        };
        let n = sc.number()?;
        (sc.i == literal.len()).then_some(n)
    }

    proptest::proptest! {
        // Every number the scanner accepts has serde_json's value, bit for
        // bit; what serde_json refuses, the scanner refuses.
        #[test]
        fn numbers_are_valued_as_serde_json_values_them(
            literal in "-?(0|[1-9][0-9]{0,21})(\\.[0-9]{1,20})?([eE][+-]?[0-9]{1,3})?",
        ) {
            let ours = scan(&literal).map(|n| n.as_f64().to_bits());
            let theirs = serde_json::from_str::<f64>(&literal).ok().map(f64::to_bits);
            proptest::prop_assert_eq!(ours, theirs, "{}", literal);
        }

        // The word-at-a-time scan finds the first stop byte the byte table
        // finds, wherever it lies and whatever the bytes around it.
        #[test]
        fn stop_scan_matches_the_byte_table(
            bytes in proptest::collection::vec(
                proptest::prop_oneof![
                    proptest::num::u8::ANY,
                    proptest::strategy::Just(b'"'),
                    proptest::strategy::Just(b'\\'),
                    proptest::strategy::Just(0x7fu8),
                    0x20u8..0x7f,
                ],
                0..40,
            ),
        ) {
            let naive = bytes
                .iter()
                .position(|&c| STOPS[usize::from(c)])
                .map(|p| (p, bytes[..p].is_ascii()));
            proptest::prop_assert_eq!(stop_position(&bytes), naive);
        }

        #[test]
        fn malformed_numbers_are_refused(literal in "[-+.eE0-9]{1,8}") {
            let ours = scan(&literal).map(|n| n.as_f64().to_bits());
            let theirs = serde_json::from_str::<serde_json::Value>(&literal)
                .ok()
                .and_then(|v| v.as_f64())
                .map(f64::to_bits);
            proptest::prop_assert_eq!(ours, theirs, "{}", literal);
        }
    }
}
