//! What an uploaded file is and what a model can read of it. [`sniff`] decides the kind from
//! the bytes alone; [`process`] turns the bytes into text (documents, spreadsheets, web pages,
//! code) or a resized image, within [`Limits`]: every archive, image and document is measured
//! before it is expanded, and a panic in a parser fails the file instead of the process.

mod docx;
mod image;
mod pdf;
mod sheet;
mod sniff;
mod text;
mod zipped;

use std::panic::{AssertUnwindSafe, catch_unwind};

use bestchat_domain::file::FileKind;

pub use sniff::{Format, Sniffed, sniff};

/// The bounds processing keeps to; each is a named setting of the deployment.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Limits {
    /// Text kept from one file (characters); the rest is cut with a note.
    pub max_text_chars: usize,
    /// Bytes an archive (DOCX, XLSX) may expand to, all its parts together.
    pub max_expanded_bytes: u64,
    /// Parts an archive may have.
    pub max_archive_entries: usize,
    /// Pixels an image may have before it is decoded.
    pub max_pixels: u64,
    /// Memory an image decoder may allocate.
    pub max_decode_bytes: u64,
    /// The longest edge of an image as sent to models.
    pub image_max_edge: u32,
    /// Objects a PDF may have before it is parsed.
    pub max_pdf_objects: usize,
    /// Pages a PDF may have.
    pub max_pages: usize,
    /// Page images kept from a scanned PDF.
    pub max_page_images: usize,
}

impl Default for Limits {
    fn default() -> Self {
        Self {
            max_text_chars: 2_000_000,
            max_expanded_bytes: 256 * 1024 * 1024,
            max_archive_entries: 10_000,
            max_pixels: 100_000_000,
            max_decode_bytes: 512 * 1024 * 1024,
            image_max_edge: 1_568,
            max_pdf_objects: 500_000,
            max_pages: 2_000,
            max_page_images: 20,
        }
    }
}

/// An image as models get it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Encoded {
    pub media_type: &'static str,
    pub bytes: Vec<u8>,
    pub width: u32,
    pub height: u32,
}

/// What processing made of a file.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Extracted {
    pub text: Option<String>,
    pub pages: Option<u32>,
    /// The original image's size (after its EXIF orientation).
    pub width: Option<u32>,
    pub height: Option<u32>,
    /// The image resized and re-encoded.
    pub image: Option<Encoded>,
    /// A scanned document's pages, as images, when it has almost no text.
    pub page_images: Vec<Encoded>,
}

/// Why a file could not be processed, in words its owner can act on.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum Failure {
    #[error("the file is larger than it may be once expanded: {0}")]
    TooLarge(String),
    #[error("the file is damaged or not what it claims to be: {0}")]
    Malformed(String),
    #[error("this kind of file is not accepted: {0}")]
    Unsupported(String),
}

/// Extracts what a model can read of `bytes`, which [`sniff`] found to be `format`.
pub fn process(bytes: &[u8], format: Format, limits: &Limits) -> Result<Extracted, Failure> {
    // Parsers of untrusted formats may panic on input their authors did not foresee; that
    // fails this file, not the function.
    catch_unwind(AssertUnwindSafe(|| match format {
        Format::Pdf => pdf::extract(bytes, limits),
        Format::Docx => docx::extract(bytes, limits),
        Format::Xlsx => sheet::xlsx(bytes, limits),
        Format::Csv => text::plain(bytes, limits),
        Format::Html => text::html(bytes, limits),
        Format::Markdown | Format::Code | Format::PlainText => text::plain(bytes, limits),
        Format::Png | Format::Jpeg | Format::Gif | Format::Webp => image::extract(bytes, limits),
    }))
    .unwrap_or_else(|_| Err(Failure::Malformed("its parser could not read it".into())))
}

/// Keeps at most `max` characters, saying so when it cut.
pub(crate) fn bounded(mut text: String, max: usize) -> String {
    if let Some((cut, _)) = text.char_indices().nth(max) {
        text.truncate(cut);
        text.push_str(
            "\n[… the rest of the file is left out: it is longer than this deployment reads]",
        );
    }
    text
}

impl Format {
    pub const fn kind(self) -> FileKind {
        match self {
            Self::Pdf | Self::Docx | Self::Html => FileKind::Document,
            Self::Xlsx | Self::Csv => FileKind::Spreadsheet,
            Self::Markdown | Self::PlainText => FileKind::Text,
            Self::Code => FileKind::Code,
            Self::Png | Self::Jpeg | Self::Gif | Self::Webp => FileKind::Image,
        }
    }
}
