//! HTML to readable text: the text of the body without scripts, styles and markup, a line per
//! block, entities decoded. Not a browser: a page's words in reading order, which is what a
//! model needs.

/// Elements whose content is never text to read.
const HIDDEN: &[&str] = &["script", "style", "noscript", "template", "svg"];
/// Elements that start a new line.
const BLOCKS: &[&str] = &[
    "p",
    "div",
    "br",
    "li",
    "ul",
    "ol",
    "tr",
    "table",
    "section",
    "article",
    "header",
    "footer",
    "h1",
    "h2",
    "h3",
    "h4",
    "h5",
    "h6",
    "pre",
    "blockquote",
    "hr",
    "title",
    "main",
    "nav",
    "dd",
    "dt",
    "figcaption",
];

pub fn to_text(html: &str) -> String {
    let mut out = String::with_capacity(html.len() / 2);
    let mut hidden: Option<String> = None;
    let mut rest = html;
    while let Some(open) = rest.find('<') {
        if hidden.is_none() {
            push_text(&mut out, &rest[..open]);
        }
        rest = &rest[open..];
        if rest.starts_with("<!--") {
            rest = rest.find("-->").map_or("", |end| &rest[end + 3..]);
            continue;
        }
        let Some(close) = rest.find('>') else { break };
        let tag = &rest[1..close];
        rest = &rest[close + 1..];
        let closing = tag.starts_with('/');
        let name: String = tag
            .trim_start_matches('/')
            .chars()
            .take_while(|c| c.is_ascii_alphanumeric())
            .collect::<String>()
            .to_ascii_lowercase();
        match &hidden {
            Some(inside) if closing && *inside == name => hidden = None,
            Some(_) => {}
            None if !closing && HIDDEN.contains(&name.as_str()) && !tag.ends_with('/') => {
                hidden = Some(name);
            }
            None if BLOCKS.contains(&name.as_str()) => new_line(&mut out),
            None => {}
        }
    }
    if hidden.is_none() {
        push_text(&mut out, rest);
    }
    out.trim().to_owned()
}

/// Appends text with runs of white space made one space.
fn push_text(out: &mut String, raw: &str) {
    for c in decode_entities(raw).chars() {
        if c.is_whitespace() {
            if !out.is_empty() && !out.ends_with([' ', '\n']) {
                out.push(' ');
            }
        } else {
            out.push(c);
        }
    }
}

fn new_line(out: &mut String) {
    while out.ends_with(' ') {
        out.pop();
    }
    if !out.is_empty() && !out.ends_with('\n') {
        out.push('\n');
    }
}

fn decode_entities(raw: &str) -> String {
    let mut out = String::with_capacity(raw.len());
    let mut rest = raw;
    while let Some(amp) = rest.find('&') {
        out.push_str(&rest[..amp]);
        rest = &rest[amp..];
        let end = rest[..rest.len().min(12)].find(';');
        let decoded = end.and_then(|end| entity(&rest[1..end]).map(|c| (c, end)));
        match decoded {
            Some((c, end)) => {
                out.push(c);
                rest = &rest[end + 1..];
            }
            None => {
                out.push('&');
                rest = &rest[1..];
            }
        }
    }
    out.push_str(rest);
    out
}

fn entity(name: &str) -> Option<char> {
    if let Some(number) = name.strip_prefix('#') {
        let code = match number.strip_prefix(['x', 'X']) {
            Some(hex) => u32::from_str_radix(hex, 16).ok()?,
            None => number.parse().ok()?,
        };
        return char::from_u32(code);
    }
    Some(match name {
        "amp" => '&',
        "lt" => '<',
        "gt" => '>',
        "quot" => '"',
        "apos" => '\'',
        "nbsp" => ' ',
        "mdash" => '—',
        "ndash" => '–',
        "hellip" => '…',
        "copy" => '©',
        _ => return None,
    })
}

#[cfg(test)]
mod tests {
    use super::to_text;

    #[test]
    fn a_page_becomes_its_words() {
        let page = "<html><head><title>T</title><style>p{}</style></head><body>\
            <h1>Hello &amp; welcome</h1><script>alert(1)</script>\
            <p>First   line.</p><!-- hidden --><p>Second&nbsp;&#8212; <b>bold</b>.</p></body></html>";
        assert_eq!(
            to_text(page),
            "T\nHello & welcome\nFirst line.\nSecond — bold."
        );
    }

    #[test]
    fn broken_markup_does_not_lose_the_text() {
        assert_eq!(to_text("a <b>b & c"), "a b & c");
        assert_eq!(to_text("x <unclosed"), "x <unclosed");
        assert_eq!(to_text("&#xZZ; &bogus;"), "&#xZZ; &bogus;");
    }
}
