//! Decoding of inference-log and feedback events.

use std::borrow::Cow;

use serde_json::{Map, Value};

use super::timestamp::{json_type, parse_timestamp};
use super::{RejectReason, Rejection};
use crate::config::{Config, FeatureKind, FieldPaths, ModelConfig};

/// One feature value as found in an event. Strings borrow from the event's
/// bytes where the decoder could (see [`InferenceEvent`]).
#[derive(Debug, Clone, PartialEq)]
pub enum FeatureValue<'a> {
    Number(f64),
    /// Strings, and booleans as "true"/"false".
    Category(Cow<'a, str>),
    Vector(Vec<f64>),
    Null,
}

impl FeatureValue<'_> {
    pub fn into_owned(self) -> FeatureValue<'static> {
        match self {
            Self::Number(x) => FeatureValue::Number(x),
            Self::Category(s) => FeatureValue::Category(Cow::Owned(s.into_owned())),
            Self::Vector(v) => FeatureValue::Vector(v),
            Self::Null => FeatureValue::Null,
        }
    }
}

/// A decoded inference-log event. The fast decoder borrows its strings from
/// the event's bytes (nothing is allocated for names, ids or captions); the
/// general decoder owns them. [`InferenceEvent::into_owned`] detaches one
/// from its bytes.
#[derive(Debug, Clone, PartialEq)]
pub struct InferenceEvent<'a> {
    pub event_id: Cow<'a, str>,
    /// Event time, epoch milliseconds.
    pub timestamp_ms: i64,
    pub model: Cow<'a, str>,
    pub model_version: Option<Cow<'a, str>>,
    /// Monitored features, in name order.
    pub features: Vec<(Cow<'a, str>, FeatureValue<'a>)>,
    /// Prediction outputs (caption, confidence, ...), in name order.
    pub prediction: Vec<(Cow<'a, str>, FeatureValue<'a>)>,
    /// Named embedding vectors.
    pub embeddings: Vec<(Cow<'a, str>, Vec<f64>)>,
    pub latency_ms: Option<f64>,
    /// Serving error, when the call failed.
    pub error: Option<Cow<'a, str>>,
    /// The caption's descriptors when computed ahead (see
    /// `monitor::engine::prepare`); the engine computes them otherwise.
    pub caption_facts: Option<crate::quality::CaptionFacts>,
}

fn owned(s: Cow<'_, str>) -> Cow<'static, str> {
    Cow::Owned(s.into_owned())
}

impl InferenceEvent<'_> {
    pub fn into_owned(self) -> InferenceEvent<'static> {
        let pairs = |v: Vec<(Cow<'_, str>, FeatureValue<'_>)>| {
            v.into_iter()
                .map(|(k, v)| (owned(k), v.into_owned()))
                .collect()
        };
        InferenceEvent {
            event_id: owned(self.event_id),
            timestamp_ms: self.timestamp_ms,
            model: owned(self.model),
            model_version: self.model_version.map(owned),
            features: pairs(self.features),
            prediction: pairs(self.prediction),
            embeddings: self
                .embeddings
                .into_iter()
                .map(|(k, v)| (owned(k), v))
                .collect(),
            latency_ms: self.latency_ms,
            error: self.error.map(owned),
            caption_facts: self.caption_facts,
        }
    }
}

/// A decoded feedback event.
#[derive(Debug, Clone, PartialEq)]
pub struct FeedbackEvent {
    pub event_id: String,
    pub timestamp_ms: i64,
    pub references: Vec<String>,
    pub rating: Option<f64>,
}

/// Decodes events according to a config. Cheap to clone.
#[derive(Debug, Clone)]
pub struct Decoder {
    /// Settings of models without a section of their own.
    default_model: ModelConfig,
    /// The model is found at `/model`, so the fast path can route.
    fast_routing: bool,
    /// Configured models in the default layout (the fast path's domain).
    fast_models: std::collections::BTreeSet<String>,
    max_bytes: usize,
    model_pointer: String,
    config: Config,
}

impl Decoder {
    pub fn new(config: &Config) -> Self {
        let default_model = ModelConfig::defaults(config);
        Self {
            default_model,
            fast_routing: config.model_pointer == "/model",
            fast_models: config
                .models
                .iter()
                .filter(|(_, mc)| {
                    mc.fields == FieldPaths::default()
                        && mc.features.values().all(|f| f.path.is_none())
                })
                .map(|(name, _)| name.clone())
                .collect(),
            max_bytes: config.max_event_bytes,
            model_pointer: config.model_pointer.clone(),
            config: config.clone(),
        }
    }

