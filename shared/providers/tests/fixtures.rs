//! Every real provider transcript in tests/fixtures/providers decodes to the expected events,
//! and the same bytes split anywhere decode to the same events.

// Test helpers outside #[test] functions may fail loudly too.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::path::PathBuf;

use bestchat_domain::message::FinishReason;
use bestchat_domain::provider::Protocol;
use bestchat_providers::protocol::{Decoder, decode_all, openai};
use bestchat_providers::sse::SseParser;
use bestchat_providers::{ErrorKind, StreamEvent, TokenUsage};
use proptest::prelude::*;

fn fixture(name: &str) -> Vec<u8> {
    let path = PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("../../tests/fixtures/providers")
        .join(name);
    std::fs::read(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()))
}

const STREAMS: &[(&str, Protocol)] = &[
    ("openai-llamacpp-text.sse", Protocol::OpenAi),
    ("openai-llamacpp-tool-call.sse", Protocol::OpenAi),
    ("openai-text-usage.sse", Protocol::OpenAi),
    ("openai-parallel-tool-calls.sse", Protocol::OpenAi),
    ("anthropic-text.sse", Protocol::Anthropic),
    ("anthropic-thinking-tool-use.sse", Protocol::Anthropic),
    ("anthropic-overloaded-midstream.sse", Protocol::Anthropic),
    ("gemini-text.sse", Protocol::Gemini),
    ("gemini-function-call.sse", Protocol::Gemini),
    (
        "openai-responses-reasoning-tool.sse",
        Protocol::OpenAiResponses,
    ),
];

#[derive(Debug, Default, PartialEq)]
struct Summary {
    text: String,
    reasoning: String,
    /// (index, id, name, arguments)
    calls: Vec<(u32, String, String, String)>,
    /// (index, signature)
    signatures: Vec<(u32, String)>,
    usage: Option<TokenUsage>,
    finish: Option<FinishReason>,
    error: Option<ErrorKind>,
}

/// Folds events into what a client would show, checking the stream's shape on the way: one
/// terminal event, last; calls started once, ended before the end.
fn summarize(events: &[StreamEvent]) -> Summary {
    let mut s = Summary::default();
    let mut open = std::collections::BTreeSet::new();
    for (i, event) in events.iter().enumerate() {
        assert!(
            !event.is_terminal() || i == events.len() - 1,
            "terminal event before the end: {events:?}"
        );
        match event {
            StreamEvent::TextDelta(t) => s.text.push_str(t),
            StreamEvent::ReasoningDelta(t) => s.reasoning.push_str(t),
            StreamEvent::ToolCallStart { index, id, name } => {
                assert!(open.insert(*index), "call {index} started twice");
                s.calls
                    .push((*index, id.clone(), name.clone(), String::new()));
            }
            StreamEvent::ToolCallDelta { index, arguments } => {
                assert!(
                    open.contains(index),
                    "arguments for a call that is not open"
                );
                let call = s.calls.iter_mut().find(|c| c.0 == *index).unwrap();
                call.3.push_str(arguments);
            }
            StreamEvent::ToolCallEnd { index } => assert!(open.remove(index)),
            StreamEvent::ToolCallSignature { index, signature } => {
                assert!(
                    open.contains(index),
                    "a signature for a call that is not open"
                );
                s.signatures.push((*index, signature.clone()));
            }
            StreamEvent::Usage(u) => s.usage = Some(*u),
            StreamEvent::Finish(f) => s.finish = Some(*f),
            StreamEvent::Error(e) => s.error = Some(e.kind),
        }
    }
    assert!(
        events.last().is_some_and(StreamEvent::is_terminal),
        "no terminal event"
    );
    if s.error.is_none() {
        assert!(open.is_empty(), "calls left open: {open:?}");
    }
    s
}

fn decoded(name: &str, protocol: Protocol) -> Summary {
    summarize(&decode_all(protocol, &fixture(name)))
}

fn usage(input: u32, output: u32, cached: u32) -> Option<TokenUsage> {
    Some(TokenUsage {
        input_tokens: input,
        output_tokens: output,
        cached_tokens: cached,
        reasoning_tokens: 0,
    })
}

#[test]
fn llamacpp_text_without_usage_finishes_on_length() {
    let s = decoded("openai-llamacpp-text.sse", Protocol::OpenAi);
    assert_eq!(
        s.text,
        "The most obvious color is blue, but there are many more. Some examples include:\n* Red (the most common"
    );
    assert_eq!(s.finish, Some(FinishReason::Length));
    assert_eq!(s.usage, None);
    assert_eq!(s.error, None);
}

