//! Reference profiles: what the drift tests need from a reference dataset,
//! without the raw rows. Written by `driftd baseline`, read by
//! `driftd report --baseline` and (later) by the streaming daemon.
//!
//! Format (JSON, `format = "driftd.profile"`, `version = 1`):
//! - numeric features: count, missing, mean, population std, min, max, the
//!   decile edges and the reference count in each bin (PSI and JS from a
//!   profile are therefore exact), and a [`QuantileSummary`] for KS and
//!   Wasserstein: the whole sorted sample when it has at most 2,001 values
//!   (exact tests), otherwise 2,001 quantiles (KS within 1/2000; see
//!   `tests/baseline_accuracy.rs` for measured Wasserstein error);
//! - categorical features: count, missing and the count of every category;
//! - `sample`: up to `learned.reference_size` reference rows (numeric values and
//!   embedding vectors), the reference of the learned checks. With two
//!   512-dim embeddings at the default 2,048 rows that is about 20 MB of JSON.

use std::collections::BTreeMap;
use std::path::Path;

use serde::{Deserialize, Serialize};

use super::collect::FeatureData;
use crate::config::FeatureKind;
use crate::sketch::quantile::{DEFAULT_EXACT_LIMIT, DEFAULT_INTERVALS};
use crate::sketch::{CategoryCounts, QuantileSummary};
use crate::stats::binned;
use crate::stats::numeric_sum::pairwise_sum;
use crate::stats::wasserstein::population_std;

