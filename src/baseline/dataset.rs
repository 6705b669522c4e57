//! Reading a reference or current dataset from Parquet, CSV or NDJSON (chosen
//! by extension) with polars, or, for NDJSON inference-log events, with the
//! same event decoder the streaming path uses.

use std::collections::BTreeMap;
use std::fs::File;
use std::io::BufReader;
use std::path::{Path, PathBuf};

use polars::prelude::*;

use super::collect::{Collector, FeatureData};
use crate::config::{Config, ModelConfig};
use crate::event::{Decoder, FeatureValue};
use crate::learned::window::{sample_seed, DatasetSample, EventSample, Sampled};

/// The features of one input file.
#[derive(Debug, Clone)]
pub struct Dataset {
    pub path: PathBuf,
    /// For event logs: the model whose events were read.
    pub model: Option<String>,
    pub rows: u64,
    pub features: BTreeMap<String, FeatureData>,
    /// A uniform sample of the rows (numeric columns and embeddings) for the
    /// learned checks, of at most `learned.reference_size` rows.
    pub sample: DatasetSample,
}

/// Size and seed of a dataset's row sample: the model's
/// `learned.reference_size`, seeded by the file's name.
fn sample_plan(config: &Config, model: Option<&str>, path: &Path) -> (usize, u64) {
    let l = config.model(model.unwrap_or_default()).learned;
    let name = path
        .file_name()
        .and_then(|n| n.to_str())
        .unwrap_or_default();
    let seed = sample_seed(&l, model.unwrap_or_default(), name, 0);
    (l.reference_size, seed)
}

