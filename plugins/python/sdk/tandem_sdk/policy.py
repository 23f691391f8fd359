"""What every scheduling policy needs, as in the Rust SDK's `policy` module: an `Allocation`
of GPU shares (Ekya's fair start, a static split), `evaluate` (PickConfigs on every stream and
the mean estimated window accuracy), `check_input`, `to_schedule` (picks to the WIT
`schedule`), `resolve_retrain` (a configuration by name, or `cfg1`/`cfg2`), `pin_running` (a
job in progress offered alone), and the parameter
every reference policy takes, `min_accuracy_param` (a_MIN).

Iteration orders, tie-breaks and the order of floating-point operations follow the Rust code
exactly, so a policy ported from it decides bit for bit as the original does.
"""

import dataclasses
import math
from dataclasses import dataclass
from typing import List, Optional, Tuple

from wit_world.imports import types as t

from .errors import invalid_input, invalid_param
from .estimate import EPS, Pick, pick_configs, pick_infer, remaining
from .params import number


def rust_display(x: float) -> str:
    """A float as Rust's `{}` prints it (`200`, `0.5`, `NaN`), so messages match the Rust SDK's."""
    if math.isnan(x):
        return "NaN"
    if math.isinf(x):
        return "inf" if x > 0 else "-inf"
    if x == int(x) and abs(x) < 1e16:
        return ("-" if math.copysign(1.0, x) < 0 else "") + str(abs(int(x)))
    return repr(x)


@dataclass
class Allocation:
    """GPU shares per stream: `infer[i]` and `retrain[i]` (0 when stream i has no job)."""

    infer: List[float]
    retrain: List[float]

    @staticmethod
    def fair(input) -> "Allocation":
        """Ekya's fair start: the GPUs split evenly over all jobs, each capped at one GPU."""
        jobs = 0
        for s in input.streams:
            jobs += 2 if s.retrain else 1
        share = min(float(input.gpus) / float(max(jobs, 1)), 1.0)
        return Allocation(
            infer=[share] * len(input.streams),
            retrain=[share if s.retrain else 0.0 for s in input.streams],
        )

    @staticmethod
    def split(input, infer_fraction: float) -> "Allocation":
        """A static per-stream split: `G/N` per stream, `infer_fraction` of it to inference."""
        per_stream = float(input.gpus) / float(max(len(input.streams), 1))
        return Allocation(
            infer=[
                min(per_stream, 1.0) if not s.retrain else min(per_stream * infer_fraction, 1.0)
                for s in input.streams
            ],
            retrain=[
                0.0 if not s.retrain else min(per_stream * (1.0 - infer_fraction), 1.0)
                for s in input.streams
            ],
        )


def mean_accuracy(picks: List[Pick]) -> float:
    """The mean of the picks' estimated accuracies (a left-to-right sum, as Rust's)."""
    total = 0.0
    for p in picks:
        total += p.accuracy
    return total / float(max(len(picks), 1))


def evaluate(input, alloc: Allocation, min_accuracy: float) -> Tuple[List[Pick], float]:
    """PickConfigs on every stream and the mean estimated window accuracy."""
    rem = remaining(input.window_seconds, input.elapsed_seconds)
    picks = [
        pick_configs(s, alloc.infer[i], alloc.retrain[i], rem, min_accuracy)
        for i, s in enumerate(input.streams)
    ]
    return picks, mean_accuracy(picks)


def _finite_profiles(s: t.StreamInput) -> bool:
    for r in s.retrain:
        if not (math.isfinite(r.gpu_seconds) and r.gpu_seconds > 0.0 and math.isfinite(r.accuracy_after)):
            return False
    for p in s.infer:
        if not (math.isfinite(p.gpu_cost) and p.gpu_cost >= 0.0 and math.isfinite(p.accuracy_factor)):
            return False
    return math.isfinite(s.state.accuracy)


def check_input(input) -> None:
    """Check the preconditions every policy relies on; raises `invalid-input` otherwise."""
    if not input.streams:
        raise invalid_input("no streams")
    if input.gpus == 0:
        raise invalid_input("no GPUs")
    w = input.window_seconds
    if not (w > 0.0 and math.isfinite(w)):
        raise invalid_input(f"window length {rust_display(w)} s is not positive")
    e = input.elapsed_seconds
    if not (e >= 0.0 and math.isfinite(e)):
        raise invalid_input(f"elapsed time {rust_display(e)} s is not valid")
    for s in input.streams:
        if not s.infer:
            raise invalid_input(f"stream `{s.state.id}` has no inference configuration")
        if not _finite_profiles(s):
            raise invalid_input(f"stream `{s.state.id}` has a non-finite or non-positive profile")


