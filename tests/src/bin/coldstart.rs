//! Measures a Lambda function binary's cold start: from process spawn until it asks a minimal
//! Lambda Runtime API for its first event (`GET /2018-06-01/runtime/invocation/next`).
//!
//! usage: coldstart <function-binary> [runs]   (extra environment is passed through)

use std::io::{BufRead, BufReader};
use std::net::TcpListener;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

fn main() {
    let mut args = std::env::args().skip(1);
    let binary = args
        .next()
        .expect("usage: coldstart <function-binary> [runs]");
    let runs: usize = args
        .next()
        .map_or(50, |n| n.parse().expect("runs is a number"));
    let mut samples = Vec::with_capacity(runs);
    for _ in 0..runs {
        samples.push(one_start(&binary));
    }
    samples.sort();
    let pick = |q: f64| samples[((samples.len() - 1) as f64 * q).round() as usize];
    let ms = |d: Duration| d.as_secs_f64() * 1000.0;
    println!(
        "{binary}: {runs} cold starts, min {:.2} ms, p50 {:.2} ms, p90 {:.2} ms, p99 {:.2} ms, max {:.2} ms",
        ms(samples[0]),
        ms(pick(0.5)),
        ms(pick(0.9)),
        ms(pick(0.99)),
        ms(samples[samples.len() - 1]),
    );
}

fn one_start(binary: &str) -> Duration {
    let listener = TcpListener::bind("127.0.0.1:0").expect("bind runtime API");
    let api = listener.local_addr().expect("runtime API address");
    let started = Instant::now();
    let mut child = Command::new(binary)
        .env("AWS_LAMBDA_RUNTIME_API", api.to_string())
        .env("AWS_LAMBDA_FUNCTION_NAME", "coldstart")
        .env("AWS_LAMBDA_FUNCTION_VERSION", "$LATEST")
        .env("AWS_LAMBDA_FUNCTION_MEMORY_SIZE", "256")
        .env("AWS_LAMBDA_LOG_STREAM_NAME", "coldstart")
        .env("AWS_LAMBDA_LOG_GROUP_NAME", "coldstart")
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .expect("spawn function");
    let (stream, _) = listener.accept().expect("function connects");
    let mut line = String::new();
    BufReader::new(&stream)
        .read_line(&mut line)
        .expect("request line");
    let elapsed = started.elapsed();
    assert!(
        line.starts_with("GET /2018-06-01/runtime/invocation/next"),
        "unexpected first request: {line}"
    );
    let _ = child.kill();
    let _ = child.wait();
    elapsed
}
