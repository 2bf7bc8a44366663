//! PDF: the text of each page; a scan (almost no text) gives its pages' JPEG images instead,
//! for a vision model to read.

use crate::{Encoded, Extracted, Failure, Limits, bounded};

/// Below this many characters per page on average, a PDF is taken for a scan.
const SCAN_CHARS_PER_PAGE: usize = 16;
/// Bytes a page's content streams may inflate to while its text is read.
const MAX_PAGE_STREAM_BYTES: usize = 64 * 1024 * 1024;

pub(crate) fn extract(bytes: &[u8], limits: &Limits) -> Result<Extracted, Failure> {
    // Counted on the raw bytes, before lopdf builds an object for each.
    let objects = count(bytes, b" obj");
    if objects > limits.max_pdf_objects {
        return Err(Failure::TooLarge(format!(
            "the PDF has more than {} objects",
            limits.max_pdf_objects
        )));
    }
    let doc = lopdf::Document::load_mem(bytes)
        .map_err(|e| Failure::Malformed(format!("not a readable PDF ({e})")))?;
    if doc.is_encrypted() {
        return Err(Failure::Unsupported("the PDF is encrypted".into()));
    }
    let pages = doc.get_pages();
    if pages.len() > limits.max_pages {
        return Err(Failure::TooLarge(format!(
            "the PDF has more than {} pages",
            limits.max_pages
        )));
    }
    let mut text = String::new();
    for number in pages.keys() {
        if let Ok(page) = doc.extract_text_with_limit(&[*number], MAX_PAGE_STREAM_BYTES) {
            text.push_str(&page);
        }
        if text.len() > limits.max_text_chars.saturating_mul(4) {
            break;
        }
    }
    let page_count = pages.len();
    let scanned = text.trim().chars().count() < SCAN_CHARS_PER_PAGE * page_count.max(1);
    let page_images = if scanned {
        pages
            .values()
            .take(limits.max_page_images)
            .filter_map(|id| page_jpeg(&doc, *id, limits))
            .collect()
    } else {
        Vec::new()
    };
    Ok(Extracted {
        text: Some(bounded(text, limits.max_text_chars)),
        pages: u32::try_from(page_count).ok(),
        page_images,
        ..Extracted::default()
    })
}

/// A page's largest JPEG image (a scanner's output), resized for models.
fn page_jpeg(doc: &lopdf::Document, page: lopdf::ObjectId, limits: &Limits) -> Option<Encoded> {
    let images = doc.get_page_images(page).ok()?;
    let jpeg = images
        .iter()
        .filter(|i| {
            i.filters
                .as_ref()
                .is_some_and(|f| f.iter().any(|f| f == "DCTDecode"))
        })
        .max_by_key(|i| i.width.saturating_mul(i.height))?;
    crate::image::extract(jpeg.content, limits).ok()?.image
}

fn count(haystack: &[u8], needle: &[u8]) -> usize {
    haystack
        .windows(needle.len())
        .filter(|w| *w == needle)
        .count()
}
