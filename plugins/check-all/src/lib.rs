//! The check-everything zoo selector: every zoo model, up to the host's limit (the oracle on small zoos).
//!
//! A thin component wrapper: the algorithm lives in `tandem-plugin-sdk` (`tandem_plugin_sdk::zoo::Everything`), so the
//! host can also run it natively.

wit_bindgen::generate!({ world: "selector", path: "../../wit" });
tandem_plugin_sdk::export_selector!(tandem_plugin_sdk::zoo::Everything);