    /// Decode an inference-log event. The model is found first (routing), then
    /// that model's field locations apply.
    pub fn decode_inference<'a>(&self, bytes: &'a [u8]) -> Result<InferenceEvent<'a>, Rejection> {
        if self.fast_routing && bytes.len() <= self.max_bytes {
            let eligible = |name: &str| match self.config.models.get(name) {
                Some(mc) => self.fast_models.contains(name).then_some(mc),
                None => Some(&self.default_model),
            };
            let mut ascii = false;
            if let Some(e) = super::fast::decode(bytes, eligible, &mut ascii) {
                self.check(&e, ascii)?;
                return Ok(e);
            }
        }
        self.decode_inference_general(bytes)
    }

    /// Whether the event's names and categorical values are fit to become
    /// metric labels, log fields and page text ([`super::check_name`],
    /// [`super::MAX_CATEGORY_BYTES`]); else why not.
    /// `ascii`: every string of the event is known to be ASCII without a
    /// control character (the fast path's scan), so only lengths are checked.
    fn check(&self, e: &InferenceEvent<'_>, ascii: bool) -> Result<(), Rejection> {
        if ascii {
            // The common case, in one pass over lengths.
            let long = |n: &str| n.len() > super::MAX_NAME_BYTES;
            let fine = !long(&e.model)
                && !e.model_version.as_deref().is_some_and(long)
                && e.features.iter().all(|(n, v)| {
                    !long(n)
                        && !matches!(v, FeatureValue::Category(s) if s.len() > super::MAX_CATEGORY_BYTES)
                })
                && e.embeddings.iter().all(|(n, _)| !long(n));
            if fine {
                return Ok(());
            }
        }
        let name_ok = |n: &str| n.len() <= super::MAX_NAME_BYTES && !super::has_escapes(n);
        let names_ok = name_ok(&e.model)
            && e.model_version.as_deref().is_none_or(name_ok)
            && e.features.iter().all(|(n, _)| name_ok(n))
            && e.embeddings.iter().all(|(n, _)| name_ok(n));
        if !names_ok {
            super::check_name("the model name", &e.model)?;
            if let Some(v) = &e.model_version {
                super::check_name("the model version", v)?;
            }
            for (name, _) in &e.features {
                super::check_name("a feature name", name)?;
            }
            for (name, _) in &e.embeddings {
                super::check_name("an embedding name", name)?;
            }
        }
        for (name, value) in &e.features {
            if let FeatureValue::Category(s) = value {
                let long = s.len() > super::MAX_CATEGORY_BYTES;
                if (long || super::has_escapes(s)) && !self.is_text(&e.model, name) {
                    return Err(category_problem(name, s, long));
                }
            }
        }
        Ok(())
    }

    /// Whether the model's feature `name` is configured as text.
    fn is_text(&self, model: &str, name: &str) -> bool {
        let mc = self.config.models.get(model).unwrap_or(&self.default_model);
        mc.features.get(name).and_then(|f| f.kind) == Some(FeatureKind::Text)
    }

    /// The general decoder: any configured layout, every rejection reason.
    pub fn decode_inference_general(
        &self,
        bytes: &[u8],
    ) -> Result<InferenceEvent<'static>, Rejection> {
        let e = self.decode_general_unchecked(bytes)?;
        self.check(&e, false)?;
        Ok(e)
    }

    fn decode_general_unchecked(&self, bytes: &[u8]) -> Result<InferenceEvent<'static>, Rejection> {
        let root = self.parse(bytes)?;
        let model = required_str(&root, &self.model_pointer, "model")?.to_owned();
        // Borrowed, not cloned: this runs for every event.
        let mc = self
            .config
            .models
            .get(&model)
            .unwrap_or(&self.default_model);
        let f = &mc.fields;
        let event_id = required_id(&root, &f.event_id)?;
        let ts = lookup(&root, &f.timestamp)
            .filter(|v| !v.is_null())
            .ok_or_else(|| missing(&f.timestamp, "timestamp"))?;
        let timestamp_ms =
            parse_timestamp(ts).map_err(|e| Rejection::new(RejectReason::BadTimestamp, e))?;
        let model_version =
            optional_str(&root, &f.model_version, "model_version")?.map(str::to_owned);
        let features = extract_features(&root, mc)?;
        let prediction = match optional_object(&root, &f.prediction, "prediction")? {
            Some(obj) => obj
                .iter()
                .map(|(k, v)| {
                    Ok((
                        Cow::Owned(k.clone()),
                        scalar(v, &format!("prediction.{k}"), None)?,
                    ))
                })
                .collect::<Result<Vec<_>, Rejection>>()?,
            None => Vec::new(),
        };
        let embeddings = match optional_object(&root, &f.embeddings, "embeddings")? {
            Some(obj) => obj
                .iter()
                .filter(|(_, v)| !v.is_null())
                .map(|(k, v)| {
                    Ok((
                        Cow::Owned(k.clone()),
                        vector(v, &format!("embeddings.{k}"))?,
                    ))
                })
                .collect::<Result<Vec<_>, Rejection>>()?,
            None => Vec::new(),
        };
        let latency_ms = match lookup(&root, &f.latency_ms) {
            None | Some(Value::Null) => None,
            Some(Value::Number(n)) => Some(finite(n.as_f64(), "latency_ms")?),
            Some(other) => return Err(wrong_type("latency_ms", "a number", other)),
        };
        let error = match lookup(&root, &f.error) {
            None | Some(Value::Null) => None,
            Some(Value::String(s)) => Some(Cow::Owned(s.clone())),
            // Serving stacks log structured errors too; keep them as JSON text.
            Some(other) => Some(Cow::Owned(other.to_string())),
        };
        Ok(InferenceEvent {
            event_id: Cow::Owned(event_id),
            timestamp_ms,
            model: Cow::Owned(model),
            model_version: model_version.map(Cow::Owned),
            features,
            prediction,
            embeddings,
            latency_ms,
            error,
            caption_facts: None,
        })
    }

    /// Decode a feedback event (`event_id`, `timestamp`, `references`, `rating`).
    pub fn decode_feedback(&self, bytes: &[u8]) -> Result<FeedbackEvent, Rejection> {
        let root = self.parse(bytes)?;
        let event_id = required_id(&root, "/event_id")?;
        let ts = root
            .get("timestamp")
            .filter(|v| !v.is_null())
            .ok_or_else(|| missing("/timestamp", "timestamp"))?;
        let timestamp_ms =
            parse_timestamp(ts).map_err(|e| Rejection::new(RejectReason::BadTimestamp, e))?;
        let references = match root.get("references") {
            None | Some(Value::Null) => Vec::new(),
            Some(Value::Array(items)) => items
                .iter()
                .enumerate()
                .map(|(i, v)| match v {
                    Value::String(s) => Ok(s.clone()),
                    other => Err(wrong_type(&format!("references[{i}]"), "a string", other)),
                })
                .collect::<Result<_, _>>()?,
            Some(other) => return Err(wrong_type("references", "an array of strings", other)),
        };
        let rating = match root.get("rating") {
            None | Some(Value::Null) => None,
            Some(Value::Number(n)) => Some(finite(n.as_f64(), "rating")?),
            Some(other) => return Err(wrong_type("rating", "a number", other)),
        };
        if let Some(r) = rating.filter(|r| r.abs() > super::MAX_ABS_RATING) {
            return Err(Rejection::new(
                RejectReason::InvalidValue,
                format!("rating {r} is outside -{0} to {0}", super::MAX_ABS_RATING),
            ));
        }
        if references.is_empty() && rating.is_none() {
            return Err(Rejection::new(
                RejectReason::MissingField,
                "feedback needs `references` or `rating`",
            ));
        }
        Ok(FeedbackEvent {
            event_id,
            timestamp_ms,
            references,
            rating,
        })
    }

    fn parse(&self, bytes: &[u8]) -> Result<Value, Rejection> {
        if bytes.len() > self.max_bytes {
            return Err(Rejection::new(
                RejectReason::TooLarge,
                format!(
                    "event is {} bytes, limit is {}",
                    bytes.len(),
                    self.max_bytes
                ),
            ));
        }
        let root: Value = serde_json::from_slice(bytes).map_err(|e| {
            // serde_json refuses numbers beyond f64 range ("number out of range");
            // that is a non-finite value, not malformed JSON.
            let reason = if e.to_string().contains("number out of range") {
                RejectReason::NonFinite
            } else {
                RejectReason::InvalidJson
            };
            Rejection::new(reason, e.to_string())
        })?;
        if !root.is_object() {
            return Err(Rejection::new(
                RejectReason::InvalidJson,
                format!("event must be a JSON object, got {}", json_type(&root)),
            ));
        }
        Ok(root)
    }
}

