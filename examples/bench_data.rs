//! Writes the end-to-end benchmark inputs: two Parquet files of 1,000,000 rows
//! x 20 columns (10 numeric, 10 categorical), the current one drifted in half
//! of the columns. Deterministic.
//!
//!     cargo run --release --example bench_data -- DIR [ROWS]

use driftd::testkit::XorShift;
use polars::prelude::*;

fn frame(rows: usize, seed: u64, drift: bool) -> DataFrame {
    let mut rng = XorShift::new(seed);
    let mut columns: Vec<Column> = Vec::new();
    for c in 0..10 {
        let shift = if drift && c % 2 == 0 { 0.2 } else { 0.0 };
        let values: Vec<Option<f64>> = (0..rows)
            .map(|_| {
                if rng.uniform() < 0.01 {
                    None
                } else {
                    Some(rng.normal() * (1.0 + c as f64) + shift)
                }
            })
            .collect();
        columns.push(Column::new(format!("num_{c}").into(), values));
    }
    for c in 0..10 {
        let k = 5 + 5 * c;
        let names: Vec<String> = (0..k).map(|i| format!("cat{c}_{i}")).collect();
        let values: Vec<&str> = (0..rows)
            .map(|_| {
                let u = rng.uniform();
                // Skewed categories; drifted columns tilt towards the tail.
                let p = if drift && c % 2 == 0 {
                    u.powf(0.8)
                } else {
                    u.powi(2)
                };
                names[((p * k as f64) as usize).min(k - 1)].as_str()
            })
            .collect();
        columns.push(Column::new(format!("cat_{c}").into(), values));
    }
    DataFrame::new_infer_height(columns).expect("columns of equal length")
}

fn main() {
    let mut args = std::env::args().skip(1);
    let dir = std::path::PathBuf::from(args.next().unwrap_or_else(|| "bench-data".into()));
    let rows: usize = args
        .next()
        .map(|r| r.parse().expect("ROWS is a number"))
        .unwrap_or(1_000_000);
    std::fs::create_dir_all(&dir).expect("create output directory");
    for (name, seed, drift) in [
        ("reference.parquet", 1, false),
        ("current.parquet", 2, true),
    ] {
        let mut df = frame(rows, seed, drift);
        let path = dir.join(name);
        ParquetWriter::new(std::fs::File::create(&path).expect("create file"))
            .finish(&mut df)
            .expect("write parquet");
        println!(
            "wrote {} ({rows} rows x {} columns)",
            path.display(),
            df.width()
        );
    }
}
