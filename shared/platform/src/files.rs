//! Secrets on a laptop's disk: created once, readable by the owner only.

use std::io::Write;
use std::path::Path;

/// Reads the file, or creates it with `make()`'s bytes and mode 0600 when it does not exist.
///
/// The bytes are written whole under a temporary name and then linked into place, so the name
/// either does not exist or holds all of them: two processes starting at once never read a
/// half-written secret. Linking, unlike renaming, fails when the name exists; then the other
/// process won, and its bytes are the ones returned.
pub fn read_or_create_private(
    path: &Path,
    make: impl FnOnce() -> Vec<u8>,
) -> std::io::Result<Vec<u8>> {
    match std::fs::read(path) {
        Ok(bytes) => return Ok(bytes),
        Err(e) if e.kind() != std::io::ErrorKind::NotFound => return Err(e),
        Err(_) => {}
    }
    let dir = match path.parent() {
        Some(dir) if !dir.as_os_str().is_empty() => dir.to_path_buf(),
        _ => std::path::PathBuf::from("."),
    };
    std::fs::create_dir_all(&dir)?;
    let bytes = make();
    let name = path
        .file_name()
        .map_or_else(Default::default, |n| n.to_string_lossy().into_owned());
    let temp = dir.join(format!(
        ".{name}.{}.{}.tmp",
        std::process::id(),
        uuid_like()
    ));
    let written = open_private(&temp).and_then(|mut file| {
        file.write_all(&bytes)?;
        file.sync_all()
    });
    let placed = written.and_then(|()| std::fs::hard_link(&temp, path));
    let _ = std::fs::remove_file(&temp);
    match placed {
        Ok(()) => Ok(bytes),
        Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => std::fs::read(path),
        Err(e) => Err(e),
    }
}

/// A name part no other writer picks at the same moment.
pub(crate) fn uuid_like() -> String {
    crate::aead::random_bytes::<8>()
        .map(|b| b.iter().map(|x| format!("{x:02x}")).collect())
        .unwrap_or_else(|_| format!("{:?}", std::time::SystemTime::now()))
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

    #[test]
    fn racing_creators_all_read_one_whole_value() {
        let dir = std::env::temp_dir().join(format!("bestchat-race-{}", uuid_like()));
        let path = dir.join("secret");
        let seen: Vec<Vec<u8>> = std::thread::scope(|scope| {
            let handles: Vec<_> = (0..16)
                .map(|i| {
                    let path = &path;
                    scope.spawn(move || {
                        read_or_create_private(path, || {
                            format!("value-{i:02}-{}", "x".repeat(4096)).into_bytes()
                        })
                        .unwrap()
                    })
                })
                .collect();
            handles.into_iter().map(|h| h.join().unwrap()).collect()
        });
        let stored = std::fs::read(&path).unwrap();
        assert!(stored.len() > 4096);
        assert!(
            seen.iter().all(|s| *s == stored),
            "every process uses the stored value"
        );
        let leftovers = std::fs::read_dir(&dir).unwrap().count();
        assert_eq!(leftovers, 1, "no temporary file is left behind");
        std::fs::remove_dir_all(dir).unwrap();
    }
}
