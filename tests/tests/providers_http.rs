//! The provider adapters through the real reqwest client against fake providers on loopback
//! that replay real transcripts and scripted faults, with retries and fallbacks on top.

use bestchat_egress::{Guard, Reach};
use std::sync::Arc;
use std::time::Duration;

use bestchat_cache::MemoryCache;
use bestchat_domain::message::FinishReason;
use bestchat_domain::model_ref::{ModelId, ProviderId};
use bestchat_domain::provider::Protocol;
use bestchat_providers::breaker::{Breaker, BreakerSettings};
use bestchat_providers::failover::{Failover, RetrySettings, Started, Target};
use bestchat_providers::protocol::decode_all;
use bestchat_providers::{
    Auth, ChatMessage, ChatRequest, Endpoint, ErrorKind, EventStream, HttpSettings, Providers,
    StreamEvent, ToolSpec,
};
use bestchat_tests::fake_provider::{FakeProvider, Reply};
use bestchat_tests::fixture;

fn providers() -> Providers {
    Providers::new(
        HttpSettings {
            first_byte_timeout: Duration::from_millis(500),
            idle_timeout: Duration::from_secs(5),
            ..HttpSettings::default()
        },
        Guard::new(Reach::Anywhere),
    )
}

fn request() -> ChatRequest {
    ChatRequest {
        system: Some("Be brief.".into()),
        messages: vec![ChatMessage::user("What colours are in the flag?")],
        tools: vec![ToolSpec {
            name: "get_weather".into(),
            description: "Weather for a city".into(),
            parameters: serde_json::json!({"type": "object", "properties": {"city": {"type": "string"}}}),
        }],
        temperature: Some(0.2),
        max_output_tokens: Some(256),
        stop: Vec::new(),
    }
}

fn endpoint(protocol: Protocol, base_url: &str, model: &str, auth: Auth) -> Endpoint {
    Endpoint {
        protocol,
        base_url: base_url.to_owned(),
        model: model.to_owned(),
        auth,
        max_tokens_field: "max_tokens",
    }
}

fn target(name: &str, fake: &FakeProvider) -> Target {
    Target {
        provider: ProviderId::parse(name).unwrap(),
        model: ModelId::parse("gpt-4o-mini").unwrap(),
        endpoint: endpoint(
            Protocol::OpenAi,
            &format!("{}/v1", fake.base_url),
            "gpt-4o-mini",
            Auth::Bearer("sk-test".into()),
        ),
    }
}

async fn collect(mut stream: EventStream) -> Vec<StreamEvent> {
    let mut events = Vec::new();
    while let Some(event) = stream.next().await {
        events.push(event);
    }
    events
}

fn text(events: &[StreamEvent]) -> String {
    events
        .iter()
        .filter_map(|e| match e {
            StreamEvent::TextDelta(t) => Some(t.as_str()),
            _ => None,
        })
        .collect()
}

