"""The window-averaged accuracy estimate and PickConfigs (Ekya, section 4 and Algorithm 2), a
line-for-line port of the Rust SDK's `estimate` module: every policy that reasons about
accuracy, in either language, maximizes exactly the same objective.

Model: while a stream retrains it serves with its current model; once the job ends (after
`gpu_seconds / share` wall seconds) the new model serves for the rest of the window. Served
accuracy is the model's accuracy times the inference configuration's accuracy factor. A job
that cannot finish within the remaining window brings nothing and is never picked. A finished
job's share goes back to its own stream's inference (the host asks the policy again at every
completion).
"""

from dataclasses import dataclass
from typing import List, Optional, Tuple

from wit_world.imports import types as t

EPS = 1e-9
"""Shares below this are treated as zero; comparisons of shares use it as tolerance."""


def stream_accuracy(
    start_accuracy: float,
    infer_factor: float,
    retrain: Optional[Tuple[t.RetrainProfile, float, float]],
    remaining: float,
) -> float:
    """Estimated window-averaged accuracy of one stream over `remaining` seconds. `retrain` is
    the job, its share, and the inference factor once the job's share is handed back."""
    if retrain is not None:
        job, share, after_factor = retrain
        if share > EPS and remaining > EPS:
            time = job.gpu_seconds / share
            if time < remaining:
                return (
                    start_accuracy * infer_factor * time
                    + job.accuracy_after * after_factor * (remaining - time)
                ) / remaining
    return start_accuracy * infer_factor


@dataclass
class Pick:
    """PickConfigs' answer for one stream at given shares."""

    infer: Optional[int]
    """Index into the stream's `infer` candidates; None when none fits the share."""
    retrain: Optional[int]
    """Index into the stream's `retrain` candidates; None when not retraining."""
    accuracy: float
    """The stream's estimated window-averaged accuracy with these choices."""


def infer_factor_at(infer: List[t.InferProfile], i: int, share: float) -> float:
    """Accuracy factor of inference configuration `i` run at `share`: its own factor when the
    share covers its cost; below that the job keeps up with `share / cost` of its frames, an
    effective sampling of `k * cost / share` whose factor is interpolated over the offered
    configurations of the same resolution (0 past the sparsest one)."""
    p = infer[i]
    if share + EPS >= p.gpu_cost:
        return p.accuracy_factor
    if share <= EPS:
        return 0.0
    k = float(max(p.config.frame_sampling, 1)) * p.gpu_cost / share
    curve = [
        (float(max(q.config.frame_sampling, 1)), q.accuracy_factor)
        for q in infer
        if q.config.resolution == p.config.resolution
    ]
    curve.sort(key=lambda c: c[0])
    for (k0, f0), (k1, f1) in zip(curve, curve[1:]):
        if k <= k1 and k >= k0:
            frac = (k - k0) / (k1 - k0) if k1 > k0 else 1.0
            return f0 + frac * (f1 - f0)
    return 0.0


def pick_infer(
    infer: List[t.InferProfile], share: float, start_accuracy: float, min_accuracy: float
) -> Optional[Tuple[int, float]]:
    """The inference configuration with the best accuracy factor at `share` whose served
    accuracy stays at or above `min_accuracy`; ties go to the cheaper one. Returns its index
    and that factor, or None."""
    best = None
    for i in range(len(infer)):
        f = infer_factor_at(infer, i, share)
        if f <= 0.0 or f * start_accuracy < min_accuracy - EPS:
            continue
        if best is not None:
            b, bf = best
            if bf > f + EPS or (bf >= f - EPS and infer[b].gpu_cost <= infer[i].gpu_cost):
                continue
        best = (i, f)
    return best


def factor_after(
    stream: t.StreamInput,
    infer_share: float,
    retrain_share: float,
    factor: float,
    min_accuracy: float,
) -> float:
    """The stream's best inference factor once its job ends and the retraining share serves
    its inference too (never below `factor`, the one it serves with meanwhile)."""
    picked = pick_infer(
        stream.infer, infer_share + retrain_share, stream.state.accuracy, min_accuracy
    )
    if picked is None:
        return factor
    return max(picked[1], factor)


def pick_configs(
    stream: t.StreamInput,
    infer_share: float,
    retrain_share: float,
    remaining: float,
    min_accuracy: float,
) -> Pick:
    """PickConfigs for one stream: the best inference configuration for `infer_share`, then the
    retraining configuration with the highest estimated window accuracy at `retrain_share`
    (or none when no configuration finishes in time or beats not retraining)."""
    a0 = stream.state.accuracy
    picked = pick_infer(stream.infer, infer_share, a0, min_accuracy)
    if picked is None:
        return Pick(infer=None, retrain=None, accuracy=0.0)
    infer, factor = picked
    best = Pick(infer=infer, retrain=None, accuracy=stream_accuracy(a0, factor, None, remaining))
    if retrain_share > EPS:
        after = factor_after(stream, infer_share, retrain_share, factor, min_accuracy)
        for j, job in enumerate(stream.retrain):
            if job.gpu_seconds / retrain_share >= remaining:
                continue
            acc = stream_accuracy(a0, factor, (job, retrain_share, after), remaining)
            if acc > best.accuracy + EPS:
                best = Pick(infer=infer, retrain=j, accuracy=acc)
    return best


def remaining(window_seconds: float, elapsed_seconds: float) -> float:
    """Seconds of the window left to plan for."""
    return max(window_seconds - elapsed_seconds, 0.0)
