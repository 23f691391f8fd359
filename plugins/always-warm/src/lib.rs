//! The always-warm lifecycle policy: streams never scale to zero.
//!
//! A thin component wrapper: the algorithm lives in `tandem-plugin-sdk` (`tandem_plugin_sdk::lifecycle::AlwaysWarm`), so the
//! host can also run it natively.

wit_bindgen::generate!({ world: "lifecycle", path: "../../wit" });
tandem_plugin_sdk::export_lifecycle!(tandem_plugin_sdk::lifecycle::AlwaysWarm);
