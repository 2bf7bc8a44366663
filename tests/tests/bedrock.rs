//! The Bedrock adapter through the real AWS SDK against a fake ConverseStream endpoint on
//! loopback that speaks the AWS event-stream framing.

use bestchat_egress::{Guard, Reach};
use std::time::Duration;

use aws_sdk_bedrockruntime::config::{BehaviorVersion, Credentials, Region};
use aws_smithy_eventstream::frame::write_message_to;
use aws_smithy_types::event_stream::{Header, HeaderValue, Message};
use bestchat_domain::message::FinishReason;
use bestchat_domain::provider::Protocol;
use bestchat_providers::{
    Auth, ChatMessage, ChatRequest, Endpoint, ErrorKind, HttpSettings, Part, Providers,
    StreamEvent, TokenUsage,
};
use bestchat_tests::fake_provider::{FakeProvider, Reply};
use serde_json::json;

fn frame(event_type: &str, payload: serde_json::Value) -> Vec<u8> {
    let message = Message::new(payload.to_string().into_bytes())
        .add_header(Header::new(
            ":message-type",
            HeaderValue::String("event".into()),
        ))
        .add_header(Header::new(
            ":event-type",
            HeaderValue::String(event_type.to_owned().into()),
        ))
        .add_header(Header::new(
            ":content-type",
            HeaderValue::String("application/json".into()),
        ));
    let mut out = Vec::new();
    write_message_to(&message, &mut out).unwrap();
    out
}

fn exception(kind: &str, text: &str) -> Vec<u8> {
    let message = Message::new(json!({"message": text}).to_string().into_bytes())
        .add_header(Header::new(
            ":message-type",
            HeaderValue::String("exception".into()),
        ))
        .add_header(Header::new(
            ":exception-type",
            HeaderValue::String(kind.to_owned().into()),
        ))
        .add_header(Header::new(
            ":content-type",
            HeaderValue::String("application/json".into()),
        ));
    let mut out = Vec::new();
    write_message_to(&message, &mut out).unwrap();
    out
}

fn converse_stream() -> Vec<u8> {
    [
        frame("messageStart", json!({"role": "assistant"})),
        frame("contentBlockDelta", json!({"contentBlockIndex": 0, "delta": {"reasoningContent": {"text": "Weather needs a tool."}}})),
        frame("contentBlockDelta", json!({"contentBlockIndex": 1, "delta": {"text": "Let me "}})),
        frame("contentBlockDelta", json!({"contentBlockIndex": 1, "delta": {"text": "check."}})),
        frame("contentBlockStop", json!({"contentBlockIndex": 1})),
        frame("contentBlockStart", json!({"contentBlockIndex": 2, "start": {"toolUse": {"toolUseId": "tooluse_1", "name": "get_weather"}}})),
        frame("contentBlockDelta", json!({"contentBlockIndex": 2, "delta": {"toolUse": {"input": "{\"city\": "}}})),
        frame("contentBlockDelta", json!({"contentBlockIndex": 2, "delta": {"toolUse": {"input": "\"Oslo\"}"}}})),
        frame("contentBlockStop", json!({"contentBlockIndex": 2})),
        frame("messageStop", json!({"stopReason": "tool_use"})),
        frame("metadata", json!({"usage": {"inputTokens": 30, "outputTokens": 12, "totalTokens": 42, "cacheReadInputTokens": 8}, "metrics": {"latencyMs": 100}})),
    ]
    .concat()
}

fn providers(fake: &FakeProvider) -> Providers {
    let config = aws_sdk_bedrockruntime::Config::builder()
        .behavior_version(BehaviorVersion::latest())
        .region(Region::new("us-east-1"))
        .endpoint_url(&fake.base_url)
        .credentials_provider(Credentials::new("AKIDTEST", "secret", None, None, "test"))
        .build();
    Providers::new(
        HttpSettings {
            first_byte_timeout: Duration::from_secs(5),
            ..HttpSettings::default()
        },
        Guard::new(Reach::Anywhere),
    )
    .with_bedrock_client(aws_sdk_bedrockruntime::Client::from_conf(config))
}

fn endpoint() -> Endpoint {
    Endpoint {
        protocol: Protocol::Bedrock,
        base_url: String::new(),
        model: "us.anthropic.claude-sonnet-4-5-20250929-v1:0".into(),
        auth: Auth::AwsIam,
        max_tokens_field: "max_tokens",
    }
}

fn request() -> ChatRequest {
    ChatRequest {
        system: Some("Be brief.".into()),
        messages: vec![ChatMessage::user("Weather in Oslo?")],
        max_output_tokens: Some(100),
        ..ChatRequest::default()
    }
}

async fn events(providers: &Providers) -> Vec<StreamEvent> {
    let mut stream = providers.open(&endpoint(), &request()).await.unwrap();
    let mut out = Vec::new();
    while let Some(e) = stream.next().await {
        out.push(e);
    }
    out
}

