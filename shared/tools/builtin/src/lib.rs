//! The built-in tools' WebAssembly modules, built from `shared/tools/wasm` by this crate's build
//! script (never checked in). Only the executor links this crate: the modules are megabytes.

include!(concat!(env!("OUT_DIR"), "/modules.rs"));

/// The module of the built-in tool `name`.
pub fn module(name: &str) -> Option<&'static [u8]> {
    MODULES
        .iter()
        .find(|(tool, ..)| *tool == name)
        .map(|(_, bytes, _)| *bytes)
}

/// The sha256 of the built-in tool `name`'s module, computed by the build.
pub fn sha256(name: &str) -> Option<&'static str> {
    MODULES
        .iter()
        .find(|(tool, ..)| *tool == name)
        .map(|(.., sha)| *sha)
}

/// The built-in tool whose module has this sha256.
pub fn named(sha256: &str) -> Option<&'static str> {
    MODULES
        .iter()
        .find(|(.., sha)| *sha == sha256)
        .map(|(tool, ..)| *tool)
}

#[cfg(test)]
mod tests {
    #[test]
    fn every_builtin_is_a_webassembly_module() {
        for (name, bytes, sha) in super::MODULES {
            assert_eq!(&bytes[..4], b"\0asm", "{name}");
            assert_eq!(sha.len(), 64, "{name}");
        }
        assert!(super::module("calculator").is_some());
        assert!(super::module("nope").is_none());
        let sha = super::sha256("calculator").unwrap();
        assert_eq!(super::named(sha), Some("calculator"));
        assert_eq!(super::named(&"0".repeat(64)), None);
    }
}
