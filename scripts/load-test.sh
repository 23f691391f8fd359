#!/usr/bin/env bash
# The dashboard under load, as the reliability doc reports it: a real `tandem demo` (the live
# engine computing windows the whole time), N SSE clients on the Live page's event stream, and
# wrk hammering pages and the JSON API. Prints, per URL, requests/s, latency percentiles and
# errors; per SSE client, the window updates it got; then SIGTERMs the server with every SSE
# client still connected and prints how long it took to exit.
#
#   bash scripts/load-test.sh                 # 100 SSE clients, 30 s per URL, release build
#   SSE_CLIENTS=20 SECONDS_PER_URL=10 TANDEM_BIN=target/debug/tandem bash scripts/load-test.sh
#   DATA_DIR=/tmp/load-data ...   # keep the pretrained demo model between runs
set -euo pipefail
cd "$(dirname "$0")/.."
export CARGO_TARGET_DIR="${CARGO_TARGET_DIR:-${XDG_CACHE_HOME:-$HOME/.cache}/tandem/target}"
SSE_CLIENTS="${SSE_CLIENTS:-100}"
SECONDS_PER_URL="${SECONDS_PER_URL:-30}"
CONNECTIONS="${CONNECTIONS:-50}"
TANDEM_SETUP_LOAD=1 bash scripts/setup.sh
if [[ -z "${TANDEM_BIN:-}" ]]; then
  echo "load: building the release binary (cold: ~15 min on 2 cores)"
  cargo build --release --quiet
  TANDEM_BIN="$CARGO_TARGET_DIR/release/tandem"
fi
work=$(mktemp -d)
port=$((19000 + RANDOM % 1000))
base="http://127.0.0.1:$port"
data="${DATA_DIR:-$work/data}"
"$TANDEM_BIN" demo --port "$port" --data-dir "$data" --pace 1 >"$work/server.out" 2>"$work/server.err" &
server=$!
sse_pids=()
cleanup() {
  for p in "${sse_pids[@]}"; do kill "$p" 2>/dev/null || true; done
  kill "$server" 2>/dev/null || true
  rm -rf "$work"
}
trap cleanup EXIT
echo "load: waiting for the demo's first window (pretraining on a fresh data dir)"
for _ in $(seq 1 600); do
  if curl -sf "$base/api/live" 2>/dev/null | grep -q '"window":[1-9]'; then break; fi
  sleep 1
done
windows() { curl -sf "$base/api/live" | grep -o '"window":[0-9]*' | head -1 | cut -d: -f2; }
start_window=$(windows)
echo "load: live run at window $start_window; opening $SSE_CLIENTS SSE clients"
for i in $(seq 1 "$SSE_CLIENTS"); do
  curl -sN "$base/live/events" >"$work/sse-$i.txt" 2>/dev/null &
  sse_pids+=($!)
done
sleep 2
printf '\n%-22s %10s %9s %9s %9s %9s %8s\n' url "req/s" p50 p90 p99 max errors
for url in /live /api/live /api/runs /history /compare /metrics; do
  out=$(wrk -t2 -c"$CONNECTIONS" -d"${SECONDS_PER_URL}s" --latency "$base$url" 2>&1)
  rps=$(awk '/Requests\/sec/ {print $2}' <<<"$out")
  p50=$(awk '$1=="50%" {print $2}' <<<"$out")
  p90=$(awk '$1=="90%" {print $2}' <<<"$out")
  p99=$(awk '$1=="99%" {print $2}' <<<"$out")
  max=$(awk '/Latency/ && !done {print $4; done=1}' <<<"$out")
  errors=$(awk '/Non-2xx|Socket errors/ {s = s $0 "; "} END {print (s == "" ? 0 : s)}' <<<"$out")
  printf '%-22s %10s %9s %9s %9s %9s %8s\n' "$url" "$rps" "$p50" "$p90" "$p99" "$max" "$errors"
done
end_window=$(windows)
committed=$((end_window - start_window))
got=()
for i in $(seq 1 "$SSE_CLIENTS"); do
  got+=("$(grep -c '^event: window' "$work/sse-$i.txt" || true)")
done
min=$(printf '%s\n' "${got[@]}" | sort -n | head -1)
max=$(printf '%s\n' "${got[@]}" | sort -n | tail -1)
echo
echo "SSE: $SSE_CLIENTS clients; the live run finished $committed windows during the load;"
echo "     window events per client: min $min, max $max (the first is the page's current state)"
alive=0
for p in "${sse_pids[@]}"; do kill -0 "$p" 2>/dev/null && alive=$((alive + 1)); done
t0=$(date +%s.%N)
kill -TERM "$server"
wait "$server" || true
t1=$(date +%s.%N)
sleep 0.5
still=0
for p in "${sse_pids[@]}"; do kill -0 "$p" 2>/dev/null && still=$((still + 1)); done
printf 'shutdown: SIGTERM with %d SSE clients connected; exited in %.2f s; SSE clients left hanging: %d\n' \
  "$alive" "$(echo "$t1 - $t0" | bc)" "$still"
