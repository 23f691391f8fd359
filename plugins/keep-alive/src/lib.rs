//! A fixed keep-alive lifecycle policy (Knative-like): streams scale to zero a fixed time after their last frame.
//!
//! A thin component wrapper: the algorithm lives in `tandem-plugin-sdk` (`tandem_plugin_sdk::lifecycle::FixedKeepAlive`), so the
//! host can also run it natively.

wit_bindgen::generate!({ world: "lifecycle", path: "../../wit" });
tandem_plugin_sdk::export_lifecycle!(tandem_plugin_sdk::lifecycle::FixedKeepAlive);