#[tokio::test]
async fn converse_stream_maps_to_unified_events() {
    let fake = FakeProvider::start(
        vec![Reply::event_stream(converse_stream()).paced(50, Duration::ZERO)],
        Reply::json(500, "{}"),
    )
    .await;
    let got = events(&providers(&fake)).await;
    assert_eq!(
        got,
        vec![
            StreamEvent::ReasoningDelta("Weather needs a tool.".into()),
            StreamEvent::TextDelta("Let me ".into()),
            StreamEvent::TextDelta("check.".into()),
            StreamEvent::ToolCallStart {
                index: 2,
                id: "tooluse_1".into(),
                name: "get_weather".into()
            },
            StreamEvent::ToolCallDelta {
                index: 2,
                arguments: "{\"city\": ".into()
            },
            StreamEvent::ToolCallDelta {
                index: 2,
                arguments: "\"Oslo\"}".into()
            },
            StreamEvent::ToolCallEnd { index: 2 },
            StreamEvent::Usage(TokenUsage {
                input_tokens: 38,
                output_tokens: 12,
                cached_tokens: 8,
                reasoning_tokens: 0
            }),
            StreamEvent::Finish(FinishReason::ToolCalls),
        ]
    );
    let sent = &fake.requests()[0];
    assert_eq!(
        sent.path,
        "/model/us.anthropic.claude-sonnet-4-5-20250929-v1%3A0/converse-stream"
    );
    assert!(
        sent.header("authorization")
            .is_some_and(|a| a.starts_with("AWS4-HMAC-SHA256")),
        "SigV4 signed"
    );
    let body = sent.json();
    assert_eq!(body["system"][0]["text"], "Be brief.");
    assert_eq!(
        body["messages"][0]["content"][0]["text"],
        "Weather in Oslo?"
    );
    assert_eq!(body["inferenceConfig"]["maxTokens"], 100);
}

#[tokio::test]
async fn a_throttling_exception_mid_stream_ends_the_answer() {
    let body = [
        frame("messageStart", json!({"role": "assistant"})),
        frame(
            "contentBlockDelta",
            json!({"contentBlockIndex": 0, "delta": {"text": "Par"}}),
        ),
        exception("throttlingException", "Too many tokens"),
    ]
    .concat();
    let fake = FakeProvider::start(vec![Reply::event_stream(body)], Reply::json(500, "{}")).await;
    let got = events(&providers(&fake)).await;
    assert_eq!(got[0], StreamEvent::TextDelta("Par".into()));
    assert!(
        matches!(got.last(), Some(StreamEvent::Error(e)) if e.kind == ErrorKind::RateLimited),
        "{got:?}"
    );
}

#[tokio::test]
async fn a_stream_cut_before_message_stop_is_incomplete() {
    let body = [
        frame("messageStart", json!({"role": "assistant"})),
        frame(
            "contentBlockDelta",
            json!({"contentBlockIndex": 0, "delta": {"text": "Hel"}}),
        ),
    ]
    .concat();
    let fake = FakeProvider::start(vec![Reply::event_stream(body)], Reply::json(500, "{}")).await;
    let got = events(&providers(&fake)).await;
    assert!(
        matches!(got.last(), Some(StreamEvent::Error(e)) if e.kind == ErrorKind::Incomplete),
        "{got:?}"
    );
}

#[tokio::test]
async fn files_go_as_converse_image_and_document_blocks() {
    use base64::Engine as _;
    let fake = FakeProvider::start(
        vec![Reply::event_stream(converse_stream())],
        Reply::json(500, "{}"),
    )
    .await;
    let jpeg = bestchat_tests::files::jpeg(64, 48);
    let pdf = bestchat_tests::files::pdf("Quarterly revenue");
    let docx = bestchat_tests::files::docx(&["Ship on Friday"]);
    let request = ChatRequest {
        messages: vec![ChatMessage::User {
            text: "What do these say?".into(),
            parts: vec![
                Part::Image {
                    media_type: "image/jpeg".into(),
                    data: jpeg.clone().into(),
                },
                Part::Document {
                    name: "Q3 report.pdf".into(),
                    media_type: "application/pdf".into(),
                    data: pdf.clone().into(),
                },
                Part::Document {
                    name: "plan.docx".into(),
                    media_type:
                        "application/vnd.openxmlformats-officedocument.wordprocessingml.document"
                            .into(),
                    data: docx.into(),
                },
            ],
        }],
        max_output_tokens: Some(100),
        ..ChatRequest::default()
    };
    let mut stream = providers(&fake).open(&endpoint(), &request).await.unwrap();
    while stream.next().await.is_some() {}
    let body = fake.requests()[0].json();
    let content = &body["messages"][0]["content"];
    let b64 = |bytes: &[u8]| base64::engine::general_purpose::STANDARD.encode(bytes);
    assert_eq!(content[0]["image"]["format"], "jpeg");
    assert_eq!(content[0]["image"]["source"]["bytes"], b64(&jpeg));
    assert_eq!(content[1]["document"]["format"], "pdf");
    assert_eq!(content[1]["document"]["name"], "Q3 report 1");
    assert_eq!(content[1]["document"]["source"]["bytes"], b64(&pdf));
    assert_eq!(content[2]["document"]["format"], "docx");
    assert_eq!(content[3]["text"], "What do these say?");
}
