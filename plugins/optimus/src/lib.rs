//! The Optimus curve-fit estimator as a tandem estimator plugin.
//!
//! A thin component wrapper: the algorithm lives in `tandem-plugin-sdk` (`tandem_plugin_sdk::optimus::Optimus`), so the host
//! can also run it natively.

wit_bindgen::generate!({ world: "estimator", path: "../../wit" });
tandem_plugin_sdk::export_estimator!(tandem_plugin_sdk::optimus::Optimus);
