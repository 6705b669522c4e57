#!/usr/bin/env bash
# End-to-end benchmark of `driftd report` (issue 2 target: 1,000,000 rows x 20
# columns of Parquet in under 5 s wall and 1.5 GB peak RSS on 2 cores).
#
#   bash scripts/bench-report.sh [ROWS] [RUNS]
#
# Builds release, writes the inputs once (examples/bench_data.rs), then runs
# the report RUNS times (default 3) under /usr/bin/time and prints wall time
# and peak RSS of each run.
set -euo pipefail
cd "$(dirname "$0")/.."
rows="${1:-1000000}"
runs="${2:-3}"
export CARGO_TARGET_DIR="${CARGO_TARGET_DIR:-${HOME:-/tmp}/.cache/driftd/target}"
data="${BENCH_DATA_DIR:-$CARGO_TARGET_DIR/bench-data-$rows}"

cargo build --release --locked --bin driftd --example bench_data
if [ ! -f "$data/current.parquet" ]; then
  "$CARGO_TARGET_DIR/release/examples/bench_data" "$data" "$rows"
fi
echo "machine: $(nproc) cores, $(awk '/MemTotal/ {printf "%.0f GiB", $2/1048576}' /proc/meminfo), $(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2 | sed 's/^ //')"
echo "input: $(du -h "$data/reference.parquet" | cut -f1) + $(du -h "$data/current.parquet" | cut -f1) Parquet, $rows rows x 20 columns each"
for i in $(seq "$runs"); do
  /usr/bin/time -f "run $i: wall %e s, peak RSS %M KiB, user %U s, sys %S s" \
    "$CARGO_TARGET_DIR/release/driftd" report \
      --reference "$data/reference.parquet" --current "$data/current.parquet" --out /dev/null
done
