//! TEST FIXTURE (never registered as a built-in): a policy that loads and describes itself
//! normally, then sleeps for an hour (a WASI clock wait, not a busy loop) in every decision,
//! so validation's sample run and every call of a run must cut it off at the deadline.

use tandem_plugin_sdk::policy::Policy;
use tandem_plugin_sdk::types::{
    Description, Param, PluginError, PluginKind, PolicyInput, Schedule,
};

wit_bindgen::generate!({ world: "policy", path: "../../wit" });
tandem_plugin_sdk::export_policy!(Sleeper);

struct Sleeper;

impl Policy for Sleeper {
    fn describe() -> Description {
        Description {
            name: "test-sleep".into(),
            version: env!("CARGO_PKG_VERSION").into(),
            kind: PluginKind::Policy,
            summary: "Test fixture: sleeps for an hour in every decision.".into(),
            params: vec![],
        }
    }

    fn schedule(_input: &PolicyInput, _params: &[Param]) -> Result<Schedule, PluginError> {
        std::thread::sleep(std::time::Duration::from_secs(3600));
        Err(PluginError::Infeasible("woke up after an hour".into()))
    }
}
