"""Ekya's configuration grid, as the Rust SDK's `space::EkyaSpace` lists it: {head only, all
layers} x data fraction {0.1, 0.5, 1.0} x epochs {5, 15, 30} for retraining (18 configurations,
none when the stream has no labelled samples), and frame sampling 1..10, 15, 20 x two or three
resolutions for inference. `ekya_params()` declares its parameters; `ekya_configs` lists it."""

from typing import List

from wit_world.imports import types as t

from .errors import invalid_param
from .params import Params, number
from .policy import rust_display

FRAME_SAMPLING = [1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 15, 20]
"""Frame-sampling values of Ekya's inference grid."""


def ekya_params() -> List[t.ParamSpec]:
    """The grid's parameters, with the Rust `ekya-space` plugin's defaults."""
    return [
        number("resolutions", "2 (28, 14 px) or 3 (28, 20, 14 px) inference resolutions", 2.0),
        number(
            "model-layers",
            "trainable layer groups of the model (tandem's CNN has 5; the `all` configurations "
            "train them all)",
            5.0,
        ),
        number(
            "head-layers",
            "layer groups the head-only configurations train (tandem's head: hidden layer + "
            "classifier)",
            2.0,
        ),
        number(
            "head-width",
            "hidden width of the head-only configurations (0: keep the serving model's width)",
            0.0,
        ),
        number(
            "wide-width",
            "hidden width of the configurations training more layers (0: keep the serving "
            "model's width)",
            256.0,
        ),
        number("batch-size", "mini-batch size", 32.0),
        number(
            "learning-rate",
            "SGD learning rate (Ekya's 0.001 suits fine-tuning a ResNet; tandem's small CNN "
            "needs more)",
            0.02,
        ),
    ]


def _positive_int(p: Params, name: str) -> int:
    v = p.number(name)
    if 1.0 <= v <= 1e6 and v == int(v):
        return int(v)
    raise invalid_param(f"`{name}` must be a positive integer, got {rust_display(v)}")


def _width(p: Params, name: str) -> int:
    return 0 if p.number(name) == 0.0 else _positive_int(p, name)


def ekya_configs(state: t.StreamState, params: List[t.Param], specs=None):
    """The grid for one stream, as `(retrain, infer)` lists of WIT configurations; `specs`
    defaults to `ekya_params()` (pass your own list when you declare more parameters)."""
    p = Params(specs if specs is not None else ekya_params(), params)
    n = _positive_int(p, "resolutions")
    if n == 2:
        resolutions = [28, 14]
    elif n == 3:
        resolutions = [28, 20, 14]
    else:
        raise invalid_param(f"resolutions must be 2 or 3, got {n}")
    layers = _positive_int(p, "model-layers")
    head_layers = min(_positive_int(p, "head-layers"), layers)
    head_w, wide_w, batch = _width(p, "head-width"), _width(p, "wide-width"), _positive_int(p, "batch-size")
    lr = p.number("learning-rate")
    if not lr > 0.0:
        raise invalid_param(f"learning-rate must be positive, got {rust_display(lr)}")
    retrain = []
    if state.samples > 0:
        for kind, layers_trained, width in (("head", head_layers, head_w), ("all", layers, wide_w)):
            for fraction in (0.1, 0.5, 1.0):
                for epochs in (5, 15, 30):
                    retrain.append(
                        t.RetrainConfig(
                            name=f"{kind}-d{fraction:.1f}-e{epochs}",
                            epochs=epochs,
                            layers_trained=layers_trained,
                            data_fraction=fraction,
                            width=width,
                            batch_size=batch,
                            learning_rate=lr,
                            start_from=None,
                        )
                    )
    infer = [
        t.InferConfig(name=f"k{k}-r{r}", frame_sampling=k, resolution=r)
        for r in resolutions
        for k in FRAME_SAMPLING
    ]
    return retrain, infer
