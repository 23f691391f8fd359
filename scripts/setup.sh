#!/usr/bin/env bash
# One idempotent setup used by both README commands (demo and tests) and by CI.
# Installs only what is missing: Debian packages (CPU Vulkan driver for wgpu, the Fashion-MNIST
# data set, headless Chromium for the browser test), the wasm32-wasip2 Rust target,
# componentize-py (PyPI, pinned) for Python plugins, and builds the guest plugins.
set -euo pipefail
cd "$(dirname "$0")/.."

APT_PACKAGES=(mesa-vulkan-drivers libvulkan1 dataset-fashion-mnist)
if [[ "${TANDEM_SETUP_BROWSER:-0}" == 1 ]]; then
  APT_PACKAGES+=(chromium)
fi
# The HTTP load test (scripts/load-test.sh) drives the dashboard with wrk.
if [[ "${TANDEM_SETUP_LOAD:-0}" == 1 ]]; then
  APT_PACKAGES+=(wrk bc)
fi
# Python plugins need a python3 that can make virtual environments (Debian splits venv out).
if ! python3 -c 'import ensurepip, venv' >/dev/null 2>&1; then
  APT_PACKAGES+=(python3 python3-venv)
fi

missing=()
for p in "${APT_PACKAGES[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
if ((${#missing[@]})); then
  echo "setup: installing Debian packages: ${missing[*]}"
  SUDO=""; [[ $(id -u) -ne 0 ]] && SUDO="sudo"
  # apt can be locked by an unattended upgrade: wait and retry rather than fail.
  for attempt in 1 2 3 4 5 6 7 8 9 10; do
    if $SUDO apt-get update -qq && \
       DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq --no-install-recommends "${missing[@]}"; then
      break
    fi
    [[ $attempt == 10 ]] && { echo "setup: apt-get failed 10 times" >&2; exit 1; }
    echo "setup: apt-get busy or failed, retrying in 10 s ($attempt/10)"; sleep 10
  done
fi

if command -v rustup >/dev/null 2>&1; then
  rustup target list --installed | grep -qx wasm32-wasip2 || rustup target add wasm32-wasip2
fi

# A cargo target dir outside the clone, so repeat runs (and CI on the same machine) are warm.
export CARGO_TARGET_DIR="${CARGO_TARGET_DIR:-${XDG_CACHE_HOME:-$HOME/.cache}/tandem/target}"
mkdir -p "$CARGO_TARGET_DIR"

# Guest plugins are workspace members built for wasm32-wasip2; the host embeds the reference
# plugins from here (host/build.rs lists them). plugins/test-* are test fixtures: built here so the
# tests find them, never embedded or registered.
if [[ -d plugins ]] && ls plugins/*/Cargo.toml >/dev/null 2>&1; then
  echo "setup: building guest plugins (wasm32-wasip2)"
  cargo build --quiet --profile plugin --target wasm32-wasip2 $(for d in plugins/*/; do
    n=$(basename "$d"); [[ -f "$d/Cargo.toml" ]] && grep -q 'cdylib' "$d/Cargo.toml" && echo "-p tandem-plugin-$n"; done)
fi

# Python plugins are built with componentize-py from PyPI, pinned (host/src/cli/scaffold.rs
# names the same version), in tandem's own virtual environment: Debian's python3 refuses pip
# installs outside one. Tests and scripts find it at $TANDEM_VENV/bin/componentize-py.
COMPONENTIZE_PY_VERSION=0.25.1
export TANDEM_VENV="${TANDEM_VENV:-${XDG_CACHE_HOME:-$HOME/.cache}/tandem/venv}"
if [[ "$("$TANDEM_VENV/bin/componentize-py" --version 2>/dev/null)" != "componentize-py $COMPONENTIZE_PY_VERSION" ]]; then
  echo "setup: installing componentize-py $COMPONENTIZE_PY_VERSION into $TANDEM_VENV"
  python3 -m venv "$TANDEM_VENV"
  "$TANDEM_VENV/bin/pip" install --quiet --disable-pip-version-check "componentize-py==$COMPONENTIZE_PY_VERSION"
fi

# The Python port of fair (plugins/python/fair), for the benchmark and the browser test; rebuilt
# (about 10 s) only when a source is newer than the component. Built from a copy: componentize-py
# leaves __pycache__ beside the sources, which would make cargo rebuild the host (host/build.rs
# embeds the Python SDK).
fair_py="$CARGO_TARGET_DIR/wasm32-wasip2/plugin/fair_py.wasm"
if [[ ! -f "$fair_py" || -n "$(find plugins/python wit -newer "$fair_py" -type f -print -quit)" ]]; then
  echo "setup: building the Python fair policy (componentize-py)"
  mkdir -p "$(dirname "$fair_py")"
  src="$(mktemp -d)"
  cp -r plugins/python/sdk plugins/python/fair "$src/"
  "$TANDEM_VENV/bin/componentize-py" -d wit -w policy componentize \
    -p "$src/sdk" -p "$src/fair" app -o "$fair_py" >/dev/null
  rm -rf "$src"
fi

# The browser test drives Debian's chromium through playwright-core (from npm, pinned in
# tests/browser/package.json); installed once, only when the browser test is wanted.
if [[ "${TANDEM_SETUP_BROWSER:-0}" == 1 && ! -d tests/browser/node_modules/playwright-core ]]; then
  if ! command -v npm >/dev/null 2>&1; then
    echo "setup: installing Debian packages: nodejs npm"
    SUDO=""; [[ $(id -u) -ne 0 ]] && SUDO="sudo"
    DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq --no-install-recommends nodejs npm
  fi
  echo "setup: installing playwright-core for the browser test"
  (cd tests/browser && npm install --no-audit --no-fund --silent)
fi
