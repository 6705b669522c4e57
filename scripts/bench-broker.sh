#!/usr/bin/env bash
# `driftd run` against a real broker beside a bare rdkafka consumer that only
# counts messages, same topic, same run (issue 4: driftd >= 90 % of the bare
# consumer's rate), and driftd's resident memory after 1M, 2M, 5M and 10M
# events when EVENTS reaches them.
#
#   bash scripts/bench-broker.sh [EVENTS] [ROUNDS]    defaults 300000 3
#
# Needs tansu on PATH or in ~/.cargo/bin (scripts/test.sh installs it).
set -euo pipefail
cd "$(dirname "$0")/.."
export CARGO_TARGET_DIR="${CARGO_TARGET_DIR:-${HOME:-/tmp}/.cache/driftd/target}"
export PATH="${CARGO_HOME:-$HOME/.cargo}/bin:$PATH"
cargo build --release --locked --bin driftd --example broker_bench
echo "machine: $(nproc) cores, $(awk '/MemTotal/ {printf "%.0f GiB", $2/1048576}' /proc/meminfo), $(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2 | sed 's/^ //')"
"$CARGO_TARGET_DIR/release/examples/broker_bench" "${1:-300000}" "${2:-3}"