def pin_running(input):
    """`input` with each stream's job in progress offered alone, with what it has left (what
    `tandem:plugin@0.1.0` promised): for a policy that does not weigh switching a running job
    to another configuration, which restarts it from scratch."""
    streams = []
    for s in input.streams:
        if s.running is not None:
            kept = [r for r in s.retrain if r.config.name == s.running]
            s = dataclasses.replace(s, retrain=kept)
        streams.append(s)
    return dataclasses.replace(input, streams=streams)


def cheapest_infer(s: t.StreamInput) -> int:
    """The inference configuration with the lowest GPU cost (the first of equals)."""
    best = 0
    for i in range(1, len(s.infer)):
        if s.infer[i].gpu_cost < s.infer[best].gpu_cost:
            best = i
    return best


def to_schedule(
    input, alloc: Allocation, picks: List[Pick], estimate: Optional[float]
) -> t.Schedule:
    """Turn an allocation and its picks into a schedule. A retraining share without a chosen
    configuration goes to the same stream's inference, up to what its most demanding
    configuration can use, and the inference configuration is re-picked for the larger share.
    When no inference configuration fits, the cheapest is named (the host subsamples)."""
    out = []
    for i, s in enumerate(input.streams):
        p = picks[i]
        infer_share = alloc.infer[i]
        infer = p.infer
        if p.retrain is None and alloc.retrain[i] > EPS:
            useful = 0.0
            for c in s.infer:
                useful = max(useful, c.gpu_cost)
            useful = min(useful, 1.0)
            if useful > infer_share:
                infer_share = min(infer_share + alloc.retrain[i], useful)
                # More share never lowers the best factor, so a_MIN still holds.
                again = pick_infer(s.infer, infer_share, s.state.accuracy, 0.0)
                if again is not None:
                    infer = again[0]
        if infer is None:
            infer = cheapest_infer(s)
        out.append(
            t.StreamSchedule(
                stream_id=s.state.id,
                infer_share=infer_share,
                retrain_share=alloc.retrain[i] if p.retrain is not None else 0.0,
                infer_config=s.infer[infer].config.name,
                retrain_config=(
                    s.retrain[p.retrain].config.name if p.retrain is not None else None
                ),
            )
        )
    return t.Schedule(streams=out, estimated_accuracy=estimate)


def resolve_retrain(stream: t.StreamInput, name: str) -> Optional[int]:
    """A retraining configuration by name: an exact candidate name, or `cfg1` (the most
    accurate; the cheaper on ties) or `cfg2` (the cheapest on the accuracy/cost Pareto front
    that reaches at least half of cfg1's gain), or `zoo` (reuse only: the zoo model offered to
    deploy as it is that scores best, if it beats the serving model). None when the stream has
    no candidates."""
    c = stream.retrain
    if not c:
        return None
    for i, r in enumerate(c):
        if r.config.name == name:
            return i
    if name == "zoo":
        best = None
        for i, r in enumerate(c):
            if r.config.start_from is None or r.config.epochs != 0:
                continue
            if r.accuracy_after <= stream.state.accuracy:
                continue
            # max_by keeps the last of equal maxima, as Rust's does.
            if best is None or r.accuracy_after >= c[best].accuracy_after:
                best = i
        return best
    cfg1 = 0
    for i in range(1, len(c)):
        a, b = c[i], c[cfg1]
        if a.accuracy_after > b.accuracy_after or (
            a.accuracy_after == b.accuracy_after and a.gpu_seconds < b.gpu_seconds
        ):
            cfg1 = i
    if name == "cfg1":
        return cfg1
    if name == "cfg2":
        a0 = stream.state.accuracy
        target = a0 + 0.5 * (c[cfg1].accuracy_after - a0)
        best = None
        for i, ci in enumerate(c):
            dominated = any(
                o.gpu_seconds <= ci.gpu_seconds
                and o.accuracy_after >= ci.accuracy_after
                and (o.gpu_seconds < ci.gpu_seconds or o.accuracy_after > ci.accuracy_after)
                for o in c
            )
            if dominated or ci.accuracy_after < target - EPS:
                continue
            if best is None or ci.gpu_seconds < c[best].gpu_seconds:
                best = i
        return cfg1 if best is None else best
    raise invalid_param(
        f"stream `{stream.state.id}` offers no retraining configuration named `{name}` "
        "(nor is it cfg1/cfg2/zoo)"
    )


def min_accuracy_param() -> t.ParamSpec:
    """a_MIN, the parameter every reference policy takes."""
    return number("min-accuracy", "a_MIN: served accuracy every stream must keep (0 = none)", 0.0)
