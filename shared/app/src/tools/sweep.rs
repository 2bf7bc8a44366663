//! Storage no tool uses any more. Modules are kept by content (`tools/<sha256>.wasm`), shared
//! by whoever registers the same bytes, and code compiled from them is kept beside them
//! (`compiled/<engine>/<sha256>.cwasm`, and in this process's cache directory): a deletion
//! cannot remove them at once. The janitor removes each once no tool of any user refers to its
//! module, sparing what was written within the grace period, since a registration stores its
//! module before its row exists. A user's deleted module, and anything a registration that
//! died left behind, goes within a grace period and a janitor interval.

use std::collections::BTreeSet;

use bestchat_domain::ports::blobs::BlobStore;
use bestchat_domain::ports::store::ToolStore;
use bestchat_domain::time::now;
use bestchat_tools::sandbox::forget_compiled;

use crate::error::AppError;
use crate::tools::config::ToolsConfig;

/// Objects listed at a time.
const PAGE: usize = 1_000;
/// Objects one run looks at, at most; the rest wait for the next run.
pub const MAX_SWEPT: usize = 20_000;

/// Removes the modules no tool uses, and their compiled code; how many objects went.
pub async fn unused_modules(
    blobs: &dyn BlobStore,
    store: &dyn ToolStore,
    tools: &ToolsConfig,
) -> Result<u32, AppError> {
    let grace = chrono::Duration::from_std(tools.module_grace).unwrap_or(chrono::Duration::MAX);
    let cutoff = now() - grace;
    let builtins: BTreeSet<&str> = bestchat_tools::builtin::all()
        .iter()
        .filter_map(|b| bestchat_builtin_tools::sha256(b.manifest.name.as_str()))
        .collect();
    let mut removed = 0u32;
    for prefix in ["tools/", "compiled/"] {
        let (mut after, mut seen) = (None::<String>, 0usize);
        while seen < MAX_SWEPT {
            let page = blobs.list(prefix, after.as_deref(), PAGE).await?;
            let Some(last) = page.last() else { break };
            after = Some(last.key.clone());
            seen += page.len();
            let full = page.len() == PAGE;
            let old: Vec<(String, String)> = page
                .into_iter()
                .filter(|b| b.modified < cutoff)
                .filter_map(|b| Some((module_of(&b.key)?.to_owned(), b.key)))
                .filter(|(sha, _)| !builtins.contains(sha.as_str()))
                .collect();
            let wanted: Vec<String> = old
                .iter()
                .map(|(sha, _)| sha.clone())
                .collect::<BTreeSet<_>>()
                .into_iter()
                .collect();
            let used = store.modules_in_use(&wanted).await?;
            for (sha, key) in old.iter().filter(|(sha, _)| !used.contains(sha)) {
                blobs.delete(key).await?;
                forget_compiled(&tools.cache_dir, sha);
                removed = removed.saturating_add(1);
                tracing::info!(key, "removed a module no tool uses");
            }
            if !full {
                break;
            }
        }
    }
    Ok(removed)
}

/// The module hash a key is named by: `tools/<sha>.wasm`, `compiled/<engine>/<sha>.cwasm`.
fn module_of(key: &str) -> Option<&str> {
    let name = key.rsplit('/').next()?;
    let sha = name.split('.').next()?;
    (sha.len() == 64 && sha.bytes().all(|b| b.is_ascii_hexdigit())).then_some(sha)
}

#[cfg(test)]
mod tests {
    use super::module_of;

    #[test]
    fn keys_name_their_module() {
        let sha = "ab".repeat(32);
        assert_eq!(module_of(&format!("tools/{sha}.wasm")), Some(sha.as_str()));
        assert_eq!(
            module_of(&format!("compiled/0123456789abcdef/{sha}.cwasm")),
            Some(sha.as_str())
        );
        for other in ["tools/readme.txt", "compiled/x/abc.cwasm", "tools/"] {
            assert_eq!(module_of(other), None, "{other}");
        }
    }
}
