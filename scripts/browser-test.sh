#!/usr/bin/env bash
# The dashboard in a real browser: Debian's chromium, headless, driven by playwright-core
# (installed by scripts/setup.sh with TANDEM_SETUP_BROWSER=1). Screenshots land in
# $OUT (default: target/browser-test under the cargo target dir).
set -euo pipefail
cd "$(dirname "$0")/.."
export CARGO_TARGET_DIR="${CARGO_TARGET_DIR:-${XDG_CACHE_HOME:-$HOME/.cache}/tandem/target}"
export OUT="${OUT:-$CARGO_TARGET_DIR/browser-test}"
cargo build --quiet
# A valid component that is not a built-in, to upload through the form.
plugin="$CARGO_TARGET_DIR/wasm32-wasip2/plugin/tandem_plugin_test_misbehave.wasm"
# The Python port of fair (scripts/setup.sh builds it), uploaded and compared with fair.
fair_py="$CARGO_TARGET_DIR/wasm32-wasip2/plugin/fair_py.wasm"
node tests/browser/run.mjs "$CARGO_TARGET_DIR/debug/tandem" "$plugin" "$fair_py"
