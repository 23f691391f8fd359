//! The nearest-signature zoo selector: the k zoo models whose scene signatures are nearest the stream's.
//!
//! A thin component wrapper: the algorithm lives in `tandem-plugin-sdk` (`tandem_plugin_sdk::zoo::Nearest`), so the
//! host can also run it natively.

wit_bindgen::generate!({ world: "selector", path: "../../wit" });
tandem_plugin_sdk::export_selector!(tandem_plugin_sdk::zoo::Nearest);
