#!/usr/bin/env bash
# The thief on scenarios nobody tuned it on: N scenarios drawn at random from a seed (3-8
# Fashion-MNIST cameras of random traffic, 0-2 drifts each of random kind, size and window, a
# GPU whose full-rate inference load is 40-140% of it, windows of 200-400 s), each run with
# `tandem compare` under the thief and the best honest uniform split (fair head-d0.5-e5 without
# the profiler, docs/results.md), every one from an empty zoo. Prints one row per scenario and
# the thief's lead in points; the scenarios are kept for a rerun.
# Usage: bash scripts/unseen.sh [N] [FIRST_SEED]   (default 6 scenarios from seed 1000;
# about 2-4 minutes each on 2 cores). UNSEEN_POLICIES replaces the two policies;
# UNSEEN_DIR keeps the scenarios and data there (default: a new temporary folder).
set -euo pipefail
cd "$(dirname "$0")/.."
command -v python3 >/dev/null || { echo "unseen.sh: needs python3 (bash scripts/setup.sh installs it)" >&2; exit 1; }
[[ "${1:-6}" =~ ^[0-9]+$ && "${2:-1000}" =~ ^[0-9]+$ ]] || { echo "usage: bash scripts/unseen.sh [N] [FIRST_SEED] (whole numbers)" >&2; exit 2; }
export CARGO_TARGET_DIR="${CARGO_TARGET_DIR:-${XDG_CACHE_HOME:-$HOME/.cache}/tandem/target}"
export XDG_RUNTIME_DIR="${XDG_RUNTIME_DIR:-$(mktemp -d)}"; chmod 700 "$XDG_RUNTIME_DIR"
n="${1:-6}"
first="${2:-1000}"
policies="${UNSEEN_POLICIES:-thief,fair:retrain-config=head-d0.5-e5:profile=false}"
work="${UNSEEN_DIR:-$(mktemp -d)}"
mkdir -p "$work"
echo "building tandem (release) ..."
cargo build --quiet --release
bin="$CARGO_TARGET_DIR/release/tandem"
echo "$n scenarios from seed $first in $work; policies: $policies"

# One scenario from its seed, written to stdout. A crop costs about 3.85 MFLOP of the CNN
# (one crop a second is 1/454 of a 1.75 GFLOP/s GPU, examples/fashion-recurring.toml).
generate() {
  python3 - "$1" <<'EOP'
import random, sys
sys.path.insert(0, "scripts")
from drawn import common
seed = int(sys.argv[1])
r = random.Random(seed)
cams = r.randint(3, 8)
windows = r.randint(3, 4)
window_seconds = r.choice([200.0, 300.0, 400.0])
load = r.uniform(0.4, 1.4)
# Each kind's range (low, high, decimals); brightness and scale go either way, below or
# above 1, so they have two, one drawn at random.
ranges = {
    "brightness": [(0.4, 0.75, 2), (1.25, 1.5, 2)],
    "contrast": [(0.55, 0.85, 2)],
    "noise": [(0.05, 0.2, 2)],
    "blur": [(0.4, 1.0, 2)],
    "rotation": [(10, 30, 1)],
    "scale": [(0.8, 0.9, 2), (1.1, 1.25, 2)],
}
kinds = list(ranges) + ["class_mix"]
def drift_value(kind):
    if kind in ranges:
        values = [r.uniform(lo, hi) for lo, hi, _ in ranges[kind]]
        value = values[0] if len(values) == 1 else r.choice(values)
        return f"{value:.{ranges[kind][0][2]}f}"
    weights = [1] * 10
    for c in r.sample(range(10), r.randint(2, 4)):
        weights[c] = r.randint(3, 5)
    return "[" + ", ".join(map(str, weights)) + "]"
body, crops = [], 0.0
for c in range(cams):
    rate = r.choice([5, 10, 15, 30])
    objects = r.randint(2, 8)
    crops += rate * objects
    body.append(f'''
[[cameras]]
name = "cam{c}"
source = "fashion-mnist"
frame_rate = {rate}
objects_per_frame = {objects}
object_dwell_frames = {r.choice([1.5, 3.0, 6.0, 12.0])}
train_samples = {r.choice([400, 600, 800])}
''')
    for w in sorted(r.sample(range(1, windows), r.randint(0, min(2, windows - 1)))):
        body.append(f"\n[[cameras.drift]]\nwindow = {w}\n")
        for kind in r.sample(kinds, r.randint(1, 2)):
            body.append(f"{kind} = {drift_value(kind)}\n")
gflops = crops * 3.85e-3 / load
print(f'''# Drawn by scripts/unseen.sh from seed {seed}: {cams} cameras, full-rate inference
# {load:.0%} of the GPU.
name = "unseen-{seed}"
windows = {windows}
window_seconds = {window_seconds}
''' + common(f"{gflops:.3f}", seed, r.choice([3, 5])) + "".join(body))
EOP
}

rows=()
for ((k = 0; k < n; k++)); do
  seed=$((first + k))
  s="$work/unseen-$seed.toml"
  generate "$seed" > "$s"
  echo "[$((k + 1))/$n] $(head -2 "$s" | tr -d "#\n" | sed "s/ *Drawn by scripts\/unseen.sh from //") ..."
  "$bin" compare "$s" --policies "$policies" --data-dir "$work/data-$seed" --json > "$work/unseen-$seed.json"
  rows+=("$(python3 - "$work/unseen-$seed.json" "$seed" "$policies" <<'EOP'
import json, sys
d = json.load(open(sys.argv[1]))["policies"]
# In the order asked: the JSON's is by name, its keys with the options in their own order.
norm = lambda spec: (spec.split(":")[0], sorted(spec.split(":")[1:]))
by = {json.dumps(norm(k)): v for k, v in d.items()}
means = [round(by[json.dumps(norm(p))]["mean_accuracy"], 4) for p in sys.argv[3].split(",")]
lead = f"{100 * (means[0] - max(means[1:])):+.2f}" if len(means) > 1 else ""
print(f"| {sys.argv[2]} | " + " | ".join(map(str, means)) + f" | {lead} |")
EOP
)")
  echo "${rows[-1]}"
done
echo
echo "| seed | ${policies//,/ | } | first − best other (points) |"
echo "|---|$(printf -- '---|%.0s' $(seq 1 $(($(tr ',' '\n' <<< "$policies" | wc -l) + 1))))"
printf '%s\n' "${rows[@]}"
