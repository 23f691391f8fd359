//! TEST FIXTURE (never registered as a built-in): a policy that misbehaves as its `mode`
//! parameter says, so the host's tests can check each sandbox limit and output check.
//!
//! Modes: `ok` (an even split, valid), `loop` (never returns), `memory` (allocates without
//! bound), `panic`, `nan` (NaN shares), `over-budget` (more GPU than exists), `over-one`
//! (a job above 1 GPU), `unknown-stream`, `unoffered-config`, `error` (a WIT error),
//! `sleep` (one WASI sleep of an hour), `naps` (1 ms sleeps, forever), `random` (valid, with
//! WASI random numbers as its estimated accuracy).

use tandem_plugin_sdk::params::{Params, text};
use tandem_plugin_sdk::policy::{Allocation, Policy, evaluate, to_schedule};
use tandem_plugin_sdk::types::{
    Description, Param, PluginError, PluginKind, PolicyInput, Schedule,
};

wit_bindgen::generate!({ world: "policy", path: "../../wit" });
tandem_plugin_sdk::export_policy!(Misbehave);

struct Misbehave;

impl Policy for Misbehave {
    fn describe() -> Description {
        Description {
            name: "test-misbehave".into(),
            version: env!("CARGO_PKG_VERSION").into(),
            kind: PluginKind::Policy,
            summary: "Test fixture: misbehaves as `mode` says.".into(),
            params: vec![text("mode", "which misbehaviour", "ok")],
        }
    }

    fn schedule(input: &PolicyInput, params: &[Param]) -> Result<Schedule, PluginError> {
        let specs = Self::describe().params;
        let mode = Params::new(&specs, params)?.text("mode")?.to_string();
        let alloc = Allocation::split(input, 0.5);
        let (picks, _) = evaluate(input, &alloc, 0.0);
        let mut s = to_schedule(input, &alloc, &picks, None);
        match mode.as_str() {
            "ok" => {}
            "loop" => {
                let mut i = 0u64;
                loop {
                    i = std::hint::black_box(i.wrapping_add(1));
                }
            }
            "memory" => {
                let mut hoard: Vec<Vec<u8>> = Vec::new();
                loop {
                    hoard.push(std::hint::black_box(vec![1u8; 1 << 20]));
                }
            }
            "panic" => panic!("misbehaving on purpose"),
            "sleep" => std::thread::sleep(std::time::Duration::from_secs(3600)),
            "naps" => loop {
                std::thread::sleep(std::time::Duration::from_millis(1));
            },
            "random" => {
                use std::hash::BuildHasher;
                // RandomState's keys come from WASI random.
                let r = std::collections::hash_map::RandomState::new().hash_one(0u64);
                s.estimated_accuracy = Some((r % 1_000_000) as f64 / 1e6);
            }
            "nan" => s.streams[0].infer_share = f64::NAN,
            "over-budget" => {
                for st in &mut s.streams {
                    st.infer_share = 1.0;
                    st.retrain_share = 1.0;
                }
            }
            "over-one" => s.streams[0].infer_share = 1.5,
            "unknown-stream" => s.streams[0].stream_id = "no-such-stream".into(),
            "unoffered-config" => s.streams[0].infer_config = "no-such-config".into(),
            "error" => return Err(PluginError::Infeasible("refusing on purpose".into())),
            m => return Err(PluginError::InvalidParam(format!("unknown mode `{m}`"))),
        }
        Ok(s)
    }
}