/// Why a dataset could not be read. Every variant names the file.
#[derive(Debug, thiserror::Error)]
pub enum DatasetError {
    #[error("{path}: cannot open: {source}")]
    Io {
        path: String,
        source: std::io::Error,
    },
    #[error("{path}: unknown format {ext:?}; use .parquet, .csv, .ndjson or .jsonl")]
    UnknownFormat { path: String, ext: String },
    #[error("{path}: cannot read: {message}")]
    Read { path: String, message: String },
    #[error("{path}: line {line}: {message}")]
    BadLine {
        path: String,
        line: usize,
        message: String,
    },
    #[error("{path}: column {column:?}: {message}")]
    Column {
        path: String,
        column: String,
        message: String,
    },
    #[error("{path}: no rows")]
    NoRows { path: String },
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Format {
    Parquet,
    Csv,
    Ndjson,
}

fn format_of(path: &Path) -> Result<Format, DatasetError> {
    let ext = path
        .extension()
        .and_then(|e| e.to_str())
        .unwrap_or("")
        .to_ascii_lowercase();
    match ext.as_str() {
        "parquet" | "pq" => Ok(Format::Parquet),
        "csv" => Ok(Format::Csv),
        "ndjson" | "jsonl" | "json" => Ok(Format::Ndjson),
        _ => Err(DatasetError::UnknownFormat {
            path: path.display().to_string(),
            ext,
        }),
    }
}

/// Read `path`. `model` selects the model's settings (and, for event logs,
/// which model's events to keep).
pub fn read_dataset(
    path: &Path,
    config: &Config,
    model: Option<&str>,
) -> Result<Dataset, DatasetError> {
    let started = std::time::Instant::now();
    let ds = read_dataset_inner(path, config, model)?;
    tracing::info!(
        path = %path.display(),
        rows = ds.rows,
        features = ds.features.len(),
        model = ds.model.as_deref().unwrap_or(""),
        elapsed_ms = started.elapsed().as_millis() as u64,
        "dataset read"
    );
    Ok(ds)
}

fn read_dataset_inner(
    path: &Path,
    config: &Config,
    model: Option<&str>,
) -> Result<Dataset, DatasetError> {
    let name = path.display().to_string();
    let format = format_of(path)?;
    // Open first so a missing file is reported as such, whatever the format.
    let file = File::open(path).map_err(|source| DatasetError::Io {
        path: name.clone(),
        source,
    })?;
    let mc = config.model(model.unwrap_or_default());
    if format == Format::Ndjson && looks_like_events(&file, config, &mc) {
        drop(file);
        return read_events(path, config, model);
    }
    let read_err = |e: PolarsError| DatasetError::Read {
        path: name.clone(),
        message: e.to_string(),
    };
    let df = match format {
        Format::Parquet => ParquetReader::new(file).finish().map_err(read_err)?,
        Format::Csv => CsvReadOptions::default()
            .with_has_header(true)
            // Scan every row: inferring from a prefix turns a late string in a
            // numeric column into a parse failure instead of a mixed-type report.
            .with_infer_schema_length(None)
            .try_into_reader_with_file_path(Some(path.to_path_buf()))
            .map_err(read_err)?
            .finish()
            .map_err(read_err)?,
        Format::Ndjson => {
            // polars recurses once per level of nesting: a deep enough line
            // overflows the stack and aborts the process.
            check_nesting(&file, &name)?;
            JsonReader::new(file)
                .with_json_format(JsonFormat::JsonLines)
                .infer_schema_len(None)
                .finish()
                .map_err(read_err)?
        }
    };
    let mut ds = from_frame(&name, path, &df, &mc)?;
    let (capacity, seed) = sample_plan(config, model, path);
    ds.sample = frame_sample(&df, &mc, capacity, seed);
    Ok(ds)
}

/// Sample rows of a frame: numeric columns as numbers, numeric list columns
/// as embeddings (named after the column).
fn frame_sample(df: &DataFrame, mc: &ModelConfig, capacity: usize, seed: u64) -> DatasetSample {
    let mut rows = crate::learned::Reservoir::new(capacity, seed);
    for i in 0..df.height() {
        rows.offer(i);
    }
    let mut picked: Vec<usize> = rows.items().to_vec();
    picked.sort_unstable();
    let mut numbers: Vec<Vec<(String, f64)>> = vec![Vec::new(); picked.len()];
    let mut embeddings: Vec<Vec<(String, Vec<f64>)>> = vec![Vec::new(); picked.len()];
    for col in df.columns() {
        let name = col.name().to_string();
        if !mc.monitors(&name) {
            continue;
        }
        let series = col.as_materialized_series();
        match series.dtype() {
            dt if dt.is_primitive_numeric() => {
                let Ok(f) = series.cast(&DataType::Float64) else {
                    continue;
                };
                let Ok(ca) = f.f64() else { continue };
                for (slot, &i) in picked.iter().enumerate() {
                    if let Some(x) = ca.get(i) {
                        numbers[slot].push((name.clone(), x));
                    }
                }
            }
            DataType::List(inner) if inner.is_primitive_numeric() => {
                let Ok(lists) = series.list() else { continue };
                for (slot, &i) in picked.iter().enumerate() {
                    let Some(v) = lists.get_as_series(i) else {
                        continue;
                    };
                    let Ok(f) = v.cast(&DataType::Float64) else {
                        continue;
                    };
                    let Ok(ca) = f.f64() else { continue };
                    let xs: Vec<f64> = ca.iter().map(|x| x.unwrap_or(f64::NAN)).collect();
                    embeddings[slot].push((name.clone(), xs));
                }
            }
            _ => {}
        }
    }
    DatasetSample {
        seen: df.height() as u64,
        events: numbers
            .into_iter()
            .zip(embeddings)
            .map(|(n, e)| Sampled::new(n, e))
            .collect(),
    }
}

/// Deepest nesting of arrays and objects read from NDJSON (a flat table's
/// rows nest two or three levels).
const MAX_NESTING: usize = 64;

/// Refuse NDJSON nested deeper than [`MAX_NESTING`], naming the line.
fn check_nesting(file: &File, name: &str) -> Result<(), DatasetError> {
    use std::io::{Read as _, Seek as _};
    let mut f = file.try_clone().map_err(|source| DatasetError::Io {
        path: name.to_owned(),
        source,
    })?;
    let io = |source| DatasetError::Io {
        path: name.to_owned(),
        source,
    };
    // The handle shares its offset with the caller's, which may have read.
    f.rewind().map_err(io)?;
    let mut reader = BufReader::with_capacity(1 << 16, &mut f);
    let (mut depth, mut line, mut in_string, mut escaped) = (0usize, 1u64, false, false);
    let mut chunk = [0u8; 1 << 16];
    loop {
        let n = reader.read(&mut chunk).map_err(io)?;
        if n == 0 {
            break;
        }
        for &b in &chunk[..n] {
            if in_string {
                match (escaped, b) {
                    (true, _) => escaped = false,
                    (false, b'\\') => escaped = true,
                    (false, b'"') => in_string = false,
                    _ => {}
                }
                continue;
            }
            match b {
                b'"' => in_string = true,
                b'[' | b'{' => {
                    depth += 1;
                    if depth > MAX_NESTING {
                        return Err(DatasetError::Read {
                            path: name.to_owned(),
                            message: format!(
                                "line {line}: JSON nested deeper than {MAX_NESTING} levels"
                            ),
                        });
                    }
                }
                b']' | b'}' => depth = depth.saturating_sub(1),
                b'\n' => {
                    line += 1;
                    depth = 0;
                }
                _ => {}
            }
        }
    }
    drop(reader);
    f.rewind().map_err(io)?;
    Ok(())
}

/// An NDJSON file holds inference-log events when its first object has the
/// model field and a features object where the config says they are.
fn looks_like_events(file: &File, config: &Config, mc: &ModelConfig) -> bool {
    let Ok(f) = file.try_clone() else {
        return false;
    };
    let mut lines = crate::source::file::LineSource::new(BufReader::new(f), config.max_event_bytes);
    let first = match lines.next_line() {
        Ok(Some(l)) if l.cut_from.is_none() => l.bytes.to_vec(),
        _ => return false,
    };
    let Ok(v) = serde_json::from_slice::<serde_json::Value>(&first) else {
        return false;
    };
    v.pointer(&config.model_pointer)
        .is_some_and(|m| m.is_string())
        && v.pointer(&mc.fields.features)
            .is_some_and(|f| f.is_object())
}

fn read_events(path: &Path, config: &Config, model: Option<&str>) -> Result<Dataset, DatasetError> {
    let name = path.display().to_string();
    let file = File::open(path).map_err(|source| DatasetError::Io {
        path: name.clone(),
        source,
    })?;
    let decoder = Decoder::new(config);
    let mut collectors: BTreeMap<String, Collector> = BTreeMap::new();
    let mut models_seen: BTreeMap<String, u64> = BTreeMap::new();
    let mut rows = 0u64;
    let (capacity, seed) = sample_plan(config, model, path);
    let mut sample = EventSample::new(capacity, seed);
    let mut lines = crate::source::file::LineSource::new(file, config.max_event_bytes);
    loop {
        let next = lines.next_line().map_err(|e| DatasetError::Read {
            path: name.clone(),
            message: e.to_string(),
        })?;
        let Some(l) = next else { break };
        let line_no = l.no as usize;
        if let Some(len) = l.cut_from {
            return Err(DatasetError::BadLine {
                path: name.clone(),
                line: line_no,
                message: format!(
                    "too_large: line is {len} bytes, limit is {} (limits.max_event_bytes)",
                    config.max_event_bytes
                ),
            });
        }
        let line = l.bytes;
        let event = decoder
            .decode_inference(line)
            .map_err(|r| DatasetError::BadLine {
                path: name.clone(),
                line: line_no,
                message: r.to_string(),
            })?;
        *models_seen.entry(event.model.to_string()).or_default() += 1;
        if model.is_some_and(|m| m != event.model) {
            continue;
        }
        rows += 1;
        sample.observe(&event);
        let mc = config.model(&event.model);
        for (feature, value) in event.features {
            let kind = mc.features.get(feature.as_ref()).and_then(|f| f.kind);
            let c = collectors
                .entry(feature.into_owned())
                .or_insert_with(|| Collector::new(kind));
            match value {
                FeatureValue::Number(x) => c.push_number(x),
                FeatureValue::Category(s) => c.push_category(&s),
                FeatureValue::Vector(v) => c.push_vector(&v),
                FeatureValue::Null => c.push_null(),
            }
        }
    }
    if model.is_none() && models_seen.len() > 1 {
        let names: Vec<_> = models_seen.keys().map(String::as_str).collect();
        return Err(DatasetError::Read {
            path: name,
            message: format!(
                "holds events of several models ({}); choose one with --model",
                names.join(", ")
            ),
        });
    }
    if rows == 0 {
        if let Some(m) = model {
            let names: Vec<_> = models_seen.keys().map(String::as_str).collect();
            return Err(DatasetError::Read {
                path: name,
                message: format!(
                    "no events of model {m:?} (models present: {})",
                    names.join(", ")
                ),
            });
        }
        return Err(DatasetError::NoRows { path: name });
    }
    // A feature absent from some events is missing there.
    let mut features = BTreeMap::new();
    for (feature, c) in collectors {
        let mut c = c;
        for _ in c.len()..rows {
            c.push_null();
        }
        let data = c.finish().map_err(|message| DatasetError::Column {
            path: name.clone(),
            column: feature.clone(),
            message,
        })?;
        features.insert(feature, data);
    }
    let model = model
        .map(str::to_owned)
        .or_else(|| models_seen.into_keys().next());
    Ok(Dataset {
        path: path.to_path_buf(),
        model,
        rows,
        features,
        sample: sample.to_dataset(),
    })
}

fn from_frame(
    name: &str,
    path: &Path,
    df: &DataFrame,
    mc: &ModelConfig,
) -> Result<Dataset, DatasetError> {
    if df.height() == 0 {
        return Err(DatasetError::NoRows {
            path: name.to_owned(),
        });
    }
    let column_err = |column: &str, message: String| DatasetError::Column {
        path: name.to_owned(),
        column: column.to_owned(),
        message,
    };
    let columns: Vec<&Column> = df
        .columns()
        .iter()
        .filter(|c| mc.monitors(c.name().as_str()))
        .collect();
    // Columns are independent: convert (and sort) them in parallel.
    let results: Vec<Result<(String, FeatureData), DatasetError>> = {
        use rayon::prelude::*;
        columns
            .par_iter()
            .map(|col| {
                let cname = col.name().to_string();
                let kind = mc.features.get(&cname).and_then(|f| f.kind);
                let data = column_data(col.as_materialized_series(), kind)
                    .map_err(|m| column_err(&cname, m))?;
                Ok((cname, data))
            })
            .collect()
    };
    let mut features = BTreeMap::new();
    for r in results {
        let (k, v) = r?;
        features.insert(k, v);
    }
    Ok(Dataset {
        path: path.to_path_buf(),
        model: None,
        rows: df.height() as u64,
        features,
        sample: DatasetSample::default(),
    })
}

fn column_data(
    s: &Series,
    kind: Option<crate::config::FeatureKind>,
) -> Result<FeatureData, String> {
    let mut c = Collector::new(kind);
    let dtype = s.dtype().clone();
    match &dtype {
        dt if dt.is_primitive_numeric() => {
            let f = s.cast(&DataType::Float64).map_err(|e| e.to_string())?;
            for v in f.f64().map_err(|e| e.to_string())?.iter() {
                match v {
                    Some(x) => c.push_number(x),
                    None => c.push_null(),
                }
            }
        }
        DataType::Boolean => {
            for v in s.bool().map_err(|e| e.to_string())?.iter() {
                match v {
                    Some(b) => c.push_category(if b { "true" } else { "false" }),
                    None => c.push_null(),
                }
            }
        }
        DataType::String | DataType::Categorical(..) | DataType::Enum(..) => {
            let st = s.cast(&DataType::String).map_err(|e| e.to_string())?;
            for v in st.str().map_err(|e| e.to_string())?.iter() {
                match v {
                    Some(x) => c.push_category(x),
                    None => c.push_null(),
                }
            }
        }
        DataType::List(inner) if inner.is_primitive_numeric() => {
            let lists = s.list().map_err(|e| e.to_string())?;
            for i in 0..lists.len() {
                match lists.get_as_series(i) {
                    Some(inner) => {
                        let f = inner.cast(&DataType::Float64).map_err(|e| e.to_string())?;
                        let xs: Vec<f64> = f.f64().map_err(|e| e.to_string())?.iter().flatten().collect();
                        c.push_vector(&xs);
                    }
                    None => c.push_null(),
                }
            }
        }
        DataType::Null => {
            for _ in 0..s.len() {
                c.push_null();
            }
        }
        other => {
            return Err(format!(
                "unsupported column type {other}; exclude it (models.<name>.exclude) or convert it to numbers or strings"
            ))
        }
    }
    c.finish()
}
