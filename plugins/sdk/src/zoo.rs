//! Model reuse: the [`Selector`] trait and the reference selectors. A selector short-lists the
//! models of the zoo worth checking for a stream; the host then measures each on the window's
//! labelled validation sample, so a selector trades checking cost against the chance of
//! missing the right model.
//!
//! - [`Nearest`]: the `k` entries whose scene signatures are nearest the stream's (Euclidean
//!   distance), ties broken by more uses then newer windows.
//! - [`Everything`]: every entry, up to the host's limit (the oracle on small zoos).

use crate::params::{Params, number};
use crate::types::{Description, Param, PluginError, PluginKind, SelectionRequest};

/// A zoo selector, implemented once and exported as a guest or called natively.
pub trait Selector {
    /// The self-description.
    fn describe() -> Description;
    /// The ids of the entries to check, most promising first.
    fn select(request: &SelectionRequest, params: &[Param]) -> Result<Vec<String>, PluginError>;
}

/// Euclidean distance between two signatures; `None` when their lengths differ (a signature
/// of another kind cannot be compared).
pub fn distance(a: &[f64], b: &[f64]) -> Option<f64> {
    (a.len() == b.len()).then(|| {
        a.iter()
            .zip(b)
            .map(|(x, y)| (x - y) * (x - y))
            .sum::<f64>()
            .sqrt()
    })
}

/// The entries nearest the stream's signature.
pub struct Nearest;

impl Selector for Nearest {
    fn describe() -> Description {
        Description {
            name: "nearest".into(),
            version: env!("CARGO_PKG_VERSION").into(),
            kind: PluginKind::Selector,
            summary:
                "The k zoo models whose scene signatures are nearest the stream's (Euclidean), \
                      ties broken by more uses, then newer."
                    .into(),
            params: vec![number("k", "how many models to short-list", 3.0)],
        }
    }

    fn select(request: &SelectionRequest, params: &[Param]) -> Result<Vec<String>, PluginError> {
        let specs = Self::describe().params;
        let p = Params::new(&specs, params)?;
        let k = p.number("k")?;
        if !(k >= 1.0 && k.fract() == 0.0) {
            return Err(PluginError::InvalidParam(format!(
                "k must be a positive integer, got {k}"
            )));
        }
        let mut scored: Vec<(f64, &crate::types::ZooEntry)> = request
            .entries
            .iter()
            .filter_map(|e| Some((distance(&request.signature, &e.signature)?, e)))
            .collect();
        scored.sort_by(|(da, a), (db, b)| {
            da.total_cmp(db)
                .then(b.uses.cmp(&a.uses))
                .then(b.origin_window.cmp(&a.origin_window))
        });
        let n = (k as usize).min(request.max_candidates as usize);
        Ok(scored
            .into_iter()
            .take(n)
            .map(|(_, e)| e.id.clone())
            .collect())
    }
}

/// Every entry of the zoo.
pub struct Everything;

impl Selector for Everything {
    fn describe() -> Description {
        Description {
            name: "check-all".into(),
            version: env!("CARGO_PKG_VERSION").into(),
            kind: PluginKind::Selector,
            summary: "Every zoo model, up to the host's limit: the oracle on small zoos, the most \
                      checking cost on large ones."
                .into(),
            params: vec![],
        }
    }

    fn select(request: &SelectionRequest, params: &[Param]) -> Result<Vec<String>, PluginError> {
        Params::new(&[], params)?;
        Ok(request
            .entries
            .iter()
            .take(request.max_candidates as usize)
            .map(|e| e.id.clone())
            .collect())
    }
}
