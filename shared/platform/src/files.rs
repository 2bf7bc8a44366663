//! Secrets on a laptop's disk: created once, readable by the owner only.

use std::io::Write;
use std::path::Path;

/// Reads the file, or creates it with `make()`'s bytes and mode 0600 when it does not exist.
pub fn read_or_create_private(
    path: &Path,
    make: impl FnOnce() -> Vec<u8>,
) -> std::io::Result<Vec<u8>> {
    match std::fs::read(path) {
        Ok(bytes) => return Ok(bytes),
        Err(e) if e.kind() != std::io::ErrorKind::NotFound => return Err(e),
        Err(_) => {}
    }
    if let Some(dir) = path.parent() {
        std::fs::create_dir_all(dir)?;
    }
    let bytes = make();
    match open_private(path) {
        Ok(mut file) => {
            file.write_all(&bytes)?;
            file.sync_all()?;
            Ok(bytes)
        }
        // Another process created it first: use theirs.
        Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => std::fs::read(path),
        Err(e) => Err(e),
    }
}

#[cfg(unix)]
fn open_private(path: &Path) -> std::io::Result<std::fs::File> {
    use std::os::unix::fs::OpenOptionsExt;
    std::fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(0o600)
        .open(path)
}

#[cfg(not(unix))]
fn open_private(path: &Path) -> std::io::Result<std::fs::File> {
    std::fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .open(path)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn created_once_owner_only() {
        let dir = std::env::temp_dir().join(format!("bestchat-private-{}", std::process::id()));
        let path = dir.join("nested/secret");
        let first = read_or_create_private(&path, || b"one".to_vec()).unwrap();
        let second = read_or_create_private(&path, || b"two".to_vec()).unwrap();
        assert_eq!(first, b"one");
        assert_eq!(second, b"one");
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt;
            let mode = std::fs::metadata(&path).unwrap().permissions().mode();
            assert_eq!(mode & 0o777, 0o600);
        }
        std::fs::remove_dir_all(dir).unwrap();
    }
}