/// Why a categorical value is refused.
#[cold]
#[inline(never)]
fn category_problem(name: &str, s: &str, long: bool) -> Rejection {
    Rejection::new(
        RejectReason::InvalidValue,
        if long {
            format!(
                "feature {name:?} has a categorical value of {} bytes, at most {} are allowed (kind = \"text\" compares long text by its length)",
                s.len(),
                super::MAX_CATEGORY_BYTES
            )
        } else {
            format!(
                "feature {name:?} has a categorical value with a control character: {}",
                super::printable(s, 64)
            )
        },
    )
}

/// RFC 6901 lookup without allocating for pointers that have no `~` escape
/// (serde_json's `Value::pointer` allocates for every segment).
fn lookup<'a>(root: &'a Value, pointer: &str) -> Option<&'a Value> {
    if pointer.is_empty() {
        return Some(root);
    }
    let rest = pointer.strip_prefix('/')?;
    let mut v = root;
    for seg in rest.split('/') {
        let unescaped;
        let key = if seg.contains('~') {
            unescaped = seg.replace("~1", "/").replace("~0", "~");
            unescaped.as_str()
        } else {
            seg
        };
        v = match v {
            Value::Object(m) => m.get(key)?,
            Value::Array(a) => a.get(key.parse::<usize>().ok()?)?,
            _ => return None,
        };
    }
    Some(v)
}

