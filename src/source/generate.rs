//! Synthetic inference logs of an alt-text captioning service, for demos,
//! tests and benchmarks: eight input features, a caption from a template
//! grammar with a confidence, optional dual-encoder embeddings, latency and
//! serving errors. Deterministic for a seed. A scenario injects a change at a
//! chosen event: covariate shift, caption quality drop, or a broken component.

use std::io::Write;

use serde::Serialize;

use crate::testkit::XorShift;

#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum Scenario {
    /// Nothing changes.
    Stable,
    /// Inputs drift: darker, larger images, more from scanners; captions unchanged.
    CovariateShift,
    /// Captions rot: boilerplate, repetition, truncation, empty captions, lower
    /// confidence and image-caption agreement.
    QualityDrop,
    /// The serving path breaks: errors, empty captions, latency spikes.
    Broken,
    /// Inputs drift jointly, not one by one: brightness and contrast are
    /// correlated +0.8, then -0.8. Every marginal distribution is unchanged,
    /// so only a multivariate check (the domain classifier) can see it.
    JointShift,
    /// The image pipeline upstream changes: brightness arrives in percent,
    /// file size sometimes as text ("245.1 KB"), contrast is often null, the
    /// format field is gone, a new source appears and a new field
    /// (`exif_orientation`) is sent. The data-quality checks' scenario.
    UpstreamChange,
    /// Brightness darkens by 0.2 standard deviations: a small shift.
    SmallShift,
    /// Brightness darkens gradually, from nothing at the change to one
    /// standard deviation at the last event.
    GradualRamp,
    /// Nothing changes, but every day cycles: the share of mobile images
    /// between 30 % and 60 % and brightness by +-0.3 sd over 24 hours of
    /// event time (midday brightest). Benign when the reference holds a day.
    DailyCycle,
    /// Only the caption embeddings move: their agreement with the image's
    /// topic drops from 0.6 to 0.45; every feature and caption is unchanged.
    EmbeddingShift,
    /// Scanned images (a tenth of traffic) darken by one standard
    /// deviation; other sources are unchanged. Overall it is a 0.1 sd shift.
    SegmentShift,
}

/// What to generate.
#[derive(Debug, Clone)]
pub struct GenerateSpec {
    pub scenario: Scenario,
    pub events: u64,
    /// Events per second of event time.
    pub rate: f64,
    pub seed: u64,
    /// Index of the first changed event (default: half way).
    pub drift_at: u64,
    /// Dimensions of the image and caption embeddings; 0 for none.
    pub embedding_dims: usize,
    pub model: String,
    pub model_version: String,
    /// Event time of the first event, epoch milliseconds.
    pub start_ms: i64,
}

impl GenerateSpec {
    pub fn new(scenario: Scenario, events: u64) -> Self {
        Self {
            scenario,
            events,
            rate: 100.0,
            seed: 1,
            drift_at: events / 2,
            embedding_dims: 0,
            model: "alt-text-captioner".into(),
            model_version: "3.2.0".into(),
            // 2026-11-24T00:00:00Z
            start_ms: 1_795_478_400_000,
        }
    }
}

const SUBJECTS: [&str; 10] = [
    "a man",
    "a woman",
    "a dog",
    "two dogs",
    "a cat",
    "a child",
    "a group of people",
    "a train",
    "a red bus",
    "a cyclist",
];
const VERBS: [&str; 7] = [
    "riding",
    "sitting on",
    "standing next to",
    "looking at",
    "walking past",
    "playing with",
    "parked near",
];
const OBJECTS: [&str; 9] = [
    "a bike",
    "a bench",
    "a car",
    "a ball",
    "a table",
    "a tall building",
    "the beach",
    "a busy street",
    "a tree",
];
const PLACES: [&str; 7] = [
    "",
    "in the park",
    "on a sunny day",
    "at night",
    "in the snow",
    "near the water",
    "in a city",
];
const SOURCES: [&str; 3] = ["mobile", "web", "scanner"];
const FORMATS: [&str; 3] = ["jpeg", "png", "webp"];