#[test]
fn llamacpp_tool_call_repeating_id_and_name_starts_once() {
    let s = decoded("openai-llamacpp-tool-call.sse", Protocol::OpenAi);
    assert_eq!(
        s.calls,
        vec![(
            0,
            "call__0_get_weather_cmpl-80cbaa2b-ad20-4dfa-9fb4-40d6797aca92".into(),
            "get_weather".into(),
            r#"{ "city": "Paris" }"#.into()
        )]
    );
    assert_eq!(s.finish, Some(FinishReason::ToolCalls));
    assert_eq!(s.text, "");
}

#[test]
fn openai_usage_chunk_after_finish() {
    let s = decoded("openai-text-usage.sse", Protocol::OpenAi);
    assert_eq!(s.text, "Red, green, and blue.");
    assert_eq!(s.finish, Some(FinishReason::Stop));
    assert_eq!(s.usage, usage(19, 7, 0));
}

#[test]
fn openai_parallel_tool_calls_with_cached_tokens() {
    let s = decoded("openai-parallel-tool-calls.sse", Protocol::OpenAi);
    assert_eq!(
        s.calls,
        vec![
            (
                0,
                "call_Wx1".into(),
                "get_weather".into(),
                r#"{"city": "Paris"}"#.into()
            ),
            (
                1,
                "call_Yz2".into(),
                "get_time".into(),
                r#"{"tz": "Europe/Paris"}"#.into()
            ),
        ]
    );
    assert_eq!(s.finish, Some(FinishReason::ToolCalls));
    assert_eq!(s.usage, usage(82, 41, 64));
}

#[test]
fn anthropic_text_counts_cache_reads_as_input() {
    let s = decoded("anthropic-text.sse", Protocol::Anthropic);
    assert_eq!(s.text, "Red, green, and blue.");
    assert_eq!(s.finish, Some(FinishReason::Stop));
    assert_eq!(s.usage, usage(37, 9, 12));
}

#[test]
fn anthropic_thinking_then_tool_use() {
    let s = decoded("anthropic-thinking-tool-use.sse", Protocol::Anthropic);
    assert_eq!(s.reasoning, "The user wants the weather; call the tool.");
    assert_eq!(s.text, "Let me check the weather.");
    assert_eq!(
        s.calls,
        vec![(
            2,
            "toolu_01T1x1fJ34qAmk2tNTrN7Up6".into(),
            "get_weather".into(),
            r#"{"city": "San Francisco", "unit": "celsius"}"#.into()
        )]
    );
    assert_eq!(s.finish, Some(FinishReason::ToolCalls));
    assert_eq!(s.usage, usage(472, 89, 0));
}

#[test]
fn anthropic_overloaded_midstream_is_an_error_after_the_text() {
    let events = decode_all(
        Protocol::Anthropic,
        &fixture("anthropic-overloaded-midstream.sse"),
    );
    let s = summarize(&events);
    assert_eq!(s.text, "Red");
    assert_eq!(s.error, Some(ErrorKind::Overloaded));
    assert_eq!(s.finish, None);
}

#[test]
fn gemini_text_with_crlf_and_cumulative_usage() {
    let s = decoded("gemini-text.sse", Protocol::Gemini);
    assert_eq!(s.text, "Red, green, and blue.");
    assert_eq!(s.finish, Some(FinishReason::Stop));
    assert_eq!(s.usage, usage(8, 6, 0));
}

#[test]
fn gemini_function_call_arrives_whole() {
    let s = decoded("gemini-function-call.sse", Protocol::Gemini);
    assert_eq!(s.calls.len(), 1);
    let (_, id, name, args) = &s.calls[0];
    assert_eq!(name, "get_weather");
    assert!(!id.is_empty());
    assert_eq!(
        serde_json::from_str::<serde_json::Value>(args).unwrap(),
        serde_json::json!({"city": "Paris"})
    );
    assert_eq!(s.finish, Some(FinishReason::ToolCalls));
    assert_eq!(s.usage, usage(8, 12, 0));
    assert_eq!(
        s.signatures,
        [(0, "CiQB0e2Kb2j".to_owned())],
        "kept to send back"
    );
}

#[test]
fn responses_api_reasoning_text_and_function_call() {
    let s = decoded(
        "openai-responses-reasoning-tool.sse",
        Protocol::OpenAiResponses,
    );
    assert_eq!(s.reasoning, "The user wants the weather.");
    assert_eq!(s.text, "Checking the weather.");
    assert_eq!(
        s.calls,
        vec![(
            2,
            "call_abc".into(),
            "get_weather".into(),
            r#"{"city": "Paris"}"#.into()
        )]
    );
    assert_eq!(s.finish, Some(FinishReason::ToolCalls));
    assert_eq!(
        s.usage,
        Some(TokenUsage {
            input_tokens: 50,
            output_tokens: 30,
            cached_tokens: 10,
            reasoning_tokens: 12
        })
    );
}

