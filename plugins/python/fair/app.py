"""fair-py: the uniform baseline (fixed configuration, static split) written in Python.

A port of the Rust `fair` policy (`tandem_plugin_sdk::policy::Fair`) on the Python SDK: on the
same input and parameters it returns the same shares, configurations and estimate, bit for bit
(tests/it/python.rs checks it on recorded policy inputs). Build from the repository root:

    componentize-py -d wit -w policy componentize -p plugins/python/sdk -p plugins/python/fair app -o fair_py.wasm
"""

from typing import List

from wit_world import exports
from wit_world.exports import scheduler
from wit_world.imports import types as t

from tandem_sdk.errors import invalid_param
from tandem_sdk.estimate import factor_after, pick_infer, remaining, stream_accuracy, Pick
from tandem_sdk.params import Params, number, text
from tandem_sdk.policy import (
    Allocation,
    check_input,
    mean_accuracy,
    pin_running,
    min_accuracy_param,
    resolve_retrain,
    rust_display,
    to_schedule,
)

VERSION = "0.1.0"


def specs() -> List[t.ParamSpec]:
    return [
        text(
            "retrain-config",
            "`cfg1` (most accurate), `cfg2` (cheap Pareto choice), `zoo` (reuse only: the best zoo model to deploy as it is, never a retraining) or a configuration name",
            "cfg1",
        ),
        number(
            "infer-fraction",
            "share of each stream's GPU given to inference (0.3, 0.5, 0.9 in the paper)",
            0.5,
        ),
        min_accuracy_param(),
    ]


class Meta(exports.Meta):
    def describe(self) -> t.Description:
        return t.Description(
            name="fair-py",
            version=VERSION,
            kind=t.PluginKind.POLICY,
            summary="Uniform baseline in Python (a port of `fair`): every stream gets G/N GPUs, "
            "split statically between inference and retraining, and retrains with one fixed "
            "configuration (Cfg1 or Cfg2).",
            params=specs(),
        )


class Scheduler(exports.Scheduler):
    def decide(self, input: scheduler.PolicyInput, params: List[t.Param]) -> t.Schedule:
        check_input(input)
        input = pin_running(input)
        p = Params(specs(), params)
        name = p.text("retrain-config")
        fraction = p.number("infer-fraction")
        if not 0.0 <= fraction <= 1.0:
            raise invalid_param(f"infer-fraction must be in [0, 1], got {rust_display(fraction)}")
        min_acc = p.number("min-accuracy")
        alloc = Allocation.split(input, fraction)
        rem = remaining(input.window_seconds, input.elapsed_seconds)
        picks = []
        for i, s in enumerate(input.streams):
            retrain = resolve_retrain(s, name)
            picked = pick_infer(s.infer, alloc.infer[i], s.state.accuracy, min_acc)
            infer, factor = (None, 0.0) if picked is None else picked
            job = None
            if retrain is not None:
                after = factor_after(s, alloc.infer[i], alloc.retrain[i], factor, min_acc)
                job = (s.retrain[retrain], alloc.retrain[i], after)
            accuracy = stream_accuracy(s.state.accuracy, factor, job, rem)
            picks.append(Pick(infer=infer, retrain=retrain, accuracy=accuracy))
        return to_schedule(input, alloc, picks, mean_accuracy(picks))
