//! Which files each wire format takes whole, and up to what size: what it does not take goes
//! as extracted text. The sizes are the providers' documented limits on inline data, with
//! room for base64 (a third larger) and the rest of the request.

use bestchat_domain::provider::Protocol;

const MB: u64 = 1024 * 1024;

/// Formats Bedrock Converse reads as document blocks, by media type, and its name for each.
const BEDROCK_DOCUMENTS: &[(&str, &str)] = &[
    ("application/pdf", "pdf"),
    (
        "application/vnd.openxmlformats-officedocument.wordprocessingml.document",
        "docx",
    ),
    (
        "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet",
        "xlsx",
    ),
    ("text/csv", "csv"),
    ("text/html", "html"),
    ("text/markdown", "md"),
    ("text/plain", "txt"),
];

/// The largest document of `media_type` the format takes inline, or `None` when it takes none
/// (the model then gets the document's text).
pub fn document_limit(protocol: Protocol, media_type: &str) -> Option<u64> {
    match protocol {
        // Claude reads a PDF's text and its pages as images: 32 MB a request, 100 pages.
        Protocol::Anthropic if media_type == "application/pdf" => Some(20 * MB),
        // Gemini's inline data: 20 MB a request.
        Protocol::Gemini if media_type == "application/pdf" => Some(14 * MB),
        // Converse: 4.5 MB a document.
        Protocol::Bedrock if bedrock_document_format(media_type).is_some() => Some(4 * MB + MB / 2),
        _ => None,
    }
}

/// Bytes of files one request may carry inline, all together (the documented request limits,
/// less base64's third and room for the rest); past it, documents go as text.
pub fn request_limit(protocol: Protocol) -> u64 {
    match protocol {
        Protocol::Anthropic => 22 * MB,
        Protocol::Gemini => 14 * MB,
        Protocol::Bedrock => 15 * MB,
        _ => 14 * MB,
    }
}

/// Pages of a PDF the format reads whole (Claude: 100); longer ones go as text.
pub fn document_page_limit(protocol: Protocol) -> u32 {
    match protocol {
        Protocol::Anthropic => 100,
        _ => 1_000,
    }
}

/// The largest image the format takes inline (ours are resized and re-encoded well below).
pub fn image_limit(protocol: Protocol) -> u64 {
    match protocol {
        Protocol::Bedrock => 3 * MB + 3 * MB / 4,
        Protocol::Anthropic => 5 * MB,
        _ => 15 * MB,
    }
}

/// Converse's document format name for a media type.
pub fn bedrock_document_format(media_type: &str) -> Option<&'static str> {
    BEDROCK_DOCUMENTS
        .iter()
        .find(|(t, _)| *t == media_type)
        .map(|(_, f)| *f)
}

/// A document name as Converse accepts it: letters, digits, single spaces, hyphens,
/// parentheses and square brackets.
pub fn bedrock_document_name(name: &str, index: usize) -> String {
    let stem = name.rsplit_once('.').map_or(name, |(stem, _)| stem);
    let mut out = String::new();
    for c in stem.chars() {
        let c = if c.is_ascii_alphanumeric() || "-()[]".contains(c) {
            c
        } else {
            ' '
        };
        if !(c == ' ' && out.ends_with(' ')) {
            out.push(c);
        }
    }
    let out = out.trim();
    // Names must differ within a request.
    format!("{} {index}", if out.is_empty() { "document" } else { out })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn each_format_takes_what_its_provider_documents() {
        assert!(document_limit(Protocol::Anthropic, "application/pdf").is_some());
        assert!(document_limit(Protocol::Anthropic, "text/csv").is_none());
        assert!(document_limit(Protocol::Gemini, "application/pdf").is_some());
        assert!(document_limit(Protocol::OpenAi, "application/pdf").is_none());
        assert!(document_limit(Protocol::OpenAiResponses, "application/pdf").is_none());
        assert!(document_limit(Protocol::Bedrock, "text/csv").is_some());
        assert!(document_limit(Protocol::Bedrock, "image/png").is_none());
    }

    #[test]
    fn bedrock_names_are_made_acceptable() {
        assert_eq!(
            bedrock_document_name("Q3 report (final)!!.pdf", 0),
            "Q3 report (final) 0"
        );
        assert_eq!(bedrock_document_name("..pdf", 1), "document 1");
    }
}