#[derive(Serialize)]
struct Features<'a> {
    brightness: f64,
    contrast: f64,
    width: u32,
    height: u32,
    file_size_kb: f64,
    source: &'a str,
    format: &'a str,
    is_photo: bool,
}

#[derive(Serialize)]
struct Prediction {
    caption: String,
    confidence: f64,
}

#[derive(Serialize)]
struct Embeddings {
    image: Vec<f64>,
    caption: Vec<f64>,
}

#[derive(Serialize)]
struct Event<'a> {
    event_id: String,
    timestamp: String,
    model: &'a str,
    model_version: &'a str,
    features: Features<'a>,
    prediction: Option<Prediction>,
    #[serde(skip_serializing_if = "Option::is_none")]
    embeddings: Option<Embeddings>,
    latency_ms: f64,
    error: Option<&'a str>,
}

fn pick<'a>(rng: &mut XorShift, xs: &[&'a str]) -> &'a str {
    xs[((rng.uniform() * xs.len() as f64) as usize).min(xs.len() - 1)]
}

fn weighted<'a>(rng: &mut XorShift, xs: &[&'a str], weights: &[f64]) -> &'a str {
    let total: f64 = weights.iter().sum();
    let mut u = rng.uniform() * total;
    for (x, w) in xs.iter().zip(weights) {
        if u < *w {
            return x;
        }
        u -= w;
    }
    xs[xs.len() - 1]
}

fn rfc3339(ms: i64) -> String {
    let t = time::OffsetDateTime::from_unix_timestamp_nanos(ms as i128 * 1_000_000)
        .unwrap_or(time::OffsetDateTime::UNIX_EPOCH);
    t.format(&time::macros::format_description!(
        "[year]-[month]-[day]T[hour]:[minute]:[second].[subsecond digits:3]Z"
    ))
    .unwrap_or_default()
}

/// A unit-length vector near `topic` (cosine about `agreement`).
fn embedding(rng: &mut XorShift, topic: &[f64], agreement: f64) -> Vec<f64> {
    let noise: Vec<f64> = (0..topic.len()).map(|_| rng.normal()).collect();
    let v: Vec<f64> = topic
        .iter()
        .zip(&noise)
        .map(|(t, n)| agreement * t + (1.0 - agreement) * n / (topic.len() as f64).sqrt())
        .collect();
    let norm = v.iter().map(|x| x * x).sum::<f64>().sqrt().max(1e-12);
    v.iter().map(|x| ((x / norm) * 1e4).round() / 1e4).collect()
}

/// One event's features after the upstream change (see
/// [`Scenario::UpstreamChange`]).
fn upstream_change(rng: &mut XorShift, f: &mut serde_json::Value) {
    use serde_json::json;
    let Some(f) = f.as_object_mut() else {
        return;
    };
    if let Some(b) = f.get("brightness").and_then(|b| b.as_f64()) {
        f.insert("brightness".into(), json!((b * 1e4).round() / 1e2));
    }
    if rng.uniform() < 0.4 {
        if let Some(kb) = f.get("file_size_kb").and_then(|k| k.as_f64()) {
            f.insert("file_size_kb".into(), json!(format!("{kb} KB")));
        }
    }
    if rng.uniform() < 0.2 {
        f.insert("contrast".into(), serde_json::Value::Null);
    }
    f.remove("format");
    if rng.uniform() < 0.25 {
        f.insert("source".into(), json!("tablet"));
    }
    let orientation = 1 + (rng.uniform() * 8.0) as u32;
    f.insert("exif_orientation".into(), json!(orientation.min(8)));
}

