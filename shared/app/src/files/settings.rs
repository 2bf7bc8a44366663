//! The limits on uploaded files, each a named setting.

use std::time::Duration;

use bestchat_files::{Format, Limits};
use serde::Deserialize;

use crate::config::ConfigError;

#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(default)]
pub struct FileSettings {
    /// The deployed processing function; unset: files are processed in process.
    #[serde(rename = "FILES_PROCESS_FUNCTION")]
    pub process_function: Option<String>,
    /// Largest file accepted.
    #[serde(rename = "BESTCHAT_FILES_MAX_BYTES")]
    pub max_bytes: u64,
    /// Files one message may carry.
    #[serde(rename = "BESTCHAT_FILES_PER_MESSAGE")]
    pub per_message: usize,
    /// Bytes one user may store (each content once).
    #[serde(rename = "BESTCHAT_FILES_STORAGE_BYTES")]
    pub storage_bytes: u64,
    /// Formats accepted, by name (`pdf,docx,xlsx,csv,html,markdown,code,text,png,jpeg,gif,webp`).
    #[serde(rename = "BESTCHAT_FILES_TYPES")]
    pub types: String,
    /// How long a presigned upload URL works.
    #[serde(
        rename = "BESTCHAT_FILES_UPLOAD_URL_TTL_S",
        deserialize_with = "bestchat_domain::settings::seconds"
    )]
    pub upload_url_ttl: Duration,
    /// How long a presigned download URL works.
    #[serde(
        rename = "BESTCHAT_FILES_DOWNLOAD_URL_TTL_S",
        deserialize_with = "bestchat_domain::settings::seconds"
    )]
    pub download_url_ttl: Duration,
    /// An upload never completed is forgotten (its row and bytes) after this long.
    #[serde(
        rename = "BESTCHAT_FILES_ORPHAN_AFTER_S",
        deserialize_with = "bestchat_domain::settings::seconds"
    )]
    pub orphan_after: Duration,
    /// Longest processing of one file; past it the file fails.
    #[serde(
        rename = "BESTCHAT_FILES_PROCESS_TIMEOUT_MS",
        deserialize_with = "bestchat_domain::settings::millis"
    )]
    pub process_timeout: Duration,
    #[serde(rename = "BESTCHAT_FILES_MAX_TEXT_CHARS")]
    pub max_text_chars: usize,
    #[serde(rename = "BESTCHAT_FILES_MAX_EXPANDED_BYTES")]
    pub max_expanded_bytes: u64,
    #[serde(rename = "BESTCHAT_FILES_MAX_PIXELS")]
    pub max_pixels: u64,
    /// The longest edge of an image as models get it.
    #[serde(rename = "BESTCHAT_FILES_IMAGE_MAX_EDGE")]
    pub image_max_edge: u32,
    #[serde(rename = "BESTCHAT_FILES_MAX_PAGES")]
    pub max_pages: usize,
}

impl Default for FileSettings {
    fn default() -> Self {
        let limits = Limits::default();
        Self {
            process_function: None,
            max_bytes: 50 * 1024 * 1024,
            per_message: 10,
            storage_bytes: 1024 * 1024 * 1024,
            types: FORMAT_NAMES
                .iter()
                .map(|(n, _)| *n)
                .collect::<Vec<_>>()
                .join(","),
            upload_url_ttl: Duration::from_secs(15 * 60),
            download_url_ttl: Duration::from_secs(5 * 60),
            orphan_after: Duration::from_secs(24 * 3600),
            process_timeout: Duration::from_secs(120),
            max_text_chars: limits.max_text_chars,
            max_expanded_bytes: limits.max_expanded_bytes,
            max_pixels: limits.max_pixels,
            image_max_edge: limits.image_max_edge,
            max_pages: limits.max_pages,
        }
    }
}

const FORMAT_NAMES: &[(&str, Format)] = &[
    ("pdf", Format::Pdf),
    ("docx", Format::Docx),
    ("xlsx", Format::Xlsx),
    ("csv", Format::Csv),
    ("html", Format::Html),
    ("markdown", Format::Markdown),
    ("code", Format::Code),
    ("text", Format::PlainText),
    ("png", Format::Png),
    ("jpeg", Format::Jpeg),
    ("gif", Format::Gif),
    ("webp", Format::Webp),
];

impl FileSettings {
    pub fn check(&self) -> Result<(), ConfigError> {
        for name in self
            .types
            .split(',')
            .map(str::trim)
            .filter(|n| !n.is_empty())
        {
            if !FORMAT_NAMES.iter().any(|(known, _)| *known == name) {
                let known: Vec<&str> = FORMAT_NAMES.iter().map(|(n, _)| *n).collect();
                return Err(ConfigError(format!(
                    "BESTCHAT_FILES_TYPES names {name:?}; it may name {}",
                    known.join(", ")
                )));
            }
        }
        if self.max_bytes == 0 || self.per_message == 0 {
            return Err(ConfigError(
                "BESTCHAT_FILES_MAX_BYTES and BESTCHAT_FILES_PER_MESSAGE must be above 0".into(),
            ));
        }
        Ok(())
    }

    /// Whether the deployment accepts this format.
    pub fn accepts(&self, format: Format) -> bool {
        FORMAT_NAMES
            .iter()
            .filter(|(_, f)| *f == format)
            .any(|(name, _)| self.types.split(',').any(|t| t.trim() == *name))
    }

    pub fn limits(&self) -> Limits {
        Limits {
            max_text_chars: self.max_text_chars,
            max_expanded_bytes: self.max_expanded_bytes,
            max_pixels: self.max_pixels,
            image_max_edge: self.image_max_edge,
            max_pages: self.max_pages,
            ..Limits::default()
        }
    }
}
