//! The attack suite's modules and the example tool, built by this crate's build script.

include!(concat!(env!("OUT_DIR"), "/modules.rs"));

pub fn module(name: &str) -> &'static [u8] {
    MODULES
        .iter()
        .find(|(module, ..)| *module == name)
        .map(|(_, bytes, _)| *bytes)
        .unwrap_or_else(|| panic!("no test module {name}"))
}
