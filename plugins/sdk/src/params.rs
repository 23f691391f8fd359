//! Reading call parameters against a plugin's declared [`ParamSpec`]s.

use crate::types::{Param, ParamSpec, ParamValue, PluginError};

/// Declare a numeric parameter.
pub fn number(name: &str, doc: &str, default: f64) -> ParamSpec {
    ParamSpec {
        name: name.into(),
        doc: doc.into(),
        default: ParamValue::Number(default),
    }
}

/// Declare a text parameter.
pub fn text(name: &str, doc: &str, default: &str) -> ParamSpec {
    ParamSpec {
        name: name.into(),
        doc: doc.into(),
        default: ParamValue::Text(default.into()),
    }
}

/// Declare a switch.
pub fn flag(name: &str, doc: &str, default: bool) -> ParamSpec {
    ParamSpec {
        name: name.into(),
        doc: doc.into(),
        default: ParamValue::Flag(default),
    }
}

/// Parameters resolved against their specs: unknown names are refused, missing ones take the
/// default.
pub struct Params<'a> {
    specs: &'a [ParamSpec],
    given: &'a [Param],
}

impl<'a> Params<'a> {
    /// Check `given` against `specs`.
    pub fn new(specs: &'a [ParamSpec], given: &'a [Param]) -> Result<Self, PluginError> {
        for p in given {
            let Some(spec) = specs.iter().find(|s| s.name == p.name) else {
                return Err(PluginError::InvalidParam(format!(
                    "unknown parameter `{}`",
                    p.name
                )));
            };
            if std::mem::discriminant(&spec.default) != std::mem::discriminant(&p.value) {
                return Err(PluginError::InvalidParam(format!(
                    "parameter `{}` has the wrong type (default is {:?})",
                    p.name, spec.default
                )));
            }
        }
        Ok(Params { specs, given })
    }

    fn get(&self, name: &str) -> &ParamValue {
        if let Some(p) = self.given.iter().rev().find(|p| p.name == name) {
            return &p.value;
        }
        &self
            .specs
            .iter()
            .find(|s| s.name == name)
            .unwrap_or_else(|| panic!("parameter `{name}` is not declared"))
            .default
    }

    /// A numeric parameter (finite, checked).
    pub fn number(&self, name: &str) -> Result<f64, PluginError> {
        match self.get(name) {
            ParamValue::Number(x) if x.is_finite() => Ok(*x),
            v => Err(PluginError::InvalidParam(format!(
                "`{name}` must be a finite number, got {v:?}"
            ))),
        }
    }

    /// A text parameter.
    pub fn text(&self, name: &str) -> Result<&str, PluginError> {
        match self.get(name) {
            ParamValue::Text(s) => Ok(s),
            v => Err(PluginError::InvalidParam(format!(
                "`{name}` must be text, got {v:?}"
            ))),
        }
    }

    /// A switch.
    pub fn flag(&self, name: &str) -> Result<bool, PluginError> {
        match self.get(name) {
            ParamValue::Flag(b) => Ok(*b),
            v => Err(PluginError::InvalidParam(format!(
                "`{name}` must be a flag, got {v:?}"
            ))),
        }
    }
}
