//! What the bytes are. Only the bytes decide whether a file is accepted and what it is: a name
//! or a declared type is used only to tell kinds of text apart (code from prose).

/// The formats accepted.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Format {
    Pdf,
    Docx,
    Xlsx,
    Csv,
    Html,
    Markdown,
    Code,
    PlainText,
    Png,
    Jpeg,
    Gif,
    Webp,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Sniffed {
    pub format: Format,
    pub content_type: &'static str,
}

const DOCX: &str = "application/vnd.openxmlformats-officedocument.wordprocessingml.document";
const XLSX: &str = "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet";

/// Sniffs the file's first bytes (`head`); `None` when it is not a format accepted.
pub fn sniff(head: &[u8], name: &str) -> Option<Sniffed> {
    let found = |format, content_type| {
        Some(Sniffed {
            format,
            content_type,
        })
    };
    // Text formats infer knows (HTML, XML, shell scripts) are told apart below, as all text is.
    if let Some(kind) = infer::get(head).filter(|k| k.matcher_type() != infer::MatcherType::Text) {
        return match kind.mime_type() {
            "application/pdf" => found(Format::Pdf, "application/pdf"),
            "image/png" => found(Format::Png, "image/png"),
            "image/jpeg" => found(Format::Jpeg, "image/jpeg"),
            "image/gif" => found(Format::Gif, "image/gif"),
            "image/webp" => found(Format::Webp, "image/webp"),
            // An Office file is a zip: which one is told by the parts it names first.
            "application/zip" | DOCX | XLSX => office(head),
            _ => None,
        };
    }
    if !is_text(head) {
        return None;
    }
    let lower = name.to_ascii_lowercase();
    let extension = lower.rsplit_once('.').map_or("", |(_, e)| e);
    if looks_like_html(head) || matches!(extension, "html" | "htm") {
        return found(Format::Html, "text/html");
    }
    match extension {
        "csv" => found(Format::Csv, "text/csv"),
        "tsv" => found(Format::Csv, "text/tab-separated-values"),
        "md" | "markdown" => found(Format::Markdown, "text/markdown"),
        e if CODE.contains(&e) => found(Format::Code, "text/plain"),
        _ => found(Format::PlainText, "text/plain"),
    }
}

const CODE: &[&str] = &[
    "rs",
    "py",
    "js",
    "mjs",
    "ts",
    "tsx",
    "jsx",
    "go",
    "java",
    "kt",
    "c",
    "h",
    "cc",
    "cpp",
    "hpp",
    "cs",
    "rb",
    "php",
    "swift",
    "scala",
    "sh",
    "bash",
    "zsh",
    "ps1",
    "sql",
    "json",
    "yaml",
    "yml",
    "toml",
    "xml",
    "css",
    "scss",
    "lua",
    "r",
    "jl",
    "hs",
    "ex",
    "exs",
    "erl",
    "clj",
    "dart",
    "vue",
    "svelte",
    "proto",
    "graphql",
    "tf",
    "ini",
    "cfg",
    "dockerfile",
    "makefile",
];

fn office(head: &[u8]) -> Option<Sniffed> {
    let names = |needle: &[u8]| head.windows(needle.len()).any(|w| w == needle);
    if names(b"word/") {
        Some(Sniffed {
            format: Format::Docx,
            content_type: DOCX,
        })
    } else if names(b"xl/") {
        Some(Sniffed {
            format: Format::Xlsx,
            content_type: XLSX,
        })
    } else {
        None
    }
}

/// UTF-8 without NUL (a character cut at the end of the head is fine).
fn is_text(head: &[u8]) -> bool {
    if head.contains(&0) {
        return false;
    }
    match std::str::from_utf8(head) {
        Ok(_) => true,
        Err(e) => e.error_len().is_none() && head.len() - e.valid_up_to() < 4,
    }
}

fn looks_like_html(head: &[u8]) -> bool {
    let start: Vec<u8> = head
        .iter()
        .skip_while(|b| b.is_ascii_whitespace() || **b == 0xEF || **b == 0xBB || **b == 0xBF)
        .take(15)
        .map(u8::to_ascii_lowercase)
        .collect();
    start.starts_with(b"<!doctype html") || start.starts_with(b"<html")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_bytes_decide_not_the_name() {
        let elf = b"\x7fELF\x02\x01\x01\x00\x00\x00\x00\x00\x00\x00\x00\x00\x02\x00\x3e\x00";
        assert_eq!(sniff(elf, "report.pdf"), None);
        assert_eq!(sniff(b"MZ\x90\x00\x03\x00\x00\x00\x04\x00", "x.pdf"), None);
        assert_eq!(sniff(b"%PDF-1.7\n", "x.txt").unwrap().format, Format::Pdf);
        assert_eq!(
            sniff(b"\x89PNG\r\n\x1a\n\0\0\0\rIHDR", "a.pdf")
                .unwrap()
                .format,
            Format::Png
        );
        assert_eq!(
            sniff(b"fn main() {}\n", "main.rs").unwrap().format,
            Format::Code
        );
        assert_eq!(sniff(b"a,b\n1,2\n", "t.csv").unwrap().format, Format::Csv);
        assert_eq!(
            sniff(b"<!DOCTYPE html><p>x", "x.txt").unwrap().format,
            Format::Html
        );
        assert_eq!(
            sniff(b"# Title\n", "r.md").unwrap().format,
            Format::Markdown
        );
        assert_eq!(
            sniff("héllo".as_bytes(), "n").unwrap().format,
            Format::PlainText
        );
        // Binary that is not a known format.
        assert_eq!(sniff(b"\x00\x01\x02\x03", "a.txt"), None);
        assert_eq!(sniff(b"\xff\xfe\xfd garbage", "a.txt"), None);
        // A zip that is not an Office document.
        assert_eq!(
            sniff(b"PK\x03\x04\x14\x00\x00\x00\x08\x00readme.txt", "a.docx"),
            None
        );
    }

    #[test]
    fn a_character_cut_by_the_head_is_still_text() {
        let text = "ab€".as_bytes();
        assert!(is_text(&text[..text.len() - 1]));
    }
}
