//! Ekya's configuration grid, adapted to tandem's CNN, as a tandem config-space plugin.
//!
//! A thin component wrapper: the algorithm lives in `tandem-plugin-sdk` (`tandem_plugin_sdk::space::EkyaSpace`), so the host
//! can also run it natively.

wit_bindgen::generate!({ world: "config-space", path: "../../wit" });
tandem_plugin_sdk::export_config_space!(tandem_plugin_sdk::space::EkyaSpace);
