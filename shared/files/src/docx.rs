//! Word documents: the text of `word/document.xml`, paragraph by paragraph.

use quick_xml::events::Event;

use crate::{Extracted, Failure, Limits, bounded, zipped};

pub(crate) fn extract(bytes: &[u8], limits: &Limits) -> Result<Extracted, Failure> {
    let mut archive = zipped::open(bytes, limits)?;
    let xml = zipped::part(&mut archive, "word/document.xml")?
        .ok_or_else(|| Failure::Malformed("a Word document without its body".into()))?;
    let pages = zipped::part(&mut archive, "docProps/app.xml")?
        .and_then(|app| element_text(&app, "Pages"))
        .and_then(|p| p.trim().parse().ok());
    Ok(Extracted {
        text: Some(bounded(body_text(&xml)?, limits.max_text_chars)),
        pages,
        ..Extracted::default()
    })
}

fn body_text(xml: &[u8]) -> Result<String, Failure> {
    let xml = String::from_utf8_lossy(xml);
    let mut reader = quick_xml::Reader::from_str(&xml);
    let (mut out, mut in_text) = (String::new(), false);
    loop {
        match reader.read_event() {
            Ok(Event::Start(e)) if e.local_name().as_ref() == "t" => in_text = true,
            Ok(Event::End(e)) => match e.local_name().as_ref() {
                "t" => in_text = false,
                "p" => out.push('\n'),
                _ => {}
            },
            Ok(Event::Empty(e)) => match e.local_name().as_ref() {
                "tab" => out.push('\t'),
                "br" | "cr" => out.push('\n'),
                _ => {}
            },
            Ok(Event::Text(t)) if in_text => out.push_str(&t.xml10_content()),
            Ok(Event::GeneralRef(r)) if in_text => {
                if let Ok(Some(c)) = r.resolve_char_ref() {
                    out.push(c);
                } else {
                    out.push_str(match r.as_ref() {
                        "amp" => "&",
                        "lt" => "<",
                        "gt" => ">",
                        "quot" => "\"",
                        "apos" => "'",
                        _ => "",
                    });
                }
            }
            Ok(Event::Eof) => break,
            Err(e) => return Err(Failure::Malformed(format!("the document's XML: {e}"))),
            _ => {}
        }
    }
    Ok(out)
}

fn element_text(xml: &[u8], name: &str) -> Option<String> {
    let xml = String::from_utf8_lossy(xml);
    let mut reader = quick_xml::Reader::from_str(&xml);
    let mut inside = false;
    loop {
        match reader.read_event().ok()? {
            Event::Start(e) if e.local_name().as_ref() == name => inside = true,
            Event::Text(t) if inside => return Some(t.xml10_content().into_owned()),
            Event::Eof => return None,
            _ => {}
        }
    }
}
