//! A fast path for decoding events in the contract's default layout: serde
//! straight into borrowed fields, without building a `serde_json::Value` tree
//! (which was half the cost of the streaming path). It only ever accepts:
//! anything unusual (a type it does not expect, a duplicate field, a model
//! with its own field locations) returns `None`, and the general decoder,
//! which owns every rejection reason, decides. Strings are borrowed from the
//! input unless they contain escapes. A property test checks both agree.

use std::borrow::Cow;
use std::fmt;

use serde::de::{self, Deserializer, IgnoredAny, MapAccess, SeqAccess, Visitor};
use serde::Deserialize;

use super::decode::{FeatureValue, InferenceEvent};
use super::timestamp::parse_timestamp_str;
use crate::config::ModelConfig;

/// A JSON value as the fast path sees it.
enum Scalar<'a> {
    Null,
    Bool(bool),
    U64(u64),
    I64(i64),
    F64(f64),
    Str(Cow<'a, str>),
    Numbers(Vec<f64>),
    /// Objects, mixed arrays: not for the fast path.
    Other,
}

impl<'de: 'a, 'a> Deserialize<'de> for Scalar<'a> {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct V<'a>(std::marker::PhantomData<&'a ()>);
        impl<'de: 'a, 'a> Visitor<'de> for V<'a> {
            type Value = Scalar<'a>;
            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("a JSON value")
            }
            fn visit_unit<E>(self) -> Result<Self::Value, E> {
                Ok(Scalar::Null)
            }
            fn visit_none<E>(self) -> Result<Self::Value, E> {
                Ok(Scalar::Null)
            }
            fn visit_bool<E>(self, b: bool) -> Result<Self::Value, E> {
                Ok(Scalar::Bool(b))
            }
            fn visit_u64<E>(self, n: u64) -> Result<Self::Value, E> {
                Ok(Scalar::U64(n))
            }
            fn visit_i64<E>(self, n: i64) -> Result<Self::Value, E> {
                Ok(Scalar::I64(n))
            }
            fn visit_f64<E>(self, n: f64) -> Result<Self::Value, E> {
                Ok(Scalar::F64(n))
            }
            fn visit_borrowed_str<E>(self, s: &'de str) -> Result<Self::Value, E> {
                Ok(Scalar::Str(Cow::Borrowed(s)))
            }
            fn visit_str<E>(self, s: &str) -> Result<Self::Value, E> {
                Ok(Scalar::Str(Cow::Owned(s.to_owned())))
            }
            fn visit_string<E>(self, s: String) -> Result<Self::Value, E> {
                Ok(Scalar::Str(Cow::Owned(s)))
            }
            fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<Self::Value, A::Error> {
                let mut out = Vec::new();
                let mut ok = true;
                while let Some(s) = seq.next_element::<Scalar<'a>>()? {
                    match s {
                        Scalar::U64(n) => out.push(n as f64),
                        Scalar::I64(n) => out.push(n as f64),
                        Scalar::F64(x) => out.push(x),
                        _ => ok = false,
                    }
                }
                Ok(if ok {
                    Scalar::Numbers(out)
                } else {
                    Scalar::Other
                })
            }
            fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Self::Value, A::Error> {
                while map.next_entry::<IgnoredAny, IgnoredAny>()?.is_some() {}
                Ok(Scalar::Other)
            }
        }
        d.deserialize_any(V(std::marker::PhantomData))
    }
}

/// An object's entries in document order.
struct Entries<'a>(Option<Vec<(Cow<'a, str>, Scalar<'a>)>>);

impl<'de: 'a, 'a> Deserialize<'de> for Entries<'a> {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct Key<'a>(Cow<'a, str>);
        impl<'de: 'a, 'a> Deserialize<'de> for Key<'a> {
            fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
                struct KV<'a>(std::marker::PhantomData<&'a ()>);
                impl<'de: 'a, 'a> Visitor<'de> for KV<'a> {
                    type Value = Key<'a>;
                    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                        f.write_str("a key")
                    }
                    fn visit_borrowed_str<E>(self, s: &'de str) -> Result<Self::Value, E> {
                        Ok(Key(Cow::Borrowed(s)))
                    }
                    fn visit_str<E>(self, s: &str) -> Result<Self::Value, E> {
                        Ok(Key(Cow::Owned(s.to_owned())))
                    }
                }
                d.deserialize_str(KV(std::marker::PhantomData))
            }
        }
        struct V<'a>(std::marker::PhantomData<&'a ()>);
        impl<'de: 'a, 'a> Visitor<'de> for V<'a> {
            type Value = Entries<'a>;
            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("an object")
            }
            fn visit_unit<E>(self) -> Result<Self::Value, E> {
                Ok(Entries(None))
            }
            fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Self::Value, A::Error> {
                let mut out = Vec::new();
                while let Some((k, v)) = map.next_entry::<Key<'a>, Scalar<'a>>()? {
                    out.push((k.0, v));
                }
                Ok(Entries(Some(out)))
            }
            fn visit_seq<A: SeqAccess<'de>>(self, _: A) -> Result<Self::Value, A::Error> {
                Err(de::Error::custom("not an object"))
            }
        }
        d.deserialize_any(V(std::marker::PhantomData))
    }
}

