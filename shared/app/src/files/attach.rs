//! Files in the conversation. At send: the attachments are checked (the user's, processed,
//! within the per-message limit) and counted. At each turn: every attachment still in the
//! history becomes what the model reads best — an image part for a model that sees, a
//! document part where the wire format takes the document whole, its text elsewhere — and an
//! older copy of a file attached again later (by name) is replaced by a short note, as is a
//! file deleted since.

use std::collections::{HashMap, HashSet};
use std::sync::Arc;

use bestchat_domain::file::{
    Attachment, FileKind, FileRecord, FileStatus, image_key, original_key, text_key,
};
use bestchat_domain::ids::{FileId, MessageId, UserId};
use bestchat_domain::message::Message;
use bestchat_domain::ports::blobs::BlobStore;
use bestchat_domain::ports::store::FileStore;
use bestchat_domain::provider::Protocol;
use bestchat_domain::{DomainError, ErrorCode};
use bestchat_providers::Part;
use bestchat_providers::attachments::{
    document_limit, document_page_limit, image_limit, request_limit,
};

use crate::error::AppError;
use crate::files::FileSettings;

/// What an image costs a model, about (Claude: width × height / 750 at 1568 px).
pub const IMAGE_TOKENS: u32 = 1_600;
/// What a page of a PDF read whole costs, about (its text and its picture).
const PAGE_TOKENS: u32 = 1_500;
/// Characters per token in extracted text, about.
const CHARS_PER_TOKEN: i64 = 4;

/// The files a message may carry: the user's own, processed, at most the setting's number.
pub async fn for_message(
    store: &dyn FileStore,
    settings: &FileSettings,
    user: UserId,
    ids: &[FileId],
) -> Result<Vec<FileRecord>, AppError> {
    let unique: Vec<FileId> = {
        let mut seen = HashSet::new();
        ids.iter().copied().filter(|id| seen.insert(*id)).collect()
    };
    if unique.len() > settings.per_message {
        return Err(DomainError::validation(format!(
            "a message may carry at most {} files",
            settings.per_message
        ))
        .into());
    }
    if unique.is_empty() {
        return Ok(Vec::new());
    }
    let found = store.files_by_ids(user, &unique).await?;
    let mut ordered = Vec::with_capacity(unique.len());
    for id in &unique {
        let file = found
            .iter()
            .find(|f| f.id == *id)
            .ok_or_else(|| DomainError::of(ErrorCode::FileNotFound))?;
        if file.status != FileStatus::Ready {
            return Err(DomainError::new(
                ErrorCode::FileNotReady,
                format!(
                    "{} is {} and cannot be sent yet",
                    file.name,
                    file.status.as_str()
                ),
            )
            .into());
        }
        ordered.push(file.clone());
    }
    Ok(ordered)
}

/// Marks the attachments whose file is gone: messages keep a note that it was deleted.
pub async fn mark_deleted(
    store: &dyn FileStore,
    user: UserId,
    messages: &mut [Message],
) -> Result<(), AppError> {
    let ids: Vec<FileId> = messages
        .iter()
        .flat_map(|m| m.attachments.iter().map(|a| a.file_id))
        .collect();
    if ids.is_empty() {
        return Ok(());
    }
    let present: HashSet<FileId> = store
        .files_by_ids(user, &ids)
        .await?
        .into_iter()
        .map(|f| f.id)
        .collect();
    for a in messages.iter_mut().flat_map(|m| m.attachments.iter_mut()) {
        a.deleted = !present.contains(&a.file_id);
    }
    Ok(())
}

pub fn attachment(file: &FileRecord) -> Attachment {
    Attachment {
        file_id: file.id,
        name: file.name.clone(),
        content_type: file.content_type.clone(),
        kind: file.kind,
        deleted: false,
    }
}

/// What the files add to a message's tokens, about: the planner counts them with it.
pub fn estimated_tokens(files: &[FileRecord]) -> u32 {
    files.iter().fold(0u32, |sum, f| {
        let text = u32::try_from(f.text_chars.unwrap_or(0) / CHARS_PER_TOKEN).unwrap_or(u32::MAX);
        let own = match f.kind {
            FileKind::Image => IMAGE_TOKENS,
            _ => text.max(f.pages.unwrap_or(0).saturating_mul(PAGE_TOKENS)),
        };
        sum.saturating_add(own)
    })
}

/// The model that reads the turn: its wire format and whether it sees images.
#[derive(Debug, Clone, Copy)]
pub struct Reader {
    pub protocol: Protocol,
    pub vision: bool,
}

/// A user message's files as the turn sends them: text to put before the message, and parts.
#[derive(Debug, Default, Clone)]
pub struct Materialized {
    pub text: String,
    pub parts: Vec<Part>,
    /// The parts' tokens, about (the text is counted as text).
    pub part_tokens: u32,
}

/// An older copy left out of the context, for the optimization record.
pub struct Superseded {
    pub message: MessageId,
    pub tokens: u32,
}

