//! Server-sent events, incrementally: bytes may be split anywhere (mid-line, mid-character),
//! lines end in LF, CRLF or CR, comments are skipped, multi-line `data:` is joined with LF and
//! `event:` names are kept.

/// Largest event (its data lines together, or one unfinished line) the parser holds.
pub const SSE_MAX_EVENT_BYTES: usize = 16 * 1024 * 1024;

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SseEvent {
    pub event: Option<String>,
    pub data: String,
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("an SSE event exceeds {limit} bytes")]
pub struct SseTooLarge {
    pub limit: usize,
}

#[derive(Debug)]
pub struct SseParser {
    /// Bytes of the line not yet terminated.
    line: Vec<u8>,
    /// The previous chunk ended in CR: an LF starting this one belongs to it.
    after_cr: bool,
    event: Option<String>,
    data: String,
    has_data: bool,
    limit: usize,
}

impl Default for SseParser {
    fn default() -> Self {
        Self::new(SSE_MAX_EVENT_BYTES)
    }
}

impl SseParser {
    pub fn new(limit: usize) -> Self {
        Self {
            line: Vec::new(),
            after_cr: false,
            event: None,
            data: String::new(),
            has_data: false,
            limit,
        }
    }

    /// Feeds bytes; complete events are appended to `out`.
    pub fn push(&mut self, mut bytes: &[u8], out: &mut Vec<SseEvent>) -> Result<(), SseTooLarge> {
        // An empty chunk says nothing, not even whether an LF follows a CR that ended the last.
        if bytes.is_empty() {
            return Ok(());
        }
        if self.after_cr {
            self.after_cr = false;
            if let Some(rest) = bytes.strip_prefix(b"\n") {
                bytes = rest;
            }
        }
        while let Some(end) = bytes.iter().position(|&b| b == b'\n' || b == b'\r') {
            self.line.extend_from_slice(&bytes[..end]);
            self.take_line(out)?;
            let terminator = bytes[end];
            bytes = &bytes[end + 1..];
            if terminator == b'\r' {
                match bytes.first() {
                    Some(b'\n') => bytes = &bytes[1..],
                    Some(_) => {}
                    None => self.after_cr = true,
                }
            }
        }
        self.line.extend_from_slice(bytes);
        if self.line.len() > self.limit {
            return Err(SseTooLarge { limit: self.limit });
        }
        Ok(())
    }

    /// The body ended. An unterminated last line is processed and a pending event is
    /// dispatched: some servers omit the final blank line.
    pub fn finish(&mut self, out: &mut Vec<SseEvent>) -> Result<(), SseTooLarge> {
        if !self.line.is_empty() {
            self.take_line(out)?;
        }
        self.dispatch(out);
        Ok(())
    }

    fn take_line(&mut self, out: &mut Vec<SseEvent>) -> Result<(), SseTooLarge> {
        let raw = std::mem::take(&mut self.line);
        // Whatever the line is (a comment, an event name), none may exceed the limit: the
        // answer must not depend on where the bytes happened to be split.
        if raw.len() > self.limit {
            return Err(SseTooLarge { limit: self.limit });
        }
        let line = String::from_utf8_lossy(&raw);
        if line.is_empty() {
            self.dispatch(out);
            return Ok(());
        }
        if line.starts_with(':') {
            return Ok(());
        }
        let (field, value) = match line.split_once(':') {
            Some((f, v)) => (f, v.strip_prefix(' ').unwrap_or(v)),
            None => (line.as_ref(), ""),
        };
        match field {
            "data" => {
                if self.has_data {
                    self.data.push('\n');
                }
                self.data.push_str(value);
                self.has_data = true;
                if self.data.len() > self.limit {
                    return Err(SseTooLarge { limit: self.limit });
                }
            }
            "event" => self.event = Some(value.to_owned()),
            _ => {}
        }
        Ok(())
    }

    fn dispatch(&mut self, out: &mut Vec<SseEvent>) {
        if self.has_data {
            out.push(SseEvent {
                event: self.event.take(),
                data: std::mem::take(&mut self.data),
            });
        }
        self.event = None;
        self.has_data = false;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(chunks: &[&[u8]]) -> Vec<SseEvent> {
        let mut p = SseParser::default();
        let mut out = Vec::new();
        for c in chunks {
            p.push(c, &mut out).unwrap();
        }
        p.finish(&mut out).unwrap();
        out
    }

    fn ev(event: Option<&str>, data: &str) -> SseEvent {
        SseEvent {
            event: event.map(str::to_owned),
            data: data.to_owned(),
        }
    }

    #[test]
    fn fields_comments_and_multiline_data() {
        let out = parse(&[
            b": keep-alive\nevent: ping\ndata: a\ndata:b\nid: 7\nretry: 10\n\ndata: [DONE]\n\n",
        ]);
        assert_eq!(out, vec![ev(Some("ping"), "a\nb"), ev(None, "[DONE]")]);
    }

    #[test]
    fn line_endings_and_splits() {
        let text = "data: one\r\n\r\ndata: two\r\rdata: three\n\n";
        let whole = parse(&[text.as_bytes()]);
        assert_eq!(
            whole,
            vec![ev(None, "one"), ev(None, "two"), ev(None, "three")]
        );
        for i in 0..text.len() {
            let (a, b) = text.as_bytes().split_at(i);
            assert_eq!(parse(&[a, b]), whole, "split at {i}");
        }
    }

    #[test]
    fn an_empty_chunk_between_cr_and_lf_changes_nothing() {
        let mut p = SseParser::default();
        let mut out = Vec::new();
        p.push(b"data: a\r", &mut out).unwrap();
        p.push(b"", &mut out).unwrap();
        p.push(b"\n\r\n", &mut out).unwrap();
        assert_eq!(out.len(), 1);
        assert_eq!(out[0].data, "a");
    }

    #[test]
    fn utf8_split_inside_a_character() {
        let text = "data: héllo €\n\n".as_bytes();
        for i in 0..text.len() {
            let (a, b) = text.split_at(i);
            assert_eq!(parse(&[a, b]), vec![ev(None, "héllo €")]);
        }
    }

    #[test]
    fn events_without_data_are_not_dispatched_and_tail_is_flushed() {
        assert_eq!(parse(&[b"event: x\n\ndata: tail"]), vec![ev(None, "tail")]);
    }

    #[test]
    fn oversized_events_are_refused() {
        let mut p = SseParser::new(8);
        let mut out = Vec::new();
        assert!(p.push(b"data: 0123456789", &mut out).is_err());
    }
}