pub const PROFILE_FORMAT: &str = "driftd.profile";
pub const PROFILE_VERSION: u32 = 1;

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Profile {
    /// Always `driftd.profile`.
    pub format: String,
    /// Layout version; readers refuse versions they do not know.
    pub version: u32,
    /// When the profile was built (RFC 3339, UTC).
    pub created_at: String,
    /// driftd version that built it.
    pub driftd_version: String,
    /// Model the reference belongs to, when known.
    pub model: Option<String>,
    /// Files the profile was built from.
    pub inputs: Vec<String>,
    /// Rows read.
    pub rows: u64,
    pub features: BTreeMap<String, FeatureProfile>,
    /// A uniform sample of the reference rows (numeric features and
    /// embeddings): the learned checks' reference. Absent in profiles
    /// written before driftd had them; those models then skip the checks.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub sample: Option<crate::learned::window::DatasetSample>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum FeatureProfile {
    Numeric(NumericProfile),
    Categorical(CategoricalProfile),
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct NumericProfile {
    /// numeric, or text / embedding when the numbers are token counts / norms.
    pub source: FeatureKind,
    pub count: u64,
    pub missing: u64,
    pub mean: f64,
    /// Population standard deviation (ddof 0), for normalized Wasserstein.
    pub std: f64,
    pub min: f64,
    pub max: f64,
    /// Decile edges (duplicates removed).
    pub edges: Vec<f64>,
    /// Reference count per bin; `edges.len() + 1` bins.
    pub bin_counts: Vec<u64>,
    pub quantiles: QuantileSummary,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CategoricalProfile {
    pub count: u64,
    pub missing: u64,
    pub categories: CategoryCounts,
}

/// Why a profile could not be used.
#[derive(Debug, thiserror::Error)]
pub enum ProfileError {
    #[error("{path}: cannot read: {source}")]
    Io {
        path: String,
        source: std::io::Error,
    },
    #[error("{path}: not a driftd profile: {message}")]
    Parse { path: String, message: String },
    #[error("{path}: {message}")]
    Invalid { path: String, message: String },
}

impl FeatureProfile {
    /// Numbers that are the feature's own values (not token counts or
    /// embedding norms): the learned checks' columns.
    pub fn is_plain_number(&self) -> bool {
        matches!(self, Self::Numeric(n) if n.source == FeatureKind::Numeric)
    }

    /// Profile of one feature's values. `None` when it has no non-null value.
    pub fn from_data(data: &FeatureData) -> Option<Self> {
        match data {
            FeatureData::Numeric {
                values,
                missing,
                source,
            } => {
                let (&min, &max) = (values.first()?, values.last()?);
                let edges = binned::decile_edges(values);
                Some(Self::Numeric(NumericProfile {
                    source: *source,
                    count: values.len() as u64,
                    missing: *missing,
                    mean: pairwise_sum(values) / values.len() as f64,
                    std: population_std(values),
                    min,
                    max,
                    bin_counts: binned::bin_counts(&edges, values),
                    edges,
                    quantiles: QuantileSummary::from_sorted(
                        values,
                        DEFAULT_EXACT_LIMIT,
                        DEFAULT_INTERVALS,
                    ),
                }))
            }
            FeatureData::Categorical { counts, missing } => {
                if counts.total() == 0 {
                    return None;
                }
                Some(Self::Categorical(CategoricalProfile {
                    count: counts.total(),
                    missing: *missing,
                    categories: counts.clone(),
                }))
            }
        }
    }

    pub fn count(&self) -> u64 {
        match self {
            Self::Numeric(p) => p.count,
            Self::Categorical(p) => p.count,
        }
    }

    pub fn missing(&self) -> u64 {
        match self {
            Self::Numeric(p) => p.missing,
            Self::Categorical(p) => p.missing,
        }
    }

    fn validate(&self) -> Result<(), String> {
        if self.missing() > MAX_COUNT {
            return Err(format!(
                "missing count {} is beyond {MAX_COUNT}",
                self.missing()
            ));
        }
        match self {
            Self::Numeric(p) => {
                if p.count == 0 {
                    return Err("count is 0".into());
                }
                if p.bin_counts.len() != p.edges.len() + 1 {
                    return Err(format!(
                        "{} bin counts for {} edges",
                        p.bin_counts.len(),
                        p.edges.len()
                    ));
                }
                if p.count > MAX_COUNT {
                    return Err(format!("count {} is beyond {MAX_COUNT}", p.count));
                }
                let bins = p
                    .bin_counts
                    .iter()
                    .try_fold(0u64, |total, &c| total.checked_add(c));
                if bins != Some(p.count) {
                    return Err("bin counts do not add up to count".into());
                }
                if !(p.mean.is_finite() && p.min.is_finite() && p.max.is_finite() && p.min <= p.max)
                {
                    return Err("mean, min and max must be finite numbers with min <= max".into());
                }
                if p.edges.windows(2).any(|w| w[0] >= w[1])
                    || p.edges.iter().any(|e| !e.is_finite())
                {
                    return Err("edges are not strictly ascending finite numbers".into());
                }
                if !(p.std.is_finite() && p.std >= 0.0) {
                    return Err(format!(
                        "std must be a finite non-negative number, got {}",
                        p.std
                    ));
                }
                p.quantiles.validate()?;
                if p.quantiles.count() != p.count {
                    return Err(format!(
                        "quantile summary covers {} values, count is {}",
                        p.quantiles.count(),
                        p.count
                    ));
                }
                Ok(())
            }
            Self::Categorical(p) => {
                let total = p
                    .categories
                    .0
                    .values()
                    .try_fold(0u64, |total, &c| total.checked_add(c));
                if total != Some(p.count) || p.count == 0 || p.count > MAX_COUNT {
                    return Err("category counts do not add up to a positive count".into());
                }
                Ok(())
            }
        }
    }
}

/// Largest count a profile may hold: 2^53, where f64 stops counting exactly
/// (far beyond any reference dataset).
const MAX_COUNT: u64 = 1 << 53;

impl Profile {
    /// Build a profile from one or more datasets of the same features.
    pub fn build(
        model: Option<&str>,
        inputs: Vec<String>,
        rows: u64,
        features: &BTreeMap<String, FeatureData>,
    ) -> Result<Self, String> {
        let mut out = BTreeMap::new();
        for (name, data) in features {
            let fp = FeatureProfile::from_data(data)
                .ok_or_else(|| format!("feature {name:?} has no non-null values"))?;
            out.insert(name.clone(), fp);
        }
        let created_at = time::OffsetDateTime::now_utc()
            .format(&time::format_description::well_known::Rfc3339)
            .unwrap_or_default();
        Ok(Self {
            format: PROFILE_FORMAT.into(),
            version: PROFILE_VERSION,
            created_at,
            driftd_version: env!("CARGO_PKG_VERSION").into(),
            model: model.map(str::to_owned),
            inputs,
            rows,
            features: out,
            sample: None,
        })
    }

    pub fn load(path: &Path) -> Result<Self, ProfileError> {
        let name = path.display().to_string();
        let text = std::fs::read_to_string(path).map_err(|source| ProfileError::Io {
            path: name.clone(),
            source,
        })?;
        Self::parse(&text, &name)
    }

    /// A profile from its JSON text; `name` names it in errors.
    pub fn parse(text: &str, name: &str) -> Result<Self, ProfileError> {
        let name = name.to_owned();
        let p: Profile = serde_json::from_str(text).map_err(|e| ProfileError::Parse {
            path: name.clone(),
            message: e.to_string(),
        })?;
        if p.format != PROFILE_FORMAT {
            return Err(ProfileError::Invalid {
                path: name,
                message: format!("format is {:?}, want {PROFILE_FORMAT:?}", p.format),
            });
        }
        if p.version != PROFILE_VERSION {
            return Err(ProfileError::Invalid {
                path: name,
                message: format!("profile version {} is not supported (this driftd reads version {PROFILE_VERSION})", p.version),
            });
        }
        for (feature, fp) in &p.features {
            fp.validate().map_err(|m| ProfileError::Invalid {
                path: name.clone(),
                message: format!("feature {feature:?}: {m}"),
            })?;
        }
        Ok(p)
    }

    pub fn to_json(&self) -> String {
        serde_json::to_string_pretty(self).expect("profile serializes")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn numeric(values: Vec<f64>) -> FeatureData {
        FeatureData::Numeric {
            values,
            missing: 1,
            source: FeatureKind::Numeric,
        }
    }

    #[test]
    fn round_trips_and_validates() {
        let mut features = BTreeMap::new();
        features.insert(
            "x".to_owned(),
            numeric((0..5000).map(|i| (i as f64).sqrt()).collect()),
        );
        let mut counts = CategoryCounts::default();
        counts.add("a", 3);
        features.insert(
            "c".to_owned(),
            FeatureData::Categorical { counts, missing: 0 },
        );
        let p = Profile::build(Some("m"), vec!["in.csv".into()], 5001, &features).unwrap();
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("p.json");
        std::fs::write(&path, p.to_json()).unwrap();
        assert_eq!(Profile::load(&path).unwrap(), p);
    }

    #[test]
    fn rejects_tampered_profiles() {
        let mut features = BTreeMap::new();
        features.insert("x".to_owned(), numeric(vec![1.0, 2.0, 3.0]));
        let p = Profile::build(None, vec![], 3, &features).unwrap();
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("p.json");
        let cases = [
            (
                p.to_json().replace("\"version\": 1", "\"version\": 9"),
                "version 9 is not supported",
            ),
            (p.to_json().replace("driftd.profile", "other"), "format is"),
            (
                p.to_json().replace("\"count\": 3", "\"count\": 4"),
                "do not add up",
            ),
            ("{".to_owned(), "not a driftd profile"),
        ];
        for (text, want) in cases {
            std::fs::write(&path, &text).unwrap();
            let err = Profile::load(&path).unwrap_err().to_string();
            assert!(err.contains(want), "{err}");
        }
    }
}
