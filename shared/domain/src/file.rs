//! Uploaded files: what a user attached, where its bytes are, and what processing found.

use serde::{Deserialize, Serialize};

use crate::ids::{FileId, UserId};
use crate::message::MessageError;
use crate::string_enum;
use crate::time::Timestamp;

string_enum!(
    /// What the bytes are, as sniffed (never as named or declared).
    FileKind {
        Image => "image",
        Document => "document",
        Spreadsheet => "spreadsheet",
        Text => "text",
        Code => "code",
    }
);

string_enum!(
    /// `uploading` until `complete` finds the bytes; `processing` until text or a resized
    /// image is ready; `failed` says why in `error`.
    FileStatus {
        Uploading => "uploading",
        Processing => "processing",
        Ready => "ready",
        Failed => "failed",
    }
);

#[derive(Debug, Clone, PartialEq, Serialize, ::schemars::JsonSchema)]
pub struct FileRecord {
    pub id: FileId,
    #[serde(skip)]
    pub user_id: UserId,
    pub name: String,
    pub content_type: String,
    pub size_bytes: i64,
    pub sha256: String,
    pub kind: FileKind,
    pub status: FileStatus,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub pages: Option<u32>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub text_chars: Option<i64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub width: Option<u32>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub height: Option<u32>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub error: Option<MessageError>,
    pub created_at: Timestamp,
    pub updated_at: Timestamp,
}

/// What processing found, recorded on every row of the user with the same bytes.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Processed {
    pub kind: Option<FileKind>,
    pub content_type: Option<String>,
    pub pages: Option<u32>,
    pub text_chars: Option<i64>,
    pub width: Option<u32>,
    pub height: Option<u32>,
}

/// Where the original bytes live: one object per user and content, whatever the name.
pub fn original_key(user: UserId, sha256: &str) -> String {
    format!("{}original", prefix_of(user, sha256))
}

/// The extracted text (UTF-8), beside the original.
pub fn text_key(user: UserId, sha256: &str) -> String {
    format!("{}text", prefix_of(user, sha256))
}

/// The image re-encoded to the size models accept (`n` = 0), or a scanned document's page
/// images (`n` = 1, 2, …).
pub fn image_key(user: UserId, sha256: &str, n: u32) -> String {
    format!("{}image-{n}", prefix_of(user, sha256))
}

/// The folder of everything a file's bytes left: deleting it deletes them.
pub fn prefix_of(user: UserId, sha256: &str) -> String {
    format!("files/{user}/{sha256}/")
}

/// The user and content a key under `files/` belongs to.
pub fn owner_of(key: &str) -> Option<(UserId, &str)> {
    let mut parts = key.strip_prefix("files/")?.split('/');
    let user = UserId::from_uuid(uuid::Uuid::parse_str(parts.next()?).ok()?);
    let sha = parts.next().filter(|s| is_sha256_hex(s))?;
    Some((user, sha))
}

/// One attachment as a message carries it; `deleted` once the file is gone.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ::schemars::JsonSchema)]
pub struct Attachment {
    pub file_id: FileId,
    pub name: String,
    pub content_type: String,
    pub kind: FileKind,
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub deleted: bool,
}

/// A lower-case hex SHA-256.
pub fn is_sha256_hex(raw: &str) -> bool {
    raw.len() == 64 && raw.bytes().all(|b| matches!(b, b'0'..=b'9' | b'a'..=b'f'))
}