#[tokio::test]
async fn each_protocol_streams_its_transcript_through_the_real_client() {
    let cases = [
        (
            "openai-text-usage.sse",
            Protocol::OpenAi,
            "/v1",
            "gpt-4o-mini",
            Auth::Bearer("sk-o".into()),
        ),
        (
            "openai-llamacpp-tool-call.sse",
            Protocol::OpenAi,
            "/v1",
            "smollm2",
            Auth::None,
        ),
        (
            "anthropic-thinking-tool-use.sse",
            Protocol::Anthropic,
            "",
            "claude-sonnet-4-5",
            Auth::Header {
                name: "x-api-key",
                value: "sk-a".into(),
            },
        ),
        (
            "gemini-text.sse",
            Protocol::Gemini,
            "",
            "gemini-2.5-flash",
            Auth::Header {
                name: "x-goog-api-key",
                value: "g-key".into(),
            },
        ),
        (
            "openai-responses-reasoning-tool.sse",
            Protocol::OpenAiResponses,
            "/v1",
            "o3-pro",
            Auth::Bearer("sk-o".into()),
        ),
    ];
    let providers = providers();
    for (name, protocol, prefix, model, auth) in cases {
        let body = fixture(name);
        // Odd chunk sizes split lines and characters across HTTP chunks.
        let fake = FakeProvider::start(
            vec![Reply::sse(body.clone()).paced(37, Duration::ZERO)],
            Reply::json(500, "{}"),
        )
        .await;
        let base = format!("{}{prefix}", fake.base_url);
        let stream = providers
            .open(&endpoint(protocol, &base, model, auth.clone()), &request())
            .await
            .unwrap();
        assert_eq!(collect(stream).await, decode_all(protocol, &body), "{name}");

        let sent = &fake.requests()[0];
        let json = sent.json();
        assert_eq!(sent.method, "POST");
        match protocol {
            Protocol::OpenAi => {
                assert_eq!(sent.path, "/v1/chat/completions");
                assert_eq!(json["model"], model);
                assert_eq!(json["stream"], true);
                assert_eq!(
                    json["messages"][0],
                    serde_json::json!({"role": "system", "content": "Be brief."})
                );
                assert_eq!(json["tools"][0]["function"]["name"], "get_weather");
                assert_eq!(json["max_tokens"], 256);
                match &auth {
                    Auth::Bearer(_) => {
                        assert_eq!(sent.header("authorization"), Some("Bearer sk-o"))
                    }
                    _ => assert_eq!(sent.header("authorization"), None),
                }
            }
            Protocol::Anthropic => {
                assert_eq!(sent.path, "/v1/messages");
                assert_eq!(sent.header("x-api-key"), Some("sk-a"));
                assert_eq!(sent.header("anthropic-version"), Some("2023-06-01"));
                assert_eq!(json["system"], "Be brief.");
                assert_eq!(json["max_tokens"], 256);
                assert_eq!(json["tools"][0]["input_schema"]["type"], "object");
            }
            Protocol::Gemini => {
                assert_eq!(
                    sent.path,
                    "/v1beta/models/gemini-2.5-flash:streamGenerateContent?alt=sse"
                );
                assert_eq!(sent.header("x-goog-api-key"), Some("g-key"));
                assert_eq!(json["systemInstruction"]["parts"][0]["text"], "Be brief.");
                assert_eq!(json["generationConfig"]["maxOutputTokens"], 256);
            }
            Protocol::OpenAiResponses => {
                assert_eq!(sent.path, "/v1/responses");
                assert_eq!(json["instructions"], "Be brief.");
                assert_eq!(json["input"][0]["content"][0]["type"], "input_text");
                assert_eq!(json["max_output_tokens"], 256);
            }
            _ => unreachable!(),
        }
    }
}

#[tokio::test]
async fn a_json_answer_to_a_streaming_request_is_understood() {
    let fake = FakeProvider::start(
        vec![Reply::json(200, fixture("openai-llamacpp-nonstream.json"))],
        Reply::json(500, "{}"),
    )
    .await;
    let stream = providers()
        .open(&target("llamacpp", &fake).endpoint, &request())
        .await
        .unwrap();
    let events = collect(stream).await;
    assert!(text(&events).starts_with("Hello there!"));
    assert_eq!(
        events.last(),
        Some(&StreamEvent::Finish(FinishReason::Length))
    );
}

#[tokio::test]
async fn refusals_carry_the_providers_message_status_and_retry_after() {
    let fake = FakeProvider::start(
        vec![
            Reply::json(
                429,
                r#"{"error":{"message":"Rate limit reached for gpt-4o-mini","type":"requests"}}"#,
            )
            .header("retry-after", "7"),
        ],
        Reply::json(500, "{}"),
    )
    .await;
    let Err(error) = providers()
        .open(&target("openai", &fake).endpoint, &request())
        .await
    else {
        panic!("a 429 is an error");
    };
    assert_eq!(error.kind, ErrorKind::RateLimited);
    assert_eq!(error.status, Some(429));
    assert_eq!(error.retry_after, Some(Duration::from_secs(7)));
    assert_eq!(error.message, "Rate limit reached for gpt-4o-mini");
}

fn failover_parts(max_retries: u32) -> (Providers, Breaker, RetrySettings) {
    let breaker = Breaker::new(Arc::new(MemoryCache::new()), BreakerSettings::default());
    let retry = RetrySettings {
        max_retries,
        base_delay: Duration::from_millis(10),
        max_delay: Duration::from_millis(50),
        max_retry_after: Duration::from_secs(1),
    };
    (providers(), breaker, retry)
}

