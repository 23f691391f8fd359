"""Declaring parameters (`number`, `text`, `flag`) and reading the call's parameters against
those declarations (`Params`), as the Rust SDK's `params` module does: unknown names and wrong
types are refused, missing ones take the default, and the last value given for a name wins."""

import math
from typing import List

from wit_world.imports import types as t

from .errors import internal, invalid_param


def number(name: str, doc: str, default: float) -> t.ParamSpec:
    """Declare a numeric parameter."""
    return t.ParamSpec(name=name, doc=doc, default=t.ParamValue_Number(float(default)))


def text(name: str, doc: str, default: str) -> t.ParamSpec:
    """Declare a text parameter."""
    return t.ParamSpec(name=name, doc=doc, default=t.ParamValue_Text(default))


def flag(name: str, doc: str, default: bool) -> t.ParamSpec:
    """Declare a switch."""
    return t.ParamSpec(name=name, doc=doc, default=t.ParamValue_Flag(bool(default)))


def show(v: t.ParamValue) -> str:
    """A value as the Rust SDK's messages print it, e.g. `Number(0.5)`, `Text("cfg1")`."""
    if isinstance(v, t.ParamValue_Number):
        return f"Number({v.value!r})"
    if isinstance(v, t.ParamValue_Text):
        return 'Text("' + v.value.replace("\\", "\\\\").replace('"', '\\"') + '")'
    return f"Flag({'true' if v.value else 'false'})"


class Params:
    """The call's parameters checked against the plugin's declared specs."""

    def __init__(self, specs: List[t.ParamSpec], given: List[t.Param]):
        by_name = {s.name: s for s in specs}
        for p in given:
            spec = by_name.get(p.name)
            if spec is None:
                raise invalid_param(f"unknown parameter `{p.name}`")
            if type(spec.default) is not type(p.value):
                raise invalid_param(
                    f"parameter `{p.name}` has the wrong type (default is {show(spec.default)})"
                )
        self._specs = by_name
        self._given = given

    def _get(self, name: str) -> t.ParamValue:
        for p in reversed(self._given):
            if p.name == name:
                return p.value
        spec = self._specs.get(name)
        if spec is None:
            # A bug in the plugin (it reads what it never declared), reported as one.
            raise internal(f"parameter `{name}` is not declared")
        return spec.default

    def number(self, name: str) -> float:
        """A numeric parameter (finite, checked)."""
        v = self._get(name)
        if isinstance(v, t.ParamValue_Number) and math.isfinite(v.value):
            return v.value
        raise invalid_param(f"`{name}` must be a finite number, got {show(v)}")

    def text(self, name: str) -> str:
        """A text parameter."""
        v = self._get(name)
        if isinstance(v, t.ParamValue_Text):
            return v.value
        raise invalid_param(f"`{name}` must be text, got {show(v)}")

    def flag(self, name: str) -> bool:
        """A switch."""
        v = self._get(name)
        if isinstance(v, t.ParamValue_Flag):
            return v.value
        raise invalid_param(f"`{name}` must be a flag, got {show(v)}")
