//! The key vault: KMS in production, a local master key file on a laptop.

mod kms;
mod local;

pub use kms::KmsKeyVault;
pub use local::LocalKeyVault;

/// The encryption context in one canonical form (sorted JSON object), so the same pairs always
/// give the same associated data.
pub(crate) fn canonical_context(context: &[(&str, &str)]) -> Vec<u8> {
    let map: std::collections::BTreeMap<&str, &str> = context.iter().copied().collect();
    serde_json::to_vec(&map).unwrap_or_default()
}