/// Write `spec.events` NDJSON events to `out`.
pub fn generate(spec: &GenerateSpec, out: &mut dyn Write) -> std::io::Result<()> {
    let mut rng = XorShift::new(spec.seed);
    let topics: Vec<Vec<f64>> = (0..SUBJECTS.len())
        .map(|_| {
            let v: Vec<f64> = (0..spec.embedding_dims).map(|_| rng.normal()).collect();
            let n = v.iter().map(|x| x * x).sum::<f64>().sqrt().max(1e-12);
            v.into_iter().map(|x| x / n).collect()
        })
        .collect();
    let step_ms = 1000.0 / spec.rate.max(1e-9);
    let mut line = Vec::with_capacity(1024);
    for i in 0..spec.events {
        let changed = i >= spec.drift_at;
        let shift = changed && spec.scenario == Scenario::CovariateShift;
        let rot = changed && spec.scenario == Scenario::QualityDrop;
        let broken = changed && spec.scenario == Scenario::Broken;
        let ts = spec.start_ms + (i as f64 * step_ms) as i64;
        // Brightness offset in standard deviations, and the day's phase.
        let mut darken = match spec.scenario {
            Scenario::SmallShift if changed => 0.2,
            Scenario::GradualRamp if changed => {
                let span = spec.events.saturating_sub(spec.drift_at).max(1) as f64;
                (i - spec.drift_at) as f64 / span
            }
            _ => 0.0,
        };
        let day = (ts - spec.start_ms) as f64 / 86_400_000.0 * std::f64::consts::TAU;
        if spec.scenario == Scenario::DailyCycle {
            // Brightest at midday: -cos is -1 at midnight, +1 at noon.
            darken = 0.3 * day.cos();
        }

        let subject_i = ((rng.uniform() * SUBJECTS.len() as f64) as usize).min(SUBJECTS.len() - 1);
        let mut words = format!(
            "{} {} {} {}",
            SUBJECTS[subject_i],
            pick(&mut rng, &VERBS),
            pick(&mut rng, &OBJECTS),
            pick(&mut rng, &PLACES)
        );
        words = words.trim_end().to_owned();
        let mut agreement = if changed && spec.scenario == Scenario::EmbeddingShift {
            0.45
        } else {
            0.6
        };
        if rot {
            agreement = 0.15;
            let u = rng.uniform();
            words = if u < 0.3 {
                format!("a picture of {}", SUBJECTS[subject_i])
            } else if u < 0.5 {
                let w = pick(&mut rng, &OBJECTS);
                format!("{w} {w} {w}")
            } else if u < 0.65 {
                format!("{} {} a", SUBJECTS[subject_i], pick(&mut rng, &VERBS))
            } else if u < 0.75 {
                String::new()
            } else {
                words
            };
        }
        let failed = rng.uniform() < if broken { 0.3 } else { 0.01 };
        if broken && rng.uniform() < 0.2 {
            words.clear();
        }
        let confidence = (rng.normal() * 0.08 + if rot { 0.55 } else { 0.8 }).clamp(0.0, 1.0);
        let latency = (rng.normal() * 0.3 + 4.9).exp() * if broken { 4.0 } else { 1.0 };
        let source = if shift {
            weighted(&mut rng, &SOURCES, &[0.3, 0.3, 0.4])
        } else if spec.scenario == Scenario::DailyCycle {
            // Mobile 45 % +- 15 %, most at midday; the rest as usual.
            let mobile = 0.45 - 0.15 * day.cos();
            let rest = 1.0 - mobile;
            weighted(
                &mut rng,
                &SOURCES,
                &[mobile, rest * 0.35 / 0.45, rest * 0.1 / 0.45],
            )
        } else {
            weighted(&mut rng, &SOURCES, &[0.55, 0.35, 0.1])
        };
        if changed && spec.scenario == Scenario::SegmentShift && source == "scanner" {
            darken = 1.0;
        }
        let width = [640u32, 800, 1024, 1280, 2048, 4096]
            [((rng.uniform() * if shift { 6.0 } else { 4.0 }) as usize).min(5)];
        let z_brightness = rng.normal();
        let mut z_contrast = rng.normal();
        if spec.scenario == Scenario::JointShift {
            let rho: f64 = if changed { -0.8 } else { 0.8 };
            z_contrast = rho * z_brightness + (1.0 - rho * rho).sqrt() * z_contrast;
        }
        let features = Features {
            brightness: (((z_brightness - darken) * 0.15 + if shift { 0.35 } else { 0.5 })
                .clamp(0.0, 1.0)
                * 1e4)
                .round()
                / 1e4,
            contrast: ((z_contrast * 0.1 + 0.6).clamp(0.0, 1.0) * 1e4).round() / 1e4,
            width,
            height: [480u32, 600, 768, 960][((rng.uniform() * 4.0) as usize).min(3)],
            file_size_kb: ((rng.normal() * 0.5 + 5.5).exp() * 10.0).round() / 10.0,
            source,
            format: weighted(&mut rng, &FORMATS, &[0.7, 0.2, 0.1]),
            is_photo: rng.uniform() < 0.8,
        };
        let embeddings = (spec.embedding_dims > 0 && !failed).then(|| Embeddings {
            image: embedding(&mut rng, &topics[subject_i], 0.9),
            caption: embedding(&mut rng, &topics[subject_i], agreement),
        });
        let event = Event {
            event_id: format!("{:016x}-{i:010}", spec.seed),
            timestamp: rfc3339(ts),
            model: &spec.model,
            model_version: &spec.model_version,
            features,
            prediction: (!failed).then(|| Prediction {
                caption: words,
                confidence: (confidence * 1e4).round() / 1e4,
            }),
            embeddings,
            latency_ms: (latency * 10.0).round() / 10.0,
            error: failed.then_some(if broken {
                "upstream timeout"
            } else {
                "model overloaded"
            }),
        };
        line.clear();
        if changed && spec.scenario == Scenario::UpstreamChange {
            let mut v = serde_json::to_value(&event).map_err(std::io::Error::other)?;
            upstream_change(&mut rng, &mut v["features"]);
            serde_json::to_writer(&mut line, &v).map_err(std::io::Error::other)?;
        } else {
            serde_json::to_writer(&mut line, &event).map_err(std::io::Error::other)?;
        }
        line.push(b'\n');
        out.write_all(&line)?;
    }
    out.flush()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::Config;
    use crate::event::Decoder;

    fn lines(spec: &GenerateSpec) -> Vec<String> {
        let mut out = Vec::new();
        generate(spec, &mut out).unwrap();
        String::from_utf8(out)
            .unwrap()
            .lines()
            .map(str::to_owned)
            .collect()
    }

    #[test]
    fn deterministic_for_a_seed_and_decodable() {
        let mut spec = GenerateSpec::new(Scenario::QualityDrop, 500);
        spec.embedding_dims = 8;
        let a = lines(&spec);
        assert_eq!(a, lines(&spec));
        spec.seed = 2;
        assert_ne!(a, lines(&spec));
        let d = Decoder::new(&Config::default());
        for l in &a {
            let e = d.decode_inference(l.as_bytes()).unwrap();
            assert_eq!(e.features.len(), 8);
        }
    }

    #[test]
    fn scenarios_change_what_they_say() {
        let d = Decoder::new(&Config::default());
        let errors = |s: Scenario| {
            let evs = lines(&GenerateSpec::new(s, 4000));
            let second: Vec<_> = evs[2000..]
                .iter()
                .map(|l| d.decode_inference(l.as_bytes()).unwrap())
                .collect();
            second.iter().filter(|e| e.error.is_some()).count() as f64 / second.len() as f64
        };
        assert!(errors(Scenario::Stable) < 0.03);
        assert!(errors(Scenario::Broken) > 0.2);
        // Timestamps advance at the configured rate: 100/s -> 10 ms apart.
        let evs = lines(&GenerateSpec::new(Scenario::Stable, 3));
        let ts: Vec<i64> = evs
            .iter()
            .map(|l| d.decode_inference(l.as_bytes()).unwrap().timestamp_ms)
            .collect();
        assert_eq!((ts[1] - ts[0], ts[2] - ts[1]), (10, 10));
    }

    /// Mean brightness of `events`' events `range`, over those whose source
    /// is `source` (any when None), in the stable stream's standard
    /// deviations (0.15) from its mean (0.5).
    fn brightness(spec: &GenerateSpec, range: std::ops::Range<usize>, source: Option<&str>) -> f64 {
        let (mut sum, mut n) = (0.0, 0.0);
        for l in &lines(spec)[range] {
            let v: serde_json::Value = serde_json::from_str(l).unwrap();
            let f = &v["features"];
            if source.is_none_or(|s| f["source"] == s) {
                sum += f["brightness"].as_f64().unwrap();
                n += 1.0;
            }
        }
        (sum / n - 0.5) / 0.15
    }

    #[test]
    fn the_evaluation_scenarios_shift_what_they_say() {
        let spec = |s: Scenario, events: u64| {
            let mut g = GenerateSpec::new(s, events);
            g.seed = 5;
            g
        };
        // Small shift: -0.2 sd after the change, nothing before.
        let small = spec(Scenario::SmallShift, 40_000);
        assert!(brightness(&small, 0..20_000, None).abs() < 0.03);
        assert!((brightness(&small, 20_000..40_000, None) + 0.2).abs() < 0.03);
        // Ramp: 0 at the change, -1 sd at the end, -0.5 on average.
        let ramp = spec(Scenario::GradualRamp, 40_000);
        assert!((brightness(&ramp, 20_000..40_000, None) + 0.5).abs() < 0.03);
        assert!((brightness(&ramp, 38_000..40_000, None) + 0.95).abs() < 0.06);
        // Segment: scanners -1 sd, the others unchanged.
        let segment = spec(Scenario::SegmentShift, 40_000);
        assert!((brightness(&segment, 20_000..40_000, Some("scanner")) + 1.0).abs() < 0.1);
        assert!(brightness(&segment, 20_000..40_000, Some("mobile")).abs() < 0.05);
        // Daily cycle: darkest at midnight, brightest at noon; more mobile
        // images at noon. One event a second for a day.
        let mut day = spec(Scenario::DailyCycle, 86_400);
        day.rate = 1.0;
        let hour = |h: usize| h * 3600..h * 3600 + 3600;
        assert!((brightness(&day, hour(0), None) + 0.3).abs() < 0.06);
        assert!((brightness(&day, hour(12), None) - 0.3).abs() < 0.06);
        let mobile = |r: std::ops::Range<usize>| {
            let ls = &lines(&day)[r];
            ls.iter()
                .filter(|l| l.contains("\"source\":\"mobile\""))
                .count() as f64
                / ls.len() as f64
        };
        assert!((mobile(hour(0)) - 0.30).abs() < 0.03, "{}", mobile(hour(0)));
        assert!(
            (mobile(hour(12)) - 0.60).abs() < 0.03,
            "{}",
            mobile(hour(12))
        );
        // Embedding shift: captions agree less with their image; features
        // and captions unchanged.
        let mut emb = spec(Scenario::EmbeddingShift, 4_000);
        emb.embedding_dims = 16;
        let mut stable = emb.clone();
        stable.scenario = Scenario::Stable;
        let cosine = |l: &String| {
            let v: serde_json::Value = serde_json::from_str(l).unwrap();
            let e = &v["embeddings"];
            let (a, b) = (e["image"].as_array(), e["caption"].as_array());
            a.zip(b).map(|(a, b)| {
                a.iter()
                    .zip(b)
                    .map(|(x, y)| x.as_f64().unwrap() * y.as_f64().unwrap())
                    .sum::<f64>()
            })
        };
        let mean_cos = |ls: &[String]| {
            let c: Vec<f64> = ls.iter().filter_map(cosine).collect();
            c.iter().sum::<f64>() / c.len() as f64
        };
        let (e, s) = (lines(&emb), lines(&stable));
        assert!(mean_cos(&e[2000..]) < mean_cos(&s[2000..]) - 0.05);
        let features =
            |l: &String| serde_json::from_str::<serde_json::Value>(l).unwrap()["features"].clone();
        assert!(e.iter().zip(&s).all(|(a, b)| features(a) == features(b)));
    }
}
