//! The hybrid histogram lifecycle policy: keep-alive and pre-warm from each stream's idle-time histogram.
//!
//! A thin component wrapper: the algorithm lives in `tandem-plugin-sdk` (`tandem_plugin_sdk::lifecycle::Histogram`), so the
//! host can also run it natively.

wit_bindgen::generate!({ world: "lifecycle", path: "../../wit" });
tandem_plugin_sdk::export_lifecycle!(tandem_plugin_sdk::lifecycle::Histogram);
