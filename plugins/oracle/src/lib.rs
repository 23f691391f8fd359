//! The δ-grid oracle (best schedule under the shared estimate) as a tandem policy plugin.
//!
//! A thin component wrapper: the algorithm lives in `tandem-plugin-sdk` (`tandem_plugin_sdk::policy::Oracle`), so the host
//! can also run it natively.

wit_bindgen::generate!({ world: "policy", path: "../../wit" });
tandem_plugin_sdk::export_policy!(tandem_plugin_sdk::policy::Oracle);