/// Every attachment of `history`, as the turn sends it, by message.
pub async fn materialize(
    store: &dyn FileStore,
    blobs: &dyn BlobStore,
    settings: &FileSettings,
    history: &[Message],
    reader: Reader,
) -> Result<(HashMap<MessageId, Materialized>, Vec<Superseded>), AppError> {
    let mut out = HashMap::new();
    let mut superseded = Vec::new();
    let Some(user) = history.first().map(|m| m.user_id) else {
        return Ok((out, superseded));
    };
    let ids: Vec<FileId> = history
        .iter()
        .flat_map(|m| m.attachments.iter().map(|a| a.file_id))
        .collect();
    if ids.is_empty() {
        return Ok((out, superseded));
    }
    let files: HashMap<FileId, FileRecord> = store
        .files_by_ids(user, &ids)
        .await?
        .into_iter()
        .map(|f| (f.id, f))
        .collect();
    // Newest first: the first copy of a name met is the one that stays, and the newest files
    // get the request's room for inline bytes.
    let mut named: HashSet<String> = HashSet::new();
    let mut room = request_limit(reader.protocol);
    for message in history.iter().rev() {
        if message.attachments.is_empty() {
            continue;
        }
        let mut m = Materialized::default();
        for a in &message.attachments {
            // A name attached again later stands for every older copy, even once deleted.
            let newest = named.insert(a.name.clone());
            let Some(file) = files.get(&a.file_id) else {
                m.text
                    .push_str(&format!("[{}: this file was deleted]\n", a.name));
                continue;
            };
            if !newest {
                m.text.push_str(&format!(
                    "[{}: an older copy, replaced by the one attached later]\n",
                    a.name
                ));
                superseded.push(Superseded {
                    message: message.id,
                    tokens: estimated_tokens(std::slice::from_ref(file)),
                });
                continue;
            }
            add(&mut m, blobs, settings, file, reader, &mut room).await?;
        }
        out.insert(message.id, m);
    }
    Ok((out, superseded))
}

/// One file, in the form the reader takes best.
async fn add(
    m: &mut Materialized,
    blobs: &dyn BlobStore,
    settings: &FileSettings,
    file: &FileRecord,
    reader: Reader,
    room: &mut u64,
) -> Result<(), AppError> {
    let user = file.user_id;
    if file.kind == FileKind::Image {
        let image = blobs
            .get(
                &image_key(user, &file.sha256, 0),
                image_limit(reader.protocol),
            )
            .await
            .ok()
            .flatten();
        match image {
            Some(bytes) if reader.vision && fits(room, &bytes) => {
                m.parts.push(Part::Image {
                    media_type: image_type(&bytes).to_owned(),
                    data: Arc::from(bytes),
                });
                m.part_tokens = m.part_tokens.saturating_add(IMAGE_TOKENS);
            }
            Some(_) if reader.vision => m.text.push_str(&format!(
                "[{}: an image left out: this request has no room for more files]\n",
                file.name
            )),
            _ => m.text.push_str(&format!(
                "[{}: an image, which this model cannot see]\n",
                file.name
            )),
        }
        return Ok(());
    }
    let native = document_limit(reader.protocol, &file.content_type)
        .map(|max| max.min(*room))
        .filter(|max| u64::try_from(file.size_bytes).is_ok_and(|size| size <= *max))
        .filter(|_| file.pages.unwrap_or(0) <= document_page_limit(reader.protocol));
    if let Some(max) = native
        && let Some(bytes) = blobs.get(&original_key(user, &file.sha256), max).await?
        && fits(room, &bytes)
    {
        m.parts.push(Part::Document {
            name: file.name.clone(),
            media_type: file.content_type.clone(),
            data: Arc::from(bytes),
        });
        m.part_tokens = m
            .part_tokens
            .saturating_add(estimated_tokens(std::slice::from_ref(file)));
        return Ok(());
    }
    // A scan has almost no text: a model that sees gets its pages.
    let text = blobs
        .get(&text_key(user, &file.sha256), text_bytes(settings))
        .await?
        .map(|b| String::from_utf8_lossy(&b).into_owned())
        .unwrap_or_default();
    if reader.vision && file.kind == FileKind::Document && text.trim().len() < 16 {
        let mut n = 1;
        while let Some(bytes) = blobs
            .get(
                &image_key(user, &file.sha256, n),
                image_limit(reader.protocol),
            )
            .await?
            .filter(|b| fits(room, b))
        {
            m.parts.push(Part::Image {
                media_type: image_type(&bytes).to_owned(),
                data: Arc::from(bytes),
            });
            m.part_tokens = m.part_tokens.saturating_add(IMAGE_TOKENS);
            n += 1;
        }
        if n > 1 {
            m.text.push_str(&format!(
                "[{}: a scanned document, its pages attached]\n",
                file.name
            ));
            return Ok(());
        }
    }
    m.text.push_str(&format!(
        "<file name=\"{}\" type=\"{}\">\n{}\n</file>\n",
        file.name.replace('"', "'"),
        file.content_type,
        text
    ));
    Ok(())
}

/// Takes `bytes` from the request's room for inline files when they fit.
fn fits(room: &mut u64, bytes: &[u8]) -> bool {
    let size = bytes.len() as u64;
    if size > *room {
        return false;
    }
    *room -= size;
    true
}

/// UTF-8 takes at most four bytes a character.
fn text_bytes(settings: &FileSettings) -> u64 {
    u64::try_from(settings.max_text_chars)
        .unwrap_or(u64::MAX / 8)
        .saturating_mul(4)
        .saturating_add(1024)
}

/// Processing writes JPEG, or PNG where there is transparency.
fn image_type(bytes: &[u8]) -> &'static str {
    if bytes.starts_with(b"\x89PNG") {
        "image/png"
    } else {
        "image/jpeg"
    }
}
