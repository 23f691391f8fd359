#!/usr/bin/env bash
# The README's second command: set up what is missing, then run every check and test.
set -euo pipefail
cd "$(dirname "$0")/.."
# CI runs the browser test too: the setup installs chromium and playwright-core for it.
export TANDEM_SETUP_BROWSER="${TANDEM_SETUP_BROWSER:-1}"
bash scripts/setup.sh
export CARGO_TARGET_DIR="${CARGO_TARGET_DIR:-${XDG_CACHE_HOME:-$HOME/.cache}/tandem/target}"
# A private runtime dir keeps wgpu's Vulkan loader quiet on headless machines.
export XDG_RUNTIME_DIR="${XDG_RUNTIME_DIR:-$(mktemp -d)}"; chmod 700 "$XDG_RUNTIME_DIR"
cargo fmt --all --check
cargo clippy --quiet --all-targets -- -D warnings
# The browser test first, so that cargo test's summary closes the output.
if [[ "$TANDEM_SETUP_BROWSER" == 1 ]]; then
  bash scripts/browser-test.sh
fi
# Unit and integration tests (no doc tests: the integration summary closes the output).
cargo test --lib --bins --tests
