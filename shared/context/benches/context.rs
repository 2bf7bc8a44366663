//! Planning cost, token counting throughput and encoder load time.
//! `cargo bench -p bestchat-context --bench context`

use std::hint::black_box;

use bestchat_context::tokens::{Encoding, estimate};
use bestchat_context::{ContextSettings, Entry, Limits, PlanInput, SummaryRef, plan};
use bestchat_domain::ids::MessageId;
use bestchat_domain::message::Role;
use criterion::{Criterion, Throughput, criterion_group, criterion_main};

/// A paragraph of prose and a fenced code block, about 1 KB: the kind of text chats carry.
fn sample_text() -> String {
    let prose = "Long conversations need careful handling: a model only sees what fits in its \
                 window, so older turns are summarized, repeated tool output is removed, and the \
                 oldest turns are dropped when nothing else helps. ";
    let code = "```rust\nfn total(xs: &[u64]) -> u64 {\n    xs.iter().copied().sum()\n}\n```\n";
    format!("{prose}{prose}{code}{prose}")
}

/// 5,000 messages of 200 tokens each: 1,000,000 tokens, every message distinct.
fn history(text: &str) -> Vec<(MessageId, Role, String)> {
    (0..5_000)
        .map(|i| {
            let role = if i % 2 == 0 {
                Role::User
            } else {
                Role::Assistant
            };
            (MessageId::generate(), role, format!("message {i}: {text}"))
        })
        .collect()
}

fn planning(c: &mut Criterion) {
    let text = sample_text();
    let history = history(&text);
    let entries: Vec<Entry<'_>> = history
        .iter()
        .map(|(id, role, content)| Entry {
            id: *id,
            role: *role,
            content,
            tokens: 200,
        })
        .collect();
    let settings = ContextSettings::default();
    let limits = Limits {
        window: 200_000,
        reserved_output: 8_192,
    };
    let mut group = c.benchmark_group("plan_5000_messages_1m_tokens");
    group.bench_function("truncate_to_200k", |b| {
        b.iter(|| {
            let input = PlanInput {
                system_tokens: 500,
                entries: &entries,
                summary: None,
                limits,
                settings: &settings,
            };
            black_box(plan(&input, &estimate))
        })
    });
    let summary = SummaryRef {
        through: entries[3_999].id,
        tokens: 2_000,
    };
    group.bench_function("with_summary_to_200k", |b| {
        b.iter(|| {
            let input = PlanInput {
                system_tokens: 500,
                entries: &entries,
                summary: Some(summary),
                limits,
                settings: &settings,
            };
            black_box(plan(&input, &estimate))
        })
    });
    group.finish();
}

fn counting(c: &mut Criterion) {
    let text = sample_text().repeat(100);
    let mut group = c.benchmark_group("count_100kb");
    group.throughput(Throughput::Bytes(text.len() as u64));
    for encoding in [Encoding::O200kBase, Encoding::Cl100kBase] {
        encoding.load();
        group.bench_function(format!("{encoding:?}"), |b| {
            b.iter(|| black_box(encoding.count(&text)))
        });
    }
    group.bench_function("estimate", |b| b.iter(|| black_box(estimate(&text))));
    group.finish();
}

fn loading(c: &mut Criterion) {
    let mut group = c.benchmark_group("encoder_load");
    group.sample_size(10);
    group.bench_function("o200k_base", |b| {
        b.iter(|| black_box(tiktoken_rs::o200k_base().is_ok()))
    });
    group.bench_function("cl100k_base", |b| {
        b.iter(|| black_box(tiktoken_rs::cl100k_base().is_ok()))
    });
    group.finish();
}

criterion_group!(benches, planning, counting, loading);
criterion_main!(benches);
