//! The sandbox's costs: a fresh Store + instantiate + a trivial `_start` (percentiles), each
//! built-in end to end through the executor, and a cold start with compiled modules on disk.
//! `cargo bench -p bestchat-tools --bench sandbox`
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::hint::black_box;
use std::time::{Duration, Instant};

use bestchat_tools::sandbox::sha256_hex;
use bestchat_tools::{Ceilings, ExecRequest, ExecResponse, Limits, ModuleRef, builtin};
use criterion::{Criterion, criterion_group, criterion_main};
use serde_json::{Value, json};

/// The smallest WASI command: exports `memory` and an empty `_start`.
const TRIVIAL: &[u8] = &[
    0x00, 0x61, 0x73, 0x6d, 0x01, 0x00, 0x00, 0x00, // magic, version
    0x01, 0x04, 0x01, 0x60, 0x00, 0x00, // type: [] -> []
    0x03, 0x02, 0x01, 0x00, // one function of that type
    0x05, 0x03, 0x01, 0x00, 0x01, // one memory, one page
    0x07, 0x13, 0x02, 0x06, b'_', b's', b't', b'a', b'r', b't', 0x00, 0x00, 0x06, b'm', b'e', b'm',
    b'o', b'r', b'y', 0x02, 0x00, // exports
    0x0a, 0x04, 0x01, 0x02, 0x00, 0x0b, // code: an empty body
];

#[path = "../tests/support/mod.rs"]
mod support;

use support::{executor, sandbox};

fn request(tool: &str, arguments: Value) -> ExecRequest {
    let grants = &builtin::find(tool).unwrap().manifest.grants;
    ExecRequest {
        tool: tool.into(),
        module: ModuleRef::Builtin(tool.into()),
        arguments,
        limits: Limits::granted(grants, &Ceilings::default()),
    }
}

fn calls() -> Vec<(&'static str, Value)> {
    vec![
        (
            "calculator",
            json!({"expression": "(1 + 2) * 3 / 4 + 2^64"}),
        ),
        (
            "datetime",
            json!({"operation": "add", "datetime": "2026-01-31T10:00:00Z", "months": 1, "timezone": "Europe/Lisbon"}),
        ),
        (
            "json_query",
            json!({"query": "people[?age > `30`].name", "data": {"people": [{"name": "a", "age": 31}, {"name": "b", "age": 20}]}}),
        ),
        (
            "regex",
            json!({"pattern": "(\\w+)@(\\w+)\\.com", "text": "write to ana@example.com or bo@test.com"}),
        ),
        (
            "run_javascript",
            json!({"code": "[1,2,3,4,5].map(x => x * x).reduce((a, b) => a + b)"}),
        ),
    ]
}

fn percentile(sorted: &[Duration], p: f64) -> Duration {
    sorted[((sorted.len() as f64 - 1.0) * p).round() as usize]
}

/// p50/p99 over many runs: criterion reports means, the target is a tail.
fn report_percentiles(rt: &tokio::runtime::Runtime) {
    let sandbox = sandbox(None);
    let sha = sha256_hex(TRIVIAL);
    let limits = Limits::granted(&Default::default(), &Ceilings::default());
    let mut times = Vec::with_capacity(5_000);
    for i in 0..5_100 {
        let started = Instant::now();
        let (result, _) = rt.block_on(sandbox.run(
            &sha,
            false,
            async || Ok(TRIVIAL.to_vec()),
            Vec::new(),
            &limits,
        ));
        let elapsed = started.elapsed();
        result.unwrap();
        if i >= 100 {
            times.push(elapsed);
        }
    }
    times.sort();
    eprintln!(
        "trivial instantiate + _start over {} runs: p50 {:?}, p99 {:?}, max {:?}",
        times.len(),
        percentile(&times, 0.5),
        percentile(&times, 0.99),
        times[times.len() - 1]
    );
}

/// A new process's first call: a new engine, modules loaded from the disk cache.
fn report_cold_start(rt: &tokio::runtime::Runtime) {
    let dir = std::env::temp_dir().join(format!("bestchat-bench-cache-{}", std::process::id()));
    rt.block_on(
        executor(Some(dir.clone())).execute(request("calculator", json!({"expression": "1"}))),
    );
    for tool in ["calculator", "run_javascript"] {
        let mut times = Vec::new();
        for _ in 0..20 {
            let started = Instant::now();
            let executor = executor(Some(dir.clone()));
            let (name, args) = calls().into_iter().find(|(n, _)| *n == tool).unwrap();
            let out = rt.block_on(executor.execute(request(name, args)));
            assert!(matches!(out, ExecResponse::Ok { .. }), "{out:?}");
            times.push(started.elapsed());
        }
        times.sort();
        eprintln!(
            "cold start to the first {tool} answer, compiled module on disk: p50 {:?}, max {:?}",
            percentile(&times, 0.5),
            times[times.len() - 1]
        );
    }
    let started = Instant::now();
    let fresh = executor(None);
    rt.block_on(fresh.execute(request("run_javascript", json!({"code": "1"}))));
    eprintln!(
        "first run_javascript call compiling its module (no cache): {:?}",
        started.elapsed()
    );
    let _ = std::fs::remove_dir_all(dir);
}

fn rss_kib() -> Option<u64> {
    let status = std::fs::read_to_string("/proc/self/status").ok()?;
    let line = status.lines().find(|l| l.starts_with("VmRSS:"))?;
    line.split_whitespace().nth(1)?.parse().ok()
}

fn bench(c: &mut Criterion) {
    let rt = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .unwrap();
    report_percentiles(&rt);
    report_cold_start(&rt);

    let sandbox = sandbox(None);
    let sha = sha256_hex(TRIVIAL);
    let limits = Limits::granted(&Default::default(), &Ceilings::default());
    c.bench_function("sandbox/trivial_instantiate_and_start", |b| {
        b.iter(|| {
            rt.block_on(sandbox.run(
                &sha,
                false,
                async || Ok(TRIVIAL.to_vec()),
                Vec::new(),
                black_box(&limits),
            ))
        })
    });

    let executor = executor(None);
    let mut group = c.benchmark_group("executor/builtin");
    for (tool, arguments) in calls() {
        rt.block_on(executor.execute(request(tool, arguments.clone())));
        group.bench_function(tool, |b| {
            b.iter(|| {
                let out = rt.block_on(executor.execute(request(tool, arguments.clone())));
                assert!(matches!(out, ExecResponse::Ok { .. }), "{out:?}");
            })
        });
    }
    group.finish();
    eprintln!(
        "RSS with every built-in compiled and run: {} KiB",
        rss_kib().unwrap_or(0)
    );
}

criterion_group!(benches, bench);
criterion_main!(benches);