type Pairs = Vec<(Cow<'static, str>, FeatureValue<'static>)>;

fn extract_features(root: &Value, mc: &ModelConfig) -> Result<Pairs, Rejection> {
    let mut out = Vec::new();
    if let Some(obj) = optional_object(root, &mc.fields.features, "features")? {
        for (k, v) in obj {
            if mc.features.get(k).is_some_and(|f| f.path.is_some()) || !mc.monitors(k) {
                continue;
            }
            let kind = mc.features.get(k).and_then(|f| f.kind);
            out.push((
                Cow::<str>::Owned(k.clone()),
                scalar(v, &format!("features.{k}"), kind)?,
            ));
        }
    }
    for (name, fc) in &mc.features {
        if let Some(path) = &fc.path {
            let v = lookup(root, path).unwrap_or(&Value::Null);
            out.push((Cow::Owned(name.clone()), scalar(v, name, fc.kind)?));
        }
    }
    out.sort_by(|a, b| a.0.cmp(&b.0));
    Ok(out)
}

fn scalar(
    v: &Value,
    field: &str,
    kind: Option<FeatureKind>,
) -> Result<FeatureValue<'static>, Rejection> {
    Ok(match v {
        Value::Null => FeatureValue::Null,
        Value::Number(n) => FeatureValue::Number(finite(n.as_f64(), field)?),
        Value::String(s) => FeatureValue::Category(Cow::Owned(s.clone())),
        Value::Bool(b) => FeatureValue::Category(Cow::Borrowed(if *b { "true" } else { "false" })),
        Value::Array(_) if kind == Some(FeatureKind::Embedding) => {
            FeatureValue::Vector(vector(v, field)?)
        }
        other => {
            return Err(wrong_type(
                field,
                "a number, string, boolean or null",
                other,
            ))
        }
    })
}

fn vector(v: &Value, field: &str) -> Result<Vec<f64>, Rejection> {
    let Value::Array(items) = v else {
        return Err(wrong_type(field, "an array of numbers", v));
    };
    items
        .iter()
        .map(|x| match x {
            Value::Number(n) => finite(n.as_f64(), field),
            other => Err(wrong_type(field, "an array of numbers", other)),
        })
        .collect()
}

fn finite(x: Option<f64>, field: &str) -> Result<f64, Rejection> {
    match x {
        Some(x) if x.is_finite() => Ok(x),
        _ => Err(Rejection::new(
            RejectReason::NonFinite,
            format!("`{field}` is not a finite number"),
        )),
    }
}

fn missing(pointer: &str, name: &str) -> Rejection {
    Rejection::new(
        RejectReason::MissingField,
        format!("required field `{name}` (at {pointer:?}) is missing"),
    )
}

fn wrong_type(field: &str, want: &str, got: &Value) -> Rejection {
    Rejection::new(
        RejectReason::WrongType,
        format!("`{field}` must be {want}, got {}", json_type(got)),
    )
}

fn required_str<'a>(root: &'a Value, pointer: &str, name: &str) -> Result<&'a str, Rejection> {
    match lookup(root, pointer) {
        None | Some(Value::Null) => Err(missing(pointer, name)),
        Some(Value::String(s)) if !s.is_empty() => Ok(s),
        Some(Value::String(_)) => Err(Rejection::new(
            RejectReason::MissingField,
            format!("`{name}` is empty"),
        )),
        Some(other) => Err(wrong_type(name, "a string", other)),
    }
}

/// Event ids are strings; integer ids are accepted and kept as their decimal text.
fn required_id(root: &Value, pointer: &str) -> Result<String, Rejection> {
    match lookup(root, pointer) {
        Some(Value::Number(n)) if n.is_u64() || n.is_i64() => Ok(n.to_string()),
        _ => required_str(root, pointer, "event_id").map(str::to_owned),
    }
}

fn optional_str<'a>(
    root: &'a Value,
    pointer: &str,
    name: &str,
) -> Result<Option<&'a str>, Rejection> {
    match lookup(root, pointer) {
        None | Some(Value::Null) => Ok(None),
        Some(Value::String(s)) => Ok(Some(s)),
        Some(other) => Err(wrong_type(name, "a string", other)),
    }
}

