//! Text as it is (prose, Markdown, code, CSV) and web pages as the text a reader sees.

use crate::{Extracted, Failure, Limits, bounded};

/// Width HTML is laid out to as text; wide enough that tables keep their rows.
const HTML_WIDTH: usize = 120;
/// Nesting a page may have: deeper documents are refused before the renderer recurses into
/// them.
const MAX_HTML_DEPTH: usize = 512;

pub(crate) fn plain(bytes: &[u8], limits: &Limits) -> Result<Extracted, Failure> {
    let text = String::from_utf8_lossy(bytes);
    let text = text.strip_prefix('\u{feff}').unwrap_or(&text).to_owned();
    Ok(Extracted {
        text: Some(bounded(text, limits.max_text_chars)),
        ..Extracted::default()
    })
}

pub(crate) fn html(bytes: &[u8], limits: &Limits) -> Result<Extracted, Failure> {
    if nesting(bytes) > MAX_HTML_DEPTH {
        return Err(Failure::Malformed(format!(
            "the page nests deeper than {MAX_HTML_DEPTH} elements"
        )));
    }
    let text = html2text::config::plain()
        .string_from_read(bytes, HTML_WIDTH)
        .map_err(|e| Failure::Malformed(e.to_string()))?;
    Ok(Extracted {
        text: Some(bounded(text, limits.max_text_chars)),
        ..Extracted::default()
    })
}

/// Elements that never have content, so never close.
const VOID: &[&[u8]] = &[
    b"area", b"base", b"br", b"col", b"embed", b"hr", b"img", b"input", b"link", b"meta", b"param",
    b"source", b"track", b"wbr",
];

/// An upper bound of how deep tags nest: opening tags (void elements aside) counted against
/// closing ones; `<div/>` closes nothing in HTML, so a self-closing mark is not counted.
fn nesting(bytes: &[u8]) -> usize {
    let (mut depth, mut deepest) = (0usize, 0usize);
    let mut i = 0;
    while i + 1 < bytes.len() {
        if bytes[i] != b'<' {
            i += 1;
            continue;
        }
        let closing = bytes[i + 1] == b'/';
        let start = i + 1 + usize::from(closing);
        let end = bytes[start..]
            .iter()
            .position(|b| !b.is_ascii_alphanumeric())
            .map_or(bytes.len(), |n| start + n);
        let name = bytes[start..end].to_ascii_lowercase();
        if !name.is_empty() && name[0].is_ascii_alphabetic() && !VOID.contains(&name.as_slice()) {
            if closing {
                depth = depth.saturating_sub(1);
            } else {
                depth += 1;
                deepest = deepest.max(depth);
            }
        }
        i = end.max(i + 1);
    }
    deepest
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_page_becomes_the_text_a_reader_sees() {
        let page = b"<html><head><script>alert(1)</script></head><body><h1>Plan</h1><p>Ship on <b>Friday</b>.</p></body></html>";
        let text = html(page, &Limits::default()).unwrap().text.unwrap();
        // Markdown-like marks stay: models read them as structure.
        assert!(
            text.contains("# Plan") && text.contains("Ship on **Friday**."),
            "{text}"
        );
        assert!(!text.contains("alert"), "{text}");
    }

    #[test]
    fn deep_nesting_is_refused_before_rendering() {
        let page = "<div>".repeat(100_000);
        assert!(matches!(
            html(page.as_bytes(), &Limits::default()),
            Err(Failure::Malformed(_))
        ));
        // A self-closing mark closes nothing in HTML: it does not hide the depth.
        let page = format!("<table><tr><td>{}", "<div/>".repeat(100_000));
        assert!(matches!(
            html(page.as_bytes(), &Limits::default()),
            Err(Failure::Malformed(_))
        ));
        // Ordinary pages pass.
        let ordinary = format!("<p>{}</p>", "line<br>".repeat(5_000));
        assert!(html(ordinary.as_bytes(), &Limits::default()).is_ok());
    }

    #[test]
    fn long_text_is_cut_with_a_note() {
        let limits = Limits {
            max_text_chars: 5,
            ..Limits::default()
        };
        let text = plain("\u{feff}héllo world".as_bytes(), &limits)
            .unwrap()
            .text
            .unwrap();
        assert!(text.starts_with("héllo\n[…"), "{text}");
    }
}
