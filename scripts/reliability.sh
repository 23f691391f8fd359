#!/usr/bin/env bash
# The reliability campaign at full size, printing the figures docs/reliability.md reports:
# property tests over every parser (PROPTEST_CASES inputs per property), the crash campaign
# (TANDEM_CRASH_ROUNDS runs SIGKILLed at random moments and resumed), the sandbox cut-offs and
# the shutdown time, then the HTTP load test (scripts/load-test.sh). `bash scripts/test.sh`
# runs the light versions of all but the load test.
#
#   bash scripts/reliability.sh                  # 2000 inputs per property, 10 crash rounds
#   PROPTEST_CASES=500 TANDEM_CRASH_ROUNDS=3 SKIP_LOAD=1 bash scripts/reliability.sh
set -euo pipefail
cd "$(dirname "$0")/.."
export CARGO_TARGET_DIR="${CARGO_TARGET_DIR:-${XDG_CACHE_HOME:-$HOME/.cache}/tandem/target}"
export XDG_RUNTIME_DIR="${XDG_RUNTIME_DIR:-$(mktemp -d)}"; chmod 700 "$XDG_RUNTIME_DIR"
export PROPTEST_CASES="${PROPTEST_CASES:-2000}"
export TANDEM_CRASH_ROUNDS="${TANDEM_CRASH_ROUNDS:-10}"
export TANDEM_CRASH_SEED="${TANDEM_CRASH_SEED:-$RANDOM}"
bash scripts/setup.sh
log=$(mktemp)
# Test names and figures can share a line (--nocapture): keep the figures only.
run() {
  cargo test --quiet --test it "$1" -- --nocapture --test-threads 1 2>&1 | tee -a "$log" |
    grep -oE "(fuzz|crash campaign|sandbox|shutdown)[: ].*|test result.*" || true
}
echo "== property tests ($PROPTEST_CASES inputs per property)"
run fuzz::
echo "== crash campaign ($TANDEM_CRASH_ROUNDS rounds, seed $TANDEM_CRASH_SEED)"
run campaign::
echo "== sandbox and shutdown"
run plugins::a_sleeping
run plugins::validation_cuts_off
run plugins::infinite_loop
run cli::serve_shuts_down
echo
tried=$(grep -oE 'fuzz .*: [0-9]+ inputs tried' "$log")
total=$(awk -F': ' '{split($NF, a, " "); s += a[1]} END {print s}' <<<"$tried")
echo "bad inputs tried: $total (over $(wc -l <<<"$tried") properties)"
grep -oE 'crash campaign.*' "$log" || true
if grep -q "FAILED\|panicked" "$log"; then echo "reliability campaign: FAILURES above"; exit 1; fi
if [[ "${SKIP_LOAD:-0}" != 1 ]]; then
  echo "== HTTP load test"
  bash scripts/load-test.sh
fi