async fn start(
    chain: &[Target],
    max_retries: u32,
) -> Result<Started, bestchat_providers::failover::Exhausted> {
    let (providers, breaker, settings) = failover_parts(max_retries);
    Failover {
        providers: &providers,
        breaker: &breaker,
        settings: &settings,
    }
    .start(chain, &request())
    .await
}

fn outcomes(attempts: &[bestchat_providers::failover::Attempt]) -> Vec<(String, String)> {
    attempts
        .iter()
        .map(|a| (a.provider.clone(), a.outcome.clone()))
        .collect()
}

fn pair(provider: &str, outcome: &str) -> (String, String) {
    (provider.to_owned(), outcome.to_owned())
}

fn ok_stream() -> Reply {
    Reply::sse(fixture("openai-text-usage.sse"))
}

#[tokio::test]
async fn rate_limits_are_retried_after_the_providers_retry_after() {
    let fake = FakeProvider::start(
        vec![
            Reply::json(429, r#"{"error":{"message":"slow down"}}"#).header("retry-after", "0.05"),
            ok_stream(),
        ],
        Reply::json(500, "{}"),
    )
    .await;
    let started = start(&[target("openai", &fake)], 2).await.unwrap();
    assert_eq!(
        outcomes(&started.attempts),
        vec![pair("openai", "rate_limited"), pair("openai", "ok")]
    );
    assert_eq!(started.attempts[0].status, Some(429));
    assert_eq!(
        text(&collect(started.stream).await),
        "Red, green, and blue."
    );
}

#[tokio::test]
async fn a_retry_after_beyond_the_limit_moves_to_the_fallback_at_once() {
    let slow =
        FakeProvider::start(vec![], Reply::json(429, "{}").header("retry-after", "3600")).await;
    let fallback = FakeProvider::start(vec![ok_stream()], Reply::json(500, "{}")).await;
    let started = start(&[target("openai", &slow), target("groq", &fallback)], 2)
        .await
        .unwrap();
    assert_eq!(started.target, 1);
    assert_eq!(
        outcomes(&started.attempts),
        vec![pair("openai", "rate_limited"), pair("groq", "ok")]
    );
    assert_eq!(slow.requests().len(), 1);
}

#[tokio::test]
async fn server_errors_are_retried_with_backoff() {
    let fake = FakeProvider::start(
        vec![Reply::json(500, "{}"), Reply::json(503, "{}"), ok_stream()],
        Reply::json(500, "{}"),
    )
    .await;
    let started = start(&[target("openai", &fake)], 2).await.unwrap();
    assert_eq!(
        outcomes(&started.attempts),
        vec![
            pair("openai", "server"),
            pair("openai", "server"),
            pair("openai", "ok")
        ]
    );
}

#[tokio::test]
async fn a_hang_before_the_first_byte_times_out_and_is_retried() {
    let fake = FakeProvider::start(vec![Reply::hang(), ok_stream()], Reply::json(500, "{}")).await;
    let started = start(&[target("openai", &fake)], 1).await.unwrap();
    assert_eq!(
        outcomes(&started.attempts),
        vec![pair("openai", "timeout"), pair("openai", "ok")]
    );
}

#[tokio::test]
async fn a_cut_before_the_first_token_is_retried() {
    // The first event of this transcript only announces the role; cut inside it.
    let fake = FakeProvider::start(
        vec![ok_stream().cut_after(100), ok_stream()],
        Reply::json(500, "{}"),
    )
    .await;
    let started = start(&[target("openai", &fake)], 1).await.unwrap();
    assert_eq!(
        outcomes(&started.attempts),
        vec![pair("openai", "incomplete"), pair("openai", "ok")]
    );
    assert_eq!(
        text(&collect(started.stream).await),
        "Red, green, and blue."
    );
}

#[tokio::test]
async fn a_cut_after_the_first_token_ends_incomplete_without_switching() {
    let body = fixture("openai-text-usage.sse");
    let after_green = body.windows(7).position(|w| w == b" green\"").unwrap() + 200;
    let cut = FakeProvider::start(vec![], ok_stream().cut_after(after_green)).await;
    let fallback = FakeProvider::start(vec![], ok_stream()).await;
    let started = start(&[target("openai", &cut), target("groq", &fallback)], 2)
        .await
        .unwrap();
    assert_eq!(started.target, 0);
    let events = collect(started.stream).await;
    assert!(text(&events).starts_with("Red, green"), "{events:?}");
    assert!(
        matches!(events.last(), Some(StreamEvent::Error(e)) if e.kind == ErrorKind::Incomplete)
    );
    assert!(
        fallback.requests().is_empty(),
        "no silent switch after the first token"
    );
}

#[tokio::test]
async fn malformed_json_is_not_retried_but_falls_back() {
    let broken = FakeProvider::start(vec![], Reply::sse("data: {\"choices\": [oops\n\n")).await;
    let fallback = FakeProvider::start(vec![ok_stream()], Reply::json(500, "{}")).await;
    let started = start(&[target("openai", &broken), target("groq", &fallback)], 2)
        .await
        .unwrap();
    assert_eq!(
        outcomes(&started.attempts),
        vec![pair("openai", "protocol"), pair("groq", "ok")]
    );
    assert_eq!(broken.requests().len(), 1);
}

fn anthropic_target(fake: &FakeProvider) -> Target {
    Target {
        provider: ProviderId::parse("anthropic").unwrap(),
        model: ModelId::parse("claude-sonnet-4-5").unwrap(),
        endpoint: endpoint(
            Protocol::Anthropic,
            &fake.base_url,
            "claude-sonnet-4-5",
            Auth::Header {
                name: "x-api-key",
                value: "k".into(),
            },
        ),
    }
}

#[tokio::test]
async fn an_error_event_after_text_reaches_the_caller() {
    let fake = FakeProvider::start(
        vec![],
        Reply::sse(fixture("anthropic-overloaded-midstream.sse")),
    )
    .await;
    let started = start(&[anthropic_target(&fake)], 2).await.unwrap();
    let events = collect(started.stream).await;
    assert_eq!(text(&events), "Red");
    assert!(
        matches!(events.last(), Some(StreamEvent::Error(e)) if e.kind == ErrorKind::Overloaded)
    );
    assert_eq!(fake.requests().len(), 1);
}

#[tokio::test]
async fn an_error_event_before_any_text_is_retried() {
    let overloaded = "event: message_start\ndata: {\"type\":\"message_start\",\"message\":{\"usage\":{\"input_tokens\":3,\"output_tokens\":1}}}\n\n\
        event: error\ndata: {\"type\":\"error\",\"error\":{\"type\":\"overloaded_error\",\"message\":\"Overloaded\"}}\n\n";
    let fake = FakeProvider::start(
        vec![
            Reply::sse(overloaded),
            Reply::sse(fixture("anthropic-text.sse")),
        ],
        Reply::json(500, "{}"),
    )
    .await;
    let started = start(&[anthropic_target(&fake)], 2).await.unwrap();
    assert_eq!(
        outcomes(&started.attempts),
        vec![pair("anthropic", "overloaded"), pair("anthropic", "ok")]
    );
    assert_eq!(
        text(&collect(started.stream).await),
        "Red, green, and blue."
    );
}

#[tokio::test]
async fn when_every_target_fails_the_last_error_and_every_attempt_are_reported() {
    let down = FakeProvider::start(vec![], Reply::json(502, "{}")).await;
    let unauthorized = FakeProvider::start(
        vec![],
        Reply::json(401, r#"{"error":{"message":"Incorrect API key provided"}}"#),
    )
    .await;
    let Err(exhausted) = start(&[target("openai", &down), target("groq", &unauthorized)], 1).await
    else {
        panic!("both targets fail");
    };
    assert_eq!(
        outcomes(&exhausted.attempts),
        vec![
            pair("openai", "server"),
            pair("openai", "server"),
            pair("groq", "auth")
        ]
    );
    assert_eq!(exhausted.error.kind, ErrorKind::Auth);
    assert_eq!(exhausted.error.message, "Incorrect API key provided");
    assert_eq!(
        unauthorized.requests().len(),
        1,
        "auth failures are not retried"
    );
}

#[tokio::test]
async fn echo_streams_a_deterministic_answer_word_by_word() {
    let echo = endpoint(Protocol::Echo, "", "echo-1", Auth::None);
    let providers = Providers::new(
        HttpSettings {
            echo_delay: Duration::from_millis(1),
            ..HttpSettings::default()
        },
        Guard::new(Reach::Anywhere),
    );
    let first = collect(providers.open(&echo, &request()).await.unwrap()).await;
    let second = collect(providers.open(&echo, &request()).await.unwrap()).await;
    assert_eq!(first, second, "deterministic");
    assert_eq!(text(&first), "Echo (echo-1): What colours are in the flag?");
    let deltas = first
        .iter()
        .filter(|e| matches!(e, StreamEvent::TextDelta(_)))
        .count();
    assert_eq!(deltas, 8, "one delta per word");
    assert!(matches!(first[first.len() - 2], StreamEvent::Usage(u) if u.output_tokens == 8));
    assert_eq!(first.last(), Some(&StreamEvent::Finish(FinishReason::Stop)));
}

/// Every event of `stream`, read while a timer that keeps winning the race drops the pending
/// `next()` again and again, as the turn's `select!` does on every tick.
async fn collect_while_interrupted(mut stream: EventStream) -> (Vec<StreamEvent>, u32) {
    let mut events = Vec::new();
    let mut interrupted = 0;
    loop {
        tokio::select! {
            biased;
            () = tokio::time::sleep(Duration::from_micros(300)) => interrupted += 1,
            event = stream.next() => match event {
                Some(e) => events.push(e),
                None => return (events, interrupted),
            },
        }
    }
}

#[tokio::test]
async fn a_stream_raced_against_timers_loses_nothing() {
    let providers = Providers::new(
        HttpSettings {
            echo_delay: Duration::from_millis(2),
            ..HttpSettings::default()
        },
        Guard::new(Reach::Anywhere),
    );
    let words: String = (0..200).map(|i| format!("w{i} ")).collect();
    let long = ChatRequest {
        messages: vec![ChatMessage::user(words.clone())],
        ..request()
    };
    let echo = endpoint(Protocol::Echo, "", "echo-1", Auth::None);
    let (events, interrupted) =
        collect_while_interrupted(providers.open(&echo, &long).await.unwrap()).await;
    assert!(interrupted > 200, "the timer won {interrupted} times");
    assert_eq!(
        text(&events),
        format!("Echo (echo-1): {words}"),
        "every word"
    );
    assert_eq!(
        events.last(),
        Some(&StreamEvent::Finish(FinishReason::Stop))
    );

    // Over HTTP: one event per chunk, a chunk every 2 ms.
    let body = fixture("openai-text-usage.sse");
    let fake = FakeProvider::start(
        vec![],
        Reply::sse(body.clone()).paced(7, Duration::from_millis(2)),
    )
    .await;
    let http = endpoint(
        Protocol::OpenAi,
        &format!("{}/v1", fake.base_url),
        "m",
        Auth::None,
    );
    let (events, interrupted) =
        collect_while_interrupted(providers.open(&http, &request()).await.unwrap()).await;
    assert!(interrupted > 50, "the timer won {interrupted} times");
    assert_eq!(events, decode_all(Protocol::OpenAi, &body));

    // Silence is noticed however often the wait is interrupted: the clock is not restarted.
    let quiet = Providers::new(
        HttpSettings {
            idle_timeout: Duration::from_millis(400),
            ..HttpSettings::default()
        },
        Guard::new(Reach::Anywhere),
    );
    let stalls = FakeProvider::start(
        vec![],
        Reply::sse(body.clone()).paced(body.len() / 2, Duration::from_secs(5)),
    )
    .await;
    let http = endpoint(
        Protocol::OpenAi,
        &format!("{}/v1", stalls.base_url),
        "m",
        Auth::None,
    );
    let (events, _) = collect_while_interrupted(quiet.open(&http, &request()).await.unwrap()).await;
    assert!(
        matches!(events.last(), Some(StreamEvent::Error(e)) if e.kind == ErrorKind::Idle),
        "{events:?}"
    );
}