fn optional_object<'a>(
    root: &'a Value,
    pointer: &str,
    name: &str,
) -> Result<Option<&'a Map<String, Value>>, Rejection> {
    match lookup(root, pointer) {
        None | Some(Value::Null) => Ok(None),
        Some(Value::Object(m)) => Ok(Some(m)),
        Some(other) => Err(wrong_type(name, "an object", other)),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const GOOD: &str = r#"{
        "event_id": "01JD3Q8W3Y2K6Z9V1N5M4R7T0B",
        "timestamp": "2026-11-24T01:02:03.456Z",
        "model": "alt-text-captioner",
        "model_version": "3.2.0",
        "features": {"brightness": 0.43, "width": 1024, "source": "mobile", "is_photo": true, "exif": null},
        "prediction": {"caption": "a man riding a bike down a street", "confidence": 0.81},
        "embeddings": {"image": [0.01, -0.2], "caption": [0.03, -0.1]},
        "latency_ms": 143.0,
        "error": null,
        "extra": {"ignored": true}
    }"#;

    fn decoder() -> Decoder {
        Decoder::new(&Config::default())
    }

    #[test]
    fn decodes_the_contract_example() {
        let e = decoder().decode_inference(GOOD.as_bytes()).unwrap();
        assert_eq!(e.model, "alt-text-captioner");
        assert_eq!(e.model_version.as_deref(), Some("3.2.0"));
        assert_eq!(e.timestamp_ms, 1_795_482_123_456);
        let names: Vec<_> = e.features.iter().map(|(k, _)| k.as_ref()).collect();
        assert_eq!(names, ["brightness", "exif", "is_photo", "source", "width"]);
        assert_eq!(e.features[2].1, FeatureValue::Category("true".into()));
        assert_eq!(e.features[1].1, FeatureValue::Null);
        assert_eq!(e.embeddings.len(), 2);
        assert_eq!(e.latency_ms, Some(143.0));
        assert_eq!(e.error, None);
    }

    #[test]
    fn rejections_table() {
        let d = Decoder::new(&Config {
            max_event_bytes: 200,
            ..Config::default()
        });
        let base = r#"{"event_id":"e1","timestamp":1,"model":"m","features":{}}"#;
        let cases: &[(&str, RejectReason, &str)] = &[
            (
                "{not json",
                RejectReason::InvalidJson,
                "key must be a string",
            ),
            ("[1,2]", RejectReason::InvalidJson, "must be a JSON object"),
            (
                r#"{"timestamp":1,"model":"m"}"#,
                RejectReason::MissingField,
                "`event_id`",
            ),
            (
                r#"{"event_id":"e","model":"m"}"#,
                RejectReason::MissingField,
                "`timestamp`",
            ),
            (
                r#"{"event_id":"e","timestamp":1}"#,
                RejectReason::MissingField,
                "`model`",
            ),
            (
                r#"{"event_id":"e","timestamp":"noon","model":"m"}"#,
                RejectReason::BadTimestamp,
                "noon",
            ),
            (
                r#"{"event_id":"e","timestamp":1,"model":7}"#,
                RejectReason::WrongType,
                "`model` must be a string",
            ),
            (
                r#"{"event_id":"e","timestamp":1,"model":"m","features":[1]}"#,
                RejectReason::WrongType,
                "`features` must be an object",
            ),
            (
                r#"{"event_id":"e","timestamp":1,"model":"m","features":{"a":{"b":1}}}"#,
                RejectReason::WrongType,
                "features.a",
            ),
            (
                r#"{"event_id":"e","timestamp":1,"model":"m","features":{"a":1e400}}"#,
                RejectReason::NonFinite,
                "out of range",
            ),
            (
                r#"{"event_id":"e","timestamp":1,"model":"m","latency_ms":"fast"}"#,
                RejectReason::WrongType,
                "latency_ms",
            ),
            (
                r#"{"event_id":"e","timestamp":1,"model":"m","embeddings":{"image":[1,"x"]}}"#,
                RejectReason::WrongType,
                "embeddings.image",
            ),
        ];
        assert!(d.decode_inference(base.as_bytes()).is_ok());
        for (input, reason, detail) in cases {
            let err = d.decode_inference(input.as_bytes()).unwrap_err();
            assert_eq!(err.reason, *reason, "{input}: {err}");
            assert!(err.detail.contains(detail), "{input}: {err}");
        }
        let big = format!(
            r#"{{"event_id":"e","timestamp":1,"model":"m","pad":"{}"}}"#,
            "x".repeat(300)
        );
        assert_eq!(
            d.decode_inference(big.as_bytes()).unwrap_err().reason,
            RejectReason::TooLarge
        );
        assert_eq!(
            d.decode_inference(&[0xff, 0xfe]).unwrap_err().reason,
            RejectReason::InvalidJson
        );
    }

    #[test]
    fn names_and_values_that_would_break_output_are_refused() {
        // Regression (issue 15): names became metric labels, log fields and
        // page text unchecked.
        let long = "n".repeat(129);
        let cases: &[(String, RejectReason)] = &[
            (format!(r#"{{"event_id":"e","timestamp":1,"model":"{long}"}}"#), RejectReason::InvalidName),
            (r#"{"event_id":"e","timestamp":1,"model":"evil\"} 1\ndriftd_injected_total{forged=\"yes"}"#.to_owned(), RejectReason::InvalidName),
            (r#"{"event_id":"e","timestamp":1,"model":"m","model_version":"1\u0000"}"#.to_owned(), RejectReason::InvalidName),
            (r#"{"event_id":"e","timestamp":1,"model":"m\u202e"}"#.to_owned(), RejectReason::InvalidName),
            (format!(r#"{{"event_id":"e","timestamp":1,"model":"m","features":{{"{long}":1}}}}"#), RejectReason::InvalidName),
            (r#"{"event_id":"e","timestamp":1,"model":"m","features":{"a\tb":1}}"#.to_owned(), RejectReason::InvalidName),
            (r#"{"event_id":"e","timestamp":1,"model":"m","embeddings":{"x\ny":[1]}}"#.to_owned(), RejectReason::InvalidName),
            (r#"{"event_id":"e","timestamp":1,"model":"m","features":{"src":"a\u001b[31m"}}"#.to_owned(), RejectReason::InvalidValue),
            (format!(r#"{{"event_id":"e","timestamp":1,"model":"m","features":{{"src":"{}"}}}}"#, "v".repeat(1025)), RejectReason::InvalidValue),
        ];
        let d = decoder();
        for (input, reason) in cases {
            let err = d.decode_inference(input.as_bytes()).unwrap_err();
            assert_eq!(err.reason, *reason, "{input}: {err}");
            // The detail itself stays printable and short.
            assert!(
                !err.detail.chars().any(crate::event::needs_escape),
                "{err:?}"
            );
            assert!(err.detail.len() < 700);
        }
        // What stays allowed: markup, dots, slashes, non-ASCII, 128 bytes,
        // and long text in a feature configured as text.
        let ok = [
            r#"{"event_id":"e","timestamp":1,"model":"<img src=x onerror=alert(1)>&amp;"}"#
                .to_owned(),
            r#"{"event_id":"e","timestamp":1,"model":".."}"#.to_owned(),
            r#"{"event_id":"e","timestamp":1,"model":"a/b%2F"}"#.to_owned(),
            r#"{"event_id":"e","timestamp":1,"model":"模型-ü"}"#.to_owned(),
            format!(
                r#"{{"event_id":"e","timestamp":1,"model":"{}"}}"#,
                "n".repeat(128)
            ),
        ];
        for input in ok {
            assert!(d.decode_inference(input.as_bytes()).is_ok(), "{input}");
        }
        let cfg = Config::from_toml(
            "[models.m.features.caption]\nkind = \"text\"\npath = \"/c\"\n",
            "t",
            &|_| None,
        )
        .unwrap();
        let text = format!(
            r#"{{"event_id":"e","timestamp":1,"model":"m","c":"{}\nmore"}}"#,
            "word ".repeat(1000)
        );
        assert!(Decoder::new(&cfg).decode_inference(text.as_bytes()).is_ok());
    }

    #[test]
    fn configured_pointers_and_exclusions() {
        let toml = r#"
            [routing]
            model = "/meta/model"
            [models.cap.fields]
            event_id = "/meta/id"
            timestamp = "/meta/ts"
            features = "/inputs"
            [models.cap]
            exclude = ["secret"]
            [models.cap.features.conf]
            path = "/outputs/confidence"
            kind = "numeric"
        "#;
        let cfg = Config::from_toml(toml, "t", &|_| None).unwrap();
        let ev = r#"{"meta":{"model":"cap","id":42,"ts":5},"inputs":{"a":1,"secret":"x"},"outputs":{"confidence":0.5}}"#;
        let e = Decoder::new(&cfg).decode_inference(ev.as_bytes()).unwrap();
        assert_eq!(e.event_id, "42");
        assert_eq!(
            e.features,
            vec![
                ("a".into(), FeatureValue::Number(1.0)),
                ("conf".into(), FeatureValue::Number(0.5))
            ]
        );
    }

    proptest::proptest! {
        // Whatever arrives, decoding returns a value or a rejection; it never panics.
        #[test]
        fn never_panics_on_arbitrary_bytes(bytes in proptest::collection::vec(proptest::num::u8::ANY, 0..300)) {
            let d = decoder();
            let _ = d.decode_inference(&bytes);
            let _ = d.decode_feedback(&bytes);
        }

        #[test]
        fn never_panics_on_json_shaped_input(
            id in "[a-z0-9]{0,4}",
            ts in proptest::sample::select(vec!["0", "1795482123456", "99999999999999999999", "\"2026-11-24T01:02:03Z\"", "\"noon\"", "null", "true", "-5"]),
            model in proptest::sample::select(vec!["\"m\"", "\"\"", "1", "null", "[]"]),
            feat in proptest::sample::select(vec!["{}", "{\"a\":1e999}", "{\"a\":[1,2]}", "{\"a\":\"x\"}", "{\"a\":{}}", "3", "null"]),
        ) {
            let text = format!(r#"{{"event_id":"{id}","timestamp":{ts},"model":{model},"features":{feat}}}"#);
            let _ = decoder().decode_inference(text.as_bytes());
        }
    }

    proptest::proptest! {
        // The fast path accepts only what the general decoder decodes the same way.
        #[test]
        fn fast_path_agrees_with_the_general_decoder(
            id in proptest::sample::select(vec!["\"e1\"", "42", "-3", "\"\"", "1.5", "null", "\"a\\u00e9\""]),
            ts in proptest::sample::select(vec!["1795482123456", "\"2026-11-24T01:02:03.456Z\"", "\"noon\"", "1.5", "null", "18446744073709551615", "9223372036854775807", "-9223372036854775808", "253402300800000", "-62167219200001"]),
            model in proptest::sample::select(vec!["\"m\"", "\"\"", "7", "\"alt\\ntext\""]),
            version in proptest::sample::select(vec!["", ",\"model_version\":\"1\"", ",\"model_version\":null", ",\"model_version\":2"]),
            feats in proptest::sample::select(vec![
                "{}", "null", "[1]", "3", "{\"b\":1,\"a\":\"x\",\"c\":true,\"d\":null}",
                "{\"a\":1,\"a\":2}", "{\"a\":[1,2]}", "{\"a\":{\"x\":1}}", "{\"a\":1e999}", "{\"k\\u00e9y\":-0.5}",
            ]),
            pred in proptest::sample::select(vec!["", ",\"prediction\":null", ",\"prediction\":{\"caption\":\"a dog\",\"confidence\":0.8}", ",\"prediction\":{\"x\":[1]}"]),
            emb in proptest::sample::select(vec!["", ",\"embeddings\":{\"image\":[1,0.5],\"caption\":null}", ",\"embeddings\":{\"image\":[1,\"x\"]}", ",\"embeddings\":[]"]),
            tail in proptest::sample::select(vec!["", ",\"latency_ms\":12", ",\"latency_ms\":\"fast\"", ",\"error\":\"boom\"", ",\"error\":{\"code\":5}", ",\"model\":\"dup\"", ",\"extra\":[1,{\"a\":2}]"]),
        ) {
            let text = format!(r#"{{"event_id":{id},"timestamp":{ts},"model":{model}{version},"features":{feats}{pred}{emb}{tail}}}"#);
            let d = decoder();
            let general = d.decode_inference_general(text.as_bytes());
            let combined = d.decode_inference(text.as_bytes());
            proptest::prop_assert_eq!(general, combined, "{}", text);
        }
    }

    proptest::proptest! {
        // Numbers, whitespace, escapes and nesting of every shape JSON allows
        // (and some it does not): the fast path accepts only what the general
        // decoder decodes, and to the same event.
        #[test]
        fn fast_path_agrees_on_numbers_strings_and_layout(
            num in proptest::sample::select(vec![
                "0", "-0", "01", "1.", ".5", "-", "1e5", "1E+2", "2.5e-3", "-0.0", "1e400", "-1e400",
                "9223372036854775807", "-9223372036854775808", "-9223372036854775809",
                "18446744073709551615", "18446744073709551616", "0.1000000000000000055511151231257827",
                "1e-400", "+1", "0x10", "NaN", "Infinity", "1_000", "3.0", "2e",
            ]),
            text in proptest::sample::select(vec![
                "\"a\"", "\"a\\\"b\"", "\"\\u00e9\"", "\"caf\u{e9}\"", "\"tab\tin\"", "\"\"", "\"unterminated",
            ]),
            ws in proptest::sample::select(vec!["", " ", "\n\t", "\r\n ", "\u{a0}"]),
            extra in proptest::sample::select(vec![
                "", ",\"x\":{\"y\":[1,{\"z\":null}]}", ",\"x\":[", ",\"x\":tru", ",\"x\":[1,]", ",\"x\":{\"a\" 1}",
                ",\"embeddings\":{\"image\":[1],\"image\":null}", ",\"embeddings\":{\"image\":null,\"image\":[2]}",
                ",\"prediction\":{\"caption\":\"x\",\"caption\":\"y\"}", ",\"features\":{}",
            ]),
            trailer in proptest::sample::select(vec!["", " ", "x", "}", "\n"]),
        ) {
            let doc = format!(
                r#"{ws}{{{ws}"event_id"{ws}:{ws}{text}{ws},"timestamp":1795482123456,"model":"m","model_version":{text},"features":{{"n":{num},"s":{text},"b":false}},"prediction":{{"caption":{text},"confidence":{num}}},"latency_ms":{num}{extra}}}{ws}{trailer}"#
            );
            let d = decoder();
            let general = d.decode_inference_general(doc.as_bytes());
            let combined = d.decode_inference(doc.as_bytes());
            // Compared as text too: `==` does not tell 0.0 from -0.0.
            proptest::prop_assert_eq!(format!("{general:?}"), format!("{combined:?}"), "{}", doc);
        }

        // Any single-byte damage to a real event: same agreement.
        #[test]
        fn fast_path_agrees_on_damaged_events(
            seed in 0u64..1000,
            pos in 0usize..1000,
            op in 0u8..3,
            byte in proptest::sample::select(vec![b'"', b'\\', b'{', b'}', b'[', b']', b',', b':', b'-', b'.', b'0', b'9', b'e', b' ', b'n', 0u8, 0x80, 0xc3, 0xe2, 0xff]),
        ) {
            let mut spec = crate::source::generate::GenerateSpec::new(
                crate::source::generate::Scenario::Broken,
                1,
            );
            spec.seed = seed;
            spec.embedding_dims = 2;
            let mut line = Vec::new();
            crate::source::generate::generate(&spec, &mut line).unwrap();
            let pos = pos % line.len();
            match op {
                0 => line[pos] = byte,
                1 => line.insert(pos, byte),
                _ => { line.remove(pos); }
            }
            let d = decoder();
            let general = d.decode_inference_general(&line);
            let combined = d.decode_inference(&line);
            proptest::prop_assert_eq!(format!("{general:?}"), format!("{combined:?}"), "{}", String::from_utf8_lossy(&line));
        }
    }

    #[test]
    fn generated_events_take_the_fast_path_with_the_same_result() {
        let mut spec = crate::source::generate::GenerateSpec::new(
            crate::source::generate::Scenario::QualityDrop,
            300,
        );
        spec.embedding_dims = 4;
        let mut out = Vec::new();
        crate::source::generate::generate(&spec, &mut out).unwrap();
        let d = decoder();
        let default_model = d.default_model.clone();
        for line in out.split(|&b| b == b'\n').filter(|l| !l.is_empty()) {
            let mut ascii = false;
            let fast = super::super::fast::decode(line, |_| Some(&default_model), &mut ascii);
            assert!(fast.is_some(), "generated events fit the fast path");
            let fast = fast.unwrap();
            assert!(ascii);
            assert_eq!(fast, d.decode_inference_general(line).unwrap());
        }
    }

    #[test]
    fn lookup_follows_rfc6901() {
        let v: Value = serde_json::json!({"a": {"b/c": [10, {"~d": 4}]}, "": 1});
        let cases: [(&str, Option<Value>); 6] = [
            ("", Some(v.clone())),
            ("/a/b~1c/0", Some(10.into())),
            ("/a/b~1c/1/~0d", Some(4.into())),
            ("/", Some(1.into())),
            ("/a/missing", None),
            ("a", None),
        ];
        for (ptr, want) in cases {
            assert_eq!(lookup(&v, ptr).cloned(), want, "{ptr}");
            assert_eq!(lookup(&v, ptr), v.pointer(ptr), "{ptr} as serde_json");
        }
    }

    #[test]
    fn feedback_events() {
        let d = decoder();
        let ok = d
            .decode_feedback(br#"{"event_id":"e","timestamp":"2026-11-24T00:00:00Z","references":["a dog"],"rating":4.0}"#)
            .unwrap();
        assert_eq!(ok.references, ["a dog"]);
        assert_eq!(ok.rating, Some(4.0));
        let err = d
            .decode_feedback(br#"{"event_id":"e","timestamp":1}"#)
            .unwrap_err();
        assert_eq!(err.reason, RejectReason::MissingField);
        let err = d
            .decode_feedback(br#"{"event_id":"e","timestamp":1,"references":[3]}"#)
            .unwrap_err();
        assert_eq!(err.reason, RejectReason::WrongType);
    }
}
