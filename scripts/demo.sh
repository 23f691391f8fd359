#!/usr/bin/env bash
# The README's first command: set up what is missing, build, and open the dashboard with the
# demo scenario running live (it prints the address and the admin token).
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh
export CARGO_TARGET_DIR="${CARGO_TARGET_DIR:-${XDG_CACHE_HOME:-$HOME/.cache}/tandem/target}"
export XDG_RUNTIME_DIR="${XDG_RUNTIME_DIR:-$(mktemp -d)}"; chmod 700 "$XDG_RUNTIME_DIR"
cargo build --release
exec "$CARGO_TARGET_DIR/release/tandem" demo "$@"
