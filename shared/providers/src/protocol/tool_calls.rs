//! Tool-call assembly shared by the decoders: a call starts once per index (servers that repeat
//! the id and name in every chunk do not start it twice), arguments append, and every open call
//! is ended before the stream finishes.

use std::collections::BTreeMap;

use crate::types::StreamEvent;

#[derive(Debug, Default)]
pub struct ToolCalls {
    open: BTreeMap<u32, ()>,
    started: u32,
}

impl ToolCalls {
    /// Starts the call at `index` unless it is already open; an id the server did not give is
    /// made up so results can be matched to calls.
    pub fn start(&mut self, index: u32, id: Option<&str>, name: &str, out: &mut Vec<StreamEvent>) {
        if self.open.contains_key(&index) {
            return;
        }
        self.open.insert(index, ());
        self.started += 1;
        let id = match id.filter(|s| !s.is_empty()) {
            Some(id) => id.to_owned(),
            None => format!("call_{index}"),
        };
        out.push(StreamEvent::ToolCallStart {
            index,
            id,
            name: name.to_owned(),
        });
    }

    pub fn is_open(&self, index: u32) -> bool {
        self.open.contains_key(&index)
    }

    pub fn arguments(&mut self, index: u32, fragment: &str, out: &mut Vec<StreamEvent>) {
        if !fragment.is_empty() && self.open.contains_key(&index) {
            out.push(StreamEvent::ToolCallDelta {
                index,
                arguments: fragment.to_owned(),
            });
        }
    }

    pub fn end(&mut self, index: u32, out: &mut Vec<StreamEvent>) {
        if self.open.remove(&index).is_some() {
            out.push(StreamEvent::ToolCallEnd { index });
        }
    }

    pub fn end_all(&mut self, out: &mut Vec<StreamEvent>) {
        for index in std::mem::take(&mut self.open).into_keys() {
            out.push(StreamEvent::ToolCallEnd { index });
        }
    }

    /// Calls started so far, open or ended.
    pub fn any(&self) -> bool {
        self.started > 0
    }
}