#[derive(Deserialize)]
struct Raw<'a> {
    #[serde(borrow)]
    event_id: Option<Scalar<'a>>,
    #[serde(borrow)]
    timestamp: Option<Scalar<'a>>,
    #[serde(borrow)]
    model: Option<Scalar<'a>>,
    #[serde(borrow)]
    model_version: Option<Scalar<'a>>,
    #[serde(borrow, default)]
    features: Option<Entries<'a>>,
    #[serde(borrow, default)]
    prediction: Option<Entries<'a>>,
    #[serde(borrow, default)]
    embeddings: Option<Entries<'a>>,
    #[serde(borrow)]
    latency_ms: Option<Scalar<'a>>,
    #[serde(borrow)]
    error: Option<Scalar<'a>>,
}

fn number(s: &Scalar<'_>) -> Option<f64> {
    match *s {
        Scalar::U64(n) => Some(n as f64),
        Scalar::I64(n) => Some(n as f64),
        Scalar::F64(x) => Some(x),
        _ => None,
    }
}

fn feature(s: Scalar<'_>) -> Option<FeatureValue> {
    Some(match s {
        Scalar::Null => FeatureValue::Null,
        Scalar::Bool(b) => FeatureValue::Category(if b { "true" } else { "false" }.to_owned()),
        Scalar::Str(s) => FeatureValue::Category(s.into_owned()),
        ref n => FeatureValue::Number(number(n)?),
    })
}

/// Sorted by key, last duplicate winning: what a `serde_json::Map` holds.
fn sorted<'a>(mut entries: Vec<(Cow<'a, str>, Scalar<'a>)>) -> Vec<(String, Scalar<'a>)> {
    entries.reverse();
    entries.sort_by(|a, b| a.0.cmp(&b.0));
    entries.dedup_by(|later, earlier| later.0 == earlier.0);
    entries
        .into_iter()
        .map(|(k, v)| (k.into_owned(), v))
        .collect()
}

/// Decode `bytes` when the event and `model` settings allow the fast path;
/// `None` sends the event to the general decoder.
pub fn decode<'c>(
    bytes: &[u8],
    model_for: impl Fn(&str) -> Option<&'c ModelConfig>,
) -> Option<InferenceEvent> {
    let raw: Raw<'_> = serde_json::from_slice(bytes).ok()?;
    let model = match raw.model? {
        Scalar::Str(s) if !s.is_empty() => s.into_owned(),
        _ => return None,
    };
    let mc = model_for(&model)?;
    let event_id = match raw.event_id? {
        Scalar::Str(s) if !s.is_empty() => s.into_owned(),
        Scalar::U64(n) => n.to_string(),
        Scalar::I64(n) => n.to_string(),
        _ => return None,
    };
    let timestamp_ms = match raw.timestamp? {
        Scalar::Str(s) => parse_timestamp_str(&s).ok()?,
        Scalar::U64(n) => i64::try_from(n).ok()?,
        Scalar::I64(n) => n,
        _ => return None,
    };
    let model_version = match raw.model_version {
        None | Some(Scalar::Null) => None,
        Some(Scalar::Str(s)) => Some(s.into_owned()),
        _ => return None,
    };
    let mut features = Vec::new();
    if let Some(Entries(Some(entries))) = raw.features {
        for (k, v) in sorted(entries) {
            if !mc.monitors(&k) {
                continue;
            }
            features.push((k, feature(v)?));
        }
    }
    let mut prediction = Vec::new();
    if let Some(Entries(Some(entries))) = raw.prediction {
        for (k, v) in sorted(entries) {
            prediction.push((k, feature(v)?));
        }
    }
    let mut embeddings = Vec::new();
    if let Some(Entries(Some(entries))) = raw.embeddings {
        for (k, v) in sorted(entries) {
            match v {
                Scalar::Null => {}
                Scalar::Numbers(xs) => embeddings.push((k, xs)),
                _ => return None,
            }
        }
    }
    let latency_ms = match raw.latency_ms {
        None | Some(Scalar::Null) => None,
        Some(ref n) => Some(number(n)?),
    };
    let error = match raw.error {
        None | Some(Scalar::Null) => None,
        Some(Scalar::Str(s)) => Some(s.into_owned()),
        _ => return None,
    };
    Some(InferenceEvent {
        event_id,
        timestamp_ms,
        model,
        model_version,
        features,
        prediction,
        embeddings,
        latency_ms,
        error,
        caption_facts: None,
    })
}
