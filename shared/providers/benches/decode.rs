// A benchmark may stop loudly on a broken setup.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

//! Parse-and-normalize throughput on the real provider transcripts, and the time the adapter
//! layer adds per chunk (SSE parsing + JSON decoding + normalization of one network chunk).
//!
//! cargo bench -p bestchat-providers --bench decode

use std::hint::black_box;
use std::path::PathBuf;
use std::time::Instant;

use bestchat_domain::provider::Protocol;
use bestchat_providers::protocol::{Decoder, decode_all};
use bestchat_providers::sse::SseParser;
use criterion::{Criterion, Throughput, criterion_group, criterion_main};

const FIXTURES: &[(&str, Protocol)] = &[
    ("openai-llamacpp-text.sse", Protocol::OpenAi),
    ("openai-parallel-tool-calls.sse", Protocol::OpenAi),
    ("anthropic-thinking-tool-use.sse", Protocol::Anthropic),
    ("gemini-text.sse", Protocol::Gemini),
    (
        "openai-responses-reasoning-tool.sse",
        Protocol::OpenAiResponses,
    ),
];

fn fixture(name: &str) -> Vec<u8> {
    let path = PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("../../tests/fixtures/providers")
        .join(name);
    std::fs::read(path).unwrap_or_default()
}

/// The transcript cut into the pieces a network would deliver: one SSE event each.
fn chunks(body: &[u8]) -> Vec<&[u8]> {
    let mut out = Vec::new();
    let (mut start, mut i) = (0, 0);
    while i < body.len() {
        let end = if body[i..].starts_with(b"\r\n\r\n") {
            Some(i + 4)
        } else if body[i..].starts_with(b"\n\n") {
            Some(i + 2)
        } else {
            None
        };
        match end {
            Some(end) => {
                out.push(&body[start..end]);
                start = end;
                i = end;
            }
            None => i += 1,
        }
    }
    if start < body.len() {
        out.push(&body[start..]);
    }
    out
}

fn whole_transcripts(c: &mut Criterion) {
    let mut group = c.benchmark_group("decode_transcript");
    for (name, protocol) in FIXTURES {
        let body = fixture(name);
        group.throughput(Throughput::Bytes(body.len() as u64));
        group.bench_function(*name, |b| {
            b.iter(|| decode_all(*protocol, black_box(&body)))
        });
    }
    group.finish();
}

fn per_chunk(c: &mut Criterion) {
    let mut group = c.benchmark_group("decode_chunk");
    for (name, protocol) in FIXTURES {
        let body = fixture(name);
        let pieces = chunks(&body);
        group.throughput(Throughput::Elements(pieces.len() as u64));
        group.bench_function(*name, |b| {
            b.iter(|| {
                let mut parser = SseParser::default();
                let mut decoder = Decoder::for_protocol(*protocol);
                let (mut events, mut out) = (Vec::new(), Vec::new());
                for piece in &pieces {
                    let _ = parser.push(black_box(piece), &mut events);
                    if let Some(d) = decoder.as_mut() {
                        for e in events.drain(..) {
                            d.on_event(&e, &mut out);
                        }
                    }
                }
                out
            })
        });
    }
    group.finish();
}

/// Criterion reports means; the per-chunk target is on the tail, so time every chunk.
fn chunk_latency_distribution(_: &mut Criterion) {
    for (name, protocol) in FIXTURES {
        let body = fixture(name);
        let pieces = chunks(&body);
        let mut samples = Vec::new();
        for _ in 0..2_000 {
            let mut parser = SseParser::default();
            let Some(mut decoder) = Decoder::for_protocol(*protocol) else {
                return;
            };
            let (mut events, mut out) = (Vec::new(), Vec::new());
            for piece in &pieces {
                let started = Instant::now();
                let _ = parser.push(black_box(piece), &mut events);
                for e in events.drain(..) {
                    decoder.on_event(&e, &mut out);
                }
                samples.push(started.elapsed());
                out.clear();
            }
        }
        samples.sort();
        let at =
            |q: f64| samples[((samples.len() - 1) as f64 * q) as usize].as_nanos() as f64 / 1000.0;
        eprintln!(
            "per-chunk {name}: {} chunks timed, p50 {:.2} us, p99 {:.2} us, max {:.2} us",
            samples.len(),
            at(0.5),
            at(0.99),
            at(1.0)
        );
    }
}

criterion_group!(
    benches,
    whole_transcripts,
    per_chunk,
    chunk_latency_distribution
);
criterion_main!(benches);