#[test]
fn non_streaming_answer_to_a_streaming_request() {
    let s = summarize(&openai::decode_complete(&fixture(
        "openai-llamacpp-nonstream.json",
    )));
    assert_eq!(
        s.text,
        "Hello there! I'm here to help with any kind of math or science project"
    );
    assert_eq!(s.finish, Some(FinishReason::Length));
    assert_eq!(s.usage, usage(33, 16, 0));
}

#[test]
fn a_stream_cut_anywhere_before_its_end_is_incomplete() {
    for (name, protocol) in STREAMS {
        let body = fixture(name);
        let whole = decode_all(*protocol, &body);
        if matches!(whole.last(), Some(StreamEvent::Error(_))) {
            continue;
        }
        // Cut just before the terminal event's data line.
        let marker: &[u8] = match protocol {
            Protocol::OpenAi => b"data: [DONE]",
            Protocol::Anthropic => b"event: message_stop",
            Protocol::OpenAiResponses => b"event: response.completed",
            _ => b"\"finishReason\"",
        };
        let at = body
            .windows(marker.len())
            .rposition(|w| w == marker)
            .unwrap();
        let cut_at = body[..at].iter().rposition(|&b| b == b'\n').unwrap_or(0);
        let cut = decode_all(*protocol, &body[..cut_at]);
        let last = cut.last().unwrap();
        // OpenAI streams that already sent finish_reason are complete without [DONE].
        let openai_finished =
            *protocol == Protocol::OpenAi && !matches!(last, StreamEvent::Error(_));
        assert!(
            openai_finished
                || matches!(last, StreamEvent::Error(e) if e.kind == ErrorKind::Incomplete),
            "{name}: {last:?}"
        );
    }
    let cut = decode_all(
        Protocol::OpenAi,
        b"data: {\"choices\":[{\"delta\":{\"content\":\"Hi\"}}]}\n\n",
    );
    assert!(matches!(cut.last(), Some(StreamEvent::Error(e)) if e.kind == ErrorKind::Incomplete));
}

#[test]
fn malformed_json_is_a_protocol_error() {
    for protocol in [
        Protocol::OpenAi,
        Protocol::Anthropic,
        Protocol::Gemini,
        Protocol::OpenAiResponses,
    ] {
        let events = decode_all(protocol, b"data: {not json\n\n");
        assert!(
            matches!(events.last(), Some(StreamEvent::Error(e)) if e.kind == ErrorKind::Protocol),
            "{protocol:?}: {events:?}"
        );
    }
}

/// Decodes `body` fed in the given pieces.
fn decode_split(protocol: Protocol, body: &[u8], cuts: &[usize]) -> Vec<StreamEvent> {
    let mut decoder = Decoder::for_protocol(protocol).unwrap();
    let mut parser = SseParser::default();
    let mut events = Vec::new();
    let mut out = Vec::new();
    let mut start = 0;
    for &cut in cuts.iter().chain(std::iter::once(&body.len())) {
        parser.push(&body[start..cut], &mut events).unwrap();
        for e in events.drain(..) {
            decoder.on_event(&e, &mut out);
        }
        start = cut;
    }
    parser.finish(&mut events).unwrap();
    for e in events.drain(..) {
        decoder.on_event(&e, &mut out);
    }
    decoder.on_end(&mut out);
    out
}

#[test]
fn every_single_split_point_gives_the_same_events() {
    for (name, protocol) in STREAMS {
        let body = fixture(name);
        let whole = decode_all(*protocol, &body);
        for at in 0..=body.len() {
            assert_eq!(
                decode_split(*protocol, &body, &[at]),
                whole,
                "{name} split at {at}"
            );
        }
    }
}

proptest! {
    #[test]
    fn any_splits_give_the_same_events(
        which in 0..STREAMS.len(),
        fractions in proptest::collection::vec(0.0f64..1.0, 0..40),
    ) {
        let (name, protocol) = STREAMS[which];
        let body = fixture(name);
        let mut cuts: Vec<usize> = fractions.iter().map(|f| (f * body.len() as f64) as usize).collect();
        cuts.sort_unstable();
        prop_assert_eq!(decode_split(protocol, &body, &cuts), decode_all(protocol, &body));
    }
}
