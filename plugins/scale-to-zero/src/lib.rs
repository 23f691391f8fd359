//! The pure scale-to-zero lifecycle policy: streams scale to zero as soon as they go idle.
//!
//! A thin component wrapper: the algorithm lives in `tandem-plugin-sdk` (`tandem_plugin_sdk::lifecycle::NeverKeep`), so the
//! host can also run it natively.

wit_bindgen::generate!({ world: "lifecycle", path: "../../wit" });
tandem_plugin_sdk::export_lifecycle!(tandem_plugin_sdk::lifecycle::NeverKeep);
