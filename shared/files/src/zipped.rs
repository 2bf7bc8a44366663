//! Archives (DOCX, XLSX) measured before anything reads them: every part is inflated once into
//! nothing, counting, so a bomb fails here, within `max_expanded_bytes` of work, whatever its
//! headers claim.

use std::io::{Cursor, Read};

use crate::{Failure, Limits};

pub(crate) type Archive<'a> = zip::ZipArchive<Cursor<&'a [u8]>>;

pub(crate) fn open<'a>(bytes: &'a [u8], limits: &Limits) -> Result<Archive<'a>, Failure> {
    let mut archive = zip::ZipArchive::new(Cursor::new(bytes))
        .map_err(|e| Failure::Malformed(format!("not a readable archive ({e})")))?;
    if archive.len() > limits.max_archive_entries {
        return Err(Failure::TooLarge(format!(
            "the archive has more than {} parts",
            limits.max_archive_entries
        )));
    }
    let mut total = 0u64;
    let mut sink = vec![0u8; 64 * 1024];
    for i in 0..archive.len() {
        let mut part = archive
            .by_index(i)
            .map_err(|e| Failure::Malformed(format!("an archive part cannot be read ({e})")))?;
        loop {
            let n = part
                .read(&mut sink)
                .map_err(|e| Failure::Malformed(format!("an archive part is damaged ({e})")))?;
            if n == 0 {
                break;
            }
            total += n as u64;
            if total > limits.max_expanded_bytes {
                return Err(Failure::TooLarge(format!(
                    "the archive expands past {} bytes",
                    limits.max_expanded_bytes
                )));
            }
        }
    }
    Ok(archive)
}

/// One part, whole (already measured by [`open`]).
pub(crate) fn part(archive: &mut Archive<'_>, name: &str) -> Result<Option<Vec<u8>>, Failure> {
    let mut part = match archive.by_name(name) {
        Ok(part) => part,
        Err(zip::result::ZipError::FileNotFound) => return Ok(None),
        Err(e) => return Err(Failure::Malformed(format!("{name}: {e}"))),
    };
    let mut bytes = Vec::new();
    part.read_to_end(&mut bytes)
        .map_err(|e| Failure::Malformed(format!("{name}: {e}")))?;
    Ok(Some(bytes))
}
