#!/usr/bin/env bash
# The whole test suite. Used by README ("Run the tests") and by .ci/run.
#
# Builds into a target directory outside the clone when one is given
# (CARGO_TARGET_DIR), so repeated runs on the same machine reuse the build.
set -euo pipefail
cd "$(dirname "$0")/.."

export CARGO_TERM_COLOR="${CARGO_TERM_COLOR:-never}"
export CARGO_TARGET_DIR="${CARGO_TARGET_DIR:-${HOME:-/tmp}/.cache/driftd/target}"

# Lints need rustfmt and clippy; a toolchain without them says so and goes on
# (they are checks of style, not tests, and no toolchain can be fetched here).
if cargo fmt --version >/dev/null 2>&1; then
  echo "== cargo fmt --check"
  cargo fmt --all -- --check
else
  echo "== cargo fmt: rustfmt is not installed, style check not run"
fi
if cargo clippy --version >/dev/null 2>&1; then
  echo "== cargo clippy"
  cargo clippy --all-targets --locked -- -D warnings
else
  echo "== cargo clippy: clippy is not installed, lint not run"
fi

# The broker-backed tests start their own tansu (a Kafka-protocol broker,
# in-memory storage) on loopback and check /metrics with promtool. Both are
# installed here when missing; a missing broker fails those tests, never skips
# them. tansu takes about 20 minutes to build, once: cargo caches the binary
# in ~/.cargo/bin.
TANSU_VERSION=0.6.0
export PATH="${CARGO_HOME:-$HOME/.cargo}/bin:$PATH"
if ! tansu --version 2>/dev/null | grep -q "$TANSU_VERSION"; then
  echo "== installing tansu $TANSU_VERSION (about 20 minutes, once)"
  cargo install tansu --version "$TANSU_VERSION" --locked --features dynostore
fi
if ! command -v promtool >/dev/null; then
  echo "== installing promtool (Debian package prometheus)"
  if command -v apt-get >/dev/null; then
    DEBIAN_FRONTEND=noninteractive apt-get install -y --no-install-recommends prometheus >/dev/null \
      || { apt-get update >/dev/null && DEBIAN_FRONTEND=noninteractive apt-get install -y --no-install-recommends prometheus >/dev/null; }
  fi
  command -v promtool >/dev/null || { echo "test: promtool could not be installed; /metrics cannot be checked" >&2; exit 1; }
fi

# --all-targets also runs each criterion benchmark once, as a test.
echo "== cargo test"
log="$(mktemp)"
trap 'rm -f "$log"' EXIT
cargo test --all-targets --locked 2>&1 | tee "$log"
# One closing line over every test binary (criterion's test mode prints none).
awk '/^test result:/ { for (i = 1; i <= NF; i++) { if ($(i+1) ~ /^passed/) p += $i; if ($(i+1) ~ /^failed/) f += $i } }
     END { printf "tests: %d passed, %d failed\n", p, f; if (p == 0) exit 1 }' "$log"

