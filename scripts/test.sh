#!/usr/bin/env bash
# The whole test suite. Used by README ("Run the tests") and by .ci/run.
#
# Builds into a target directory outside the clone when one is given
# (CARGO_TARGET_DIR), so repeated runs on the same machine reuse the build.
set -euo pipefail
cd "$(dirname "$0")/.."

export CARGO_TERM_COLOR="${CARGO_TERM_COLOR:-never}"
export CARGO_TARGET_DIR="${CARGO_TARGET_DIR:-${HOME:-/tmp}/.cache/driftd/target}"
# A shared target directory grows by a few hundred MB of test binaries per
# change (each links polars and librdkafka; a busy day of changes filled a
# 250 GB disk once): no incremental state, and test binaries not rebuilt for
# two hours are dropped (cargo relinks the ones it needs, in seconds).
export CARGO_INCREMENTAL="${CARGO_INCREMENTAL:-0}"
if [ -d "$CARGO_TARGET_DIR/debug/deps" ]; then
  find "$CARGO_TARGET_DIR/debug/deps" -maxdepth 1 -type f -executable ! -name '*.so' -mmin +120 -delete || true
fi

# The broker-backed tests start their own tansu (a Kafka-protocol broker,
# in-memory storage; SQLite storage for the SASL test, whose users tansu keeps
# only in SQL storage) on loopback and check /metrics with promtool. These are
# installed here when missing; a missing broker fails those tests, never skips
# them. tansu takes about 25 minutes to build, once: cargo caches the binary
# in ~/.cargo/bin, and a marker beside it records the features it was built
# with.
TANSU_VERSION=0.6.0
TANSU_FEATURES=dynostore,libsql
CARGO_BIN="${CARGO_HOME:-$HOME/.cargo}/bin"
export PATH="$CARGO_BIN:$PATH"
TANSU_MARKER="$CARGO_BIN/.tansu-$TANSU_VERSION-${TANSU_FEATURES//,/-}"
if ! { [ -f "$TANSU_MARKER" ] && tansu --version 2>/dev/null | grep -q "$TANSU_VERSION"; }; then
  echo "== installing tansu $TANSU_VERSION with $TANSU_FEATURES (about 25 minutes, once)"
  cargo install tansu --version "$TANSU_VERSION" --locked --force --features "$TANSU_FEATURES"
  touch "$TANSU_MARKER"
fi
# Debian packages for the broker-backed tests: promtool checks /metrics;
# socat and openssl put a TLS listener in front of the broker.
need() {
  command -v "$1" >/dev/null && return 0
  echo "== installing $1 (Debian package $2)"
  if command -v apt-get >/dev/null; then
    DEBIAN_FRONTEND=noninteractive apt-get install -y --no-install-recommends "$2" >/dev/null \
      || { apt-get update >/dev/null && DEBIAN_FRONTEND=noninteractive apt-get install -y --no-install-recommends "$2" >/dev/null; }
  fi
  command -v "$1" >/dev/null || { echo "test: $1 could not be installed (Debian package $2)" >&2; exit 1; }
}
# The vendored OpenSSL of librdkafka's TLS support builds with make and perl.
need make make
need perl perl
need promtool prometheus
need socat socat
need openssl openssl
# The live page is checked in Debian's Chromium (driven by Playwright, which
# uses this browser rather than downloading its own).
need chromium chromium

# Python tools of the checks (Playwright, Jupyter, schema validators), pinned in
# tests/requirements.txt, in a virtual environment reused while that file is
# unchanged. The tests find it through DRIFTD_TEST_PYTHON.
VENV="${DRIFTD_VENV:-${HOME:-/tmp}/.cache/driftd/venv}"
REQS_SUM="$(sha256sum tests/requirements.txt | cut -d' ' -f1)"
if ! [ -f "$VENV/.requirements-$REQS_SUM" ]; then
  echo "== installing the tests' Python tools into $VENV"
  rm -rf "$VENV"
  python3 -m venv "$VENV" || { echo "test: python3 -m venv failed (Debian package python3-venv?)" >&2; exit 1; }
  "$VENV/bin/pip" install --quiet --disable-pip-version-check -r tests/requirements.txt
  touch "$VENV/.requirements-$REQS_SUM"
fi
export DRIFTD_TEST_PYTHON="$VENV/bin/python"

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

# --all-targets also runs each criterion benchmark once, as a test.
echo "== cargo test"
log="$(mktemp)"
trap 'rm -f "$log"' EXIT
cargo test --all-targets --locked 2>&1 | tee "$log"
# One closing line over every test binary (criterion's test mode prints none).
awk '/^test result:/ { for (i = 1; i <= NF; i++) { if ($(i+1) ~ /^passed/) p += $i; if ($(i+1) ~ /^failed/) f += $i } }
     END { printf "tests: %d passed, %d failed\n", p, f; if (p == 0) exit 1 }' "$log"

