"""The WIT `plugin-error` cases as exceptions: `raise invalid_param("...")` inside an exported
function makes the call return `err(invalid-param("..."))`."""

from componentize_py_types import Err
from wit_world.imports import types as t


def invalid_input(message: str) -> Err:
    """The input breaks a precondition."""
    return Err(t.PluginError_InvalidInput(message))


def invalid_param(message: str) -> Err:
    """A parameter is unknown or has a bad value."""
    return Err(t.PluginError_InvalidParam(message))


def infeasible(message: str) -> Err:
    """No answer exists for this input."""
    return Err(t.PluginError_Infeasible(message))


def internal(message: str) -> Err:
    """A bug inside the plugin."""
    return Err(t.PluginError_Internal(message))
