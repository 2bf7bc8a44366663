//! The frame buffer on a laptop: one append-only file per streaming message under the data
//! directory. Files outlive the process, so after a kill the next process's janitor ends the
//! answer with what was streamed, and a client resumes it, as Redis allows in the cloud. A frame
//! is compact JSON, one line; a line a kill cut short (no newline yet) is not a frame.

use std::collections::BTreeMap;
use std::io::Write;
use std::path::PathBuf;
use std::sync::Mutex;
use std::time::{Instant, SystemTime};

use async_trait::async_trait;
use bestchat_domain::ids::MessageId;
use bestchat_domain::ports::cache::CacheError;
use bestchat_domain::ports::realtime::StreamBuffer;

use crate::BufferSettings;

/// How often expired files are looked for, at most.
const SWEEP_EVERY: std::time::Duration = std::time::Duration::from_secs(60);

pub struct FileStreamBuffer {
    dir: PathBuf,
    settings: BufferSettings,
    last_sweep: Mutex<Option<Instant>>,
}

impl FileStreamBuffer {
    pub fn new(dir: PathBuf, settings: BufferSettings) -> Self {
        Self {
            dir,
            settings,
            last_sweep: Mutex::new(None),
        }
    }

    fn path(&self, message: MessageId) -> PathBuf {
        self.dir.join(format!("{message}.frames"))
    }

    /// Removes the files of messages nobody appended to within the expiry.
    fn sweep_if_due(&self) {
        let mut last = self
            .last_sweep
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        if last.is_some_and(|at| at.elapsed() < SWEEP_EVERY) {
            return;
        }
        *last = Some(Instant::now());
        let Ok(entries) = std::fs::read_dir(&self.dir) else {
            return;
        };
        for entry in entries.flatten() {
            if entry.metadata().is_ok_and(|m| expired(&m, &self.settings)) {
                let _ = std::fs::remove_file(entry.path());
            }
        }
    }
}

fn expired(meta: &std::fs::Metadata, settings: &BufferSettings) -> bool {
    meta.modified()
        .ok()
        .and_then(|at| SystemTime::now().duration_since(at).ok())
        .is_some_and(|age| age > settings.ttl)
}

fn io(e: std::io::Error) -> CacheError {
    CacheError(format!("stream buffer file: {e}"))
}

async fn blocking<T: Send + 'static>(
    f: impl FnOnce() -> Result<T, CacheError> + Send + 'static,
) -> Result<T, CacheError> {
    tokio::task::spawn_blocking(f)
        .await
        .map_err(|e| CacheError(format!("stream buffer task: {e}")))?
}

#[async_trait]
impl StreamBuffer for FileStreamBuffer {
    async fn append(&self, message: MessageId, seq: u64, frame: &str) -> Result<(), CacheError> {
        self.sweep_if_due();
        let (dir, path) = (self.dir.clone(), self.path(message));
        let line = format!("{seq} {frame}\n");
        blocking(move || {
            std::fs::create_dir_all(&dir).map_err(io)?;
            let mut file = std::fs::OpenOptions::new()
                .create(true)
                .append(true)
                .open(&path)
                .map_err(io)?;
            file.write_all(line.as_bytes()).map_err(io)
        })
        .await
    }

    async fn read_after(
        &self,
        message: MessageId,
        after_seq: u64,
    ) -> Result<Vec<(u64, String)>, CacheError> {
        let (path, settings) = (self.path(message), self.settings.clone());
        blocking(move || {
            let text = match std::fs::read(&path) {
                Ok(bytes) if std::fs::metadata(&path).is_ok_and(|m| !expired(&m, &settings)) => {
                    String::from_utf8_lossy(&bytes).into_owned()
                }
                Ok(_) => return Ok(Vec::new()),
                Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(Vec::new()),
                Err(e) => return Err(io(e)),
            };
            // A seq written twice keeps its first frame, as the Redis buffer does.
            let mut by_seq: BTreeMap<u64, String> = BTreeMap::new();
            for line in text.split_inclusive('\n') {
                let whole = line.strip_suffix('\n');
                let Some((seq, frame)) = whole.and_then(|l| l.split_once(' ')) else {
                    continue;
                };
                if let Ok(seq) = seq.parse::<u64>() {
                    by_seq.entry(seq).or_insert_with(|| frame.to_owned());
                }
            }
            let cap = usize::try_from(settings.max_frames).unwrap_or(usize::MAX);
            let skip = by_seq.len().saturating_sub(cap);
            Ok(by_seq
                .into_iter()
                .skip(skip)
                .filter(|(seq, _)| *seq > after_seq)
                .collect())
        })
        .await
    }

    async fn clear(&self, message: MessageId) -> Result<(), CacheError> {
        let path = self.path(message);
        blocking(move || match std::fs::remove_file(&path) {
            Err(e) if e.kind() != std::io::ErrorKind::NotFound => Err(io(e)),
            _ => Ok(()),
        })
        .await
    }
}
