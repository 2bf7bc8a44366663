//! Sends a request to a provider and exposes its answer as one [`EventStream`]. One
//! `reqwest::Client` (and one Bedrock client, made on first use) per cold start.

use std::borrow::Cow;
use std::collections::VecDeque;
use std::time::Duration;

use bestchat_domain::provider::Protocol;
use bestchat_domain::text::replace_nul;
use bestchat_egress::{Guard, Refusal, refusal_of};
use reqwest::header::{ACCEPT, AUTHORIZATION, CONTENT_TYPE, HeaderMap, RETRY_AFTER};
use tokio::sync::OnceCell;

use crate::protocol::{Decoder, anthropic, bedrock, echo, gemini, openai, responses};
use crate::sse::{SseEvent, SseParser};
use crate::types::{ChatRequest, ErrorKind, ProviderError, StreamEvent};

/// Limits on talking to providers; each is a named setting of the app's configuration.
#[derive(Debug, Clone, serde::Deserialize)]
/// Read from the environment by the app: each field's variable is on it, its default in `Default`.
#[serde(default)]
pub struct HttpSettings {
    /// Establishing a TCP/TLS connection.
    #[serde(
        rename = "BESTCHAT_PROVIDER_CONNECT_TIMEOUT_MS",
        deserialize_with = "bestchat_domain::settings::millis"
    )]
    pub connect_timeout: Duration,
    /// From sending the request until the response headers arrive.
    #[serde(
        rename = "BESTCHAT_PROVIDER_FIRST_BYTE_TIMEOUT_MS",
        deserialize_with = "bestchat_domain::settings::millis"
    )]
    pub first_byte_timeout: Duration,
    /// Longest silence between two chunks of a streaming answer.
    #[serde(
        rename = "BESTCHAT_PROVIDER_IDLE_TIMEOUT_MS",
        deserialize_with = "bestchat_domain::settings::millis"
    )]
    pub idle_timeout: Duration,
    /// Largest error body read to explain a refusal (the rest is not read).
    #[serde(rename = "BESTCHAT_PROVIDER_MAX_ERROR_BODY_BYTES")]
    pub max_error_body_bytes: usize,
    /// Largest single server-sent event of a streaming answer.
    #[serde(rename = "BESTCHAT_PROVIDER_MAX_EVENT_BYTES")]
    pub max_event_bytes: usize,
    /// Largest whole answer of a server that does not stream.
    #[serde(rename = "BESTCHAT_PROVIDER_MAX_BODY_BYTES")]
    pub max_body_bytes: usize,
    /// Largest model list read from a provider.
    #[serde(rename = "BESTCHAT_PROVIDER_MAX_MODEL_LIST_BYTES")]
    pub max_model_list_bytes: usize,
    /// Pause between the echo provider's words.
    #[serde(
        rename = "BESTCHAT_ECHO_DELAY_MS",
        deserialize_with = "bestchat_domain::settings::millis"
    )]
    pub echo_delay: Duration,
}

impl Default for HttpSettings {
    fn default() -> Self {
        Self {
            connect_timeout: Duration::from_secs(5),
            first_byte_timeout: Duration::from_secs(60),
            idle_timeout: Duration::from_secs(120),
            max_error_body_bytes: 64 * 1024,
            max_event_bytes: 4 * 1024 * 1024,
            max_body_bytes: 16 * 1024 * 1024,
            max_model_list_bytes: 4 * 1024 * 1024,
            echo_delay: Duration::from_millis(20),
        }
    }
}

/// How a request proves who it is.
#[derive(Clone, PartialEq, Eq)]
pub enum Auth {
    None,
    /// `Authorization: Bearer <key>`.
    Bearer(String),
    /// A named header carrying the key (`x-api-key`, `x-goog-api-key`, `api-key`).
    Header {
        name: &'static str,
        value: String,
    },
    /// AWS SigV4 with the function's role (Bedrock).
    AwsIam,
}

impl std::fmt::Debug for Auth {
    // Keys never reach a log.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Self::None => f.write_str("None"),
            Self::Bearer(_) => f.write_str("Bearer(***)"),
            Self::Header { name, .. } => write!(f, "Header({name}: ***)"),
            Self::AwsIam => f.write_str("AwsIam"),
        }
    }
}

/// Where and how to call one model.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Endpoint {
    pub protocol: Protocol,
    /// As the protocol's official SDK takes it (see API.md); unused by Bedrock and echo.
    pub base_url: String,
    pub model: String,
    pub auth: Auth,
    /// `max_tokens` or `max_completion_tokens` (OpenAI protocol only).
    pub max_tokens_field: &'static str,
}

pub struct Providers {
    /// Built on the first provider request: loading the root certificates is most of a cold
    /// start, and most functions never call a provider.
    http: std::sync::OnceLock<Result<reqwest::Client, ProviderError>>,
    guard: Guard,
    settings: HttpSettings,
    bedrock: OnceCell<aws_sdk_bedrockruntime::Client>,
}

impl Providers {
    /// Every HTTP request to a provider goes through `guard` (base URLs are the user's to set).
    pub fn new(settings: HttpSettings, guard: Guard) -> Self {
        Self {
            http: std::sync::OnceLock::new(),
            guard,
            settings,
            bedrock: OnceCell::new(),
        }
    }

    fn http(&self) -> Result<&reqwest::Client, ProviderError> {
        self.http
            .get_or_init(|| {
                self.guard
                    .client_builder()
                    .connect_timeout(self.settings.connect_timeout)
                    .pool_idle_timeout(Duration::from_secs(90))
                    .build()
                    .map_err(|e| ProviderError::new(ErrorKind::Connect, e.to_string()))
            })
            .as_ref()
            .map_err(Clone::clone)
    }

    /// Uses `client` for Bedrock instead of one built from the environment.
    pub fn with_bedrock_client(self, client: aws_sdk_bedrockruntime::Client) -> Self {
        Self {
            bedrock: OnceCell::new_with(Some(client)),
            ..self
        }
    }

    pub fn settings(&self) -> &HttpSettings {
        &self.settings
    }

    /// A request to `url` through the guard: refused before anything is sent when its host is
    /// an address the guard does not allow (names are checked as they resolve).
    pub(crate) fn request(
        &self,
        method: reqwest::Method,
        url: &str,
    ) -> Result<reqwest::RequestBuilder, ProviderError> {
        let url = reqwest::Url::parse(url).map_err(|_| {
            ProviderError::new(ErrorKind::InvalidRequest, "the provider URL is invalid")
        })?;
        self.guard.check_url(&url).map_err(blocked)?;
        Ok(self.http()?.request(method, url))
    }

    /// Sends the request. An error here means nothing was received; once a stream is returned,
    /// every failure arrives as its final event.
    pub async fn open(
        &self,
        endpoint: &Endpoint,
        request: &ChatRequest,
    ) -> Result<EventStream, ProviderError> {
        let source = match endpoint.protocol {
            Protocol::Echo => Source::Echo(echo::Source::new(
                request,
                &endpoint.model,
                self.settings.echo_delay,
            )),
            Protocol::Bedrock => {
                let client = self
                    .bedrock
                    .get_or_init(|| async {
                        let config =
                            aws_config::load_defaults(aws_config::BehaviorVersion::latest()).await;
                        aws_sdk_bedrockruntime::Client::new(&config)
                    })
                    .await;
                let open = bedrock::open(client, &endpoint.model, request);
                let source = tokio::time::timeout(self.settings.first_byte_timeout, open)
                    .await
                    .map_err(|_| first_byte_timeout())??;
                Source::Bedrock(Box::new(source))
            }
            protocol => {
                let Some(decoder) = Decoder::for_protocol(protocol) else {
                    return Err(ProviderError::new(
                        ErrorKind::InvalidRequest,
                        "unsupported protocol",
                    ));
                };
                let response = self.send(endpoint, request).await?;
                if protocol == Protocol::OpenAi && is_json(response.headers()) {
                    let body = self.whole_body(response).await?;
                    return Ok(EventStream {
                        source: Source::Buffered,
                        pending: openai::decode_complete(&body).into(),
                        done: false,
                        idle_timeout: self.settings.idle_timeout,
                        silent_until: None,
                    });
                }
                Source::Http(Box::new(HttpSource {
                    response,
                    sse: SseParser::new(self.settings.max_event_bytes),
                    decoder,
                    events: Vec::new(),
                }))
            }
        };
        Ok(EventStream {
            source,
            pending: VecDeque::new(),
            done: false,
            idle_timeout: self.settings.idle_timeout,
            silent_until: None,
        })
    }

    async fn send(
        &self,
        endpoint: &Endpoint,
        request: &ChatRequest,
    ) -> Result<reqwest::Response, ProviderError> {
        let base = endpoint.base_url.trim_end_matches('/');
        let model = endpoint.model.as_str();
        let (url, body) = match endpoint.protocol {
            Protocol::OpenAi => (
                format!("{base}/chat/completions"),
                openai::body(request, model, endpoint.max_tokens_field),
            ),
            Protocol::OpenAiResponses => {
                (format!("{base}/responses"), responses::body(request, model))
            }
            Protocol::Anthropic => (
                format!("{base}/v1/messages"),
                anthropic::body(request, model),
            ),
            Protocol::Gemini => (
                format!("{base}/v1beta/models/{model}:streamGenerateContent?alt=sse"),
                gemini::body(request),
            ),
            Protocol::Bedrock | Protocol::Echo => {
                return Err(ProviderError::new(
                    ErrorKind::InvalidRequest,
                    "not an HTTP protocol",
                ));
            }
        };
        let mut builder = self
            .request(reqwest::Method::POST, &url)?
            .header(ACCEPT, "text/event-stream")
            .json(&body);
        builder = apply_auth(builder, &endpoint.auth);
        if endpoint.protocol == Protocol::Anthropic {
            builder = builder.header("anthropic-version", anthropic::API_VERSION);
        }
        let response = tokio::time::timeout(self.settings.first_byte_timeout, builder.send())
            .await
            .map_err(|_| first_byte_timeout())?
            .map_err(transport_error)?;
        if response.status().is_success() {
            Ok(response)
        } else {
            Err(self.refusal(response).await)
        }
    }

    /// A body that is not a stream, read whole within the size and time limits.
    async fn whole_body(&self, response: reqwest::Response) -> Result<Vec<u8>, ProviderError> {
        read_bounded(
            response,
            self.settings.max_body_bytes,
            self.settings.idle_timeout,
        )
        .await
    }

    /// Turns a non-2xx answer into an error with the provider's message and `Retry-After`.
    pub(crate) async fn refusal(&self, mut response: reqwest::Response) -> ProviderError {
        let status = response.status().as_u16();
        let retry_after = retry_after(response.headers());
        let mut body = Vec::new();
        let read = async {
            while let Ok(Some(chunk)) = response.chunk().await {
                body.extend_from_slice(&chunk);
                if body.len() >= self.settings.max_error_body_bytes {
                    break;
                }
            }
        };
        let _ = tokio::time::timeout(self.settings.first_byte_timeout, read).await;
        body.truncate(self.settings.max_error_body_bytes);
        // For the log only: clients see a fixed sentence for the error's kind.
        let message: String = serde_json::from_slice::<serde_json::Value>(&body)
            .map(|v| crate::protocol::error_text(&v))
            .unwrap_or_else(|_| String::from_utf8_lossy(&body).into_owned())
            .chars()
            .take(ERROR_TEXT_MAX_CHARS)
            .collect();
        ProviderError {
            kind: ErrorKind::from_status(status),
            message: if message.is_empty() {
                format!("HTTP {status}")
            } else {
                message
            },
            status: Some(status),
            retry_after,
        }
    }
}

/// Reads a body of at most `limit` bytes within `timeout`; a longer one is refused, never held.
pub(crate) async fn read_bounded(
    mut response: reqwest::Response,
    limit: usize,
    timeout: Duration,
) -> Result<Vec<u8>, ProviderError> {
    if response
        .content_length()
        .is_some_and(|n| n > u64::try_from(limit).unwrap_or(u64::MAX))
    {
        return Err(ProviderError::protocol("oversized body"));
    }
    let mut body = Vec::new();
    let read = async {
        while let Some(chunk) = response.chunk().await.map_err(transport_error)? {
            if body.len() + chunk.len() > limit {
                return Err(ProviderError::protocol("oversized body"));
            }
            body.extend_from_slice(&chunk);
        }
        Ok(())
    };
    tokio::time::timeout(timeout, read)
        .await
        .map_err(|_| ProviderError::new(ErrorKind::Idle, "the provider went silent"))??;
    Ok(body)
}

fn blocked(refusal: Refusal) -> ProviderError {
    let kind = match refusal {
        // Not a decision of the guard: the name does not exist (here, now).
        Refusal::Unresolved(_) => ErrorKind::Connect,
        _ => ErrorKind::Blocked,
    };
    ProviderError::new(kind, refusal.to_string())
}

pub(crate) fn apply_auth(builder: reqwest::RequestBuilder, auth: &Auth) -> reqwest::RequestBuilder {
    match auth {
        Auth::None | Auth::AwsIam => builder,
        Auth::Bearer(key) => builder.header(AUTHORIZATION, format!("Bearer {key}")),
        Auth::Header { name, value } => builder.header(*name, value),
    }
}

/// Some OpenAI-compatible servers ignore `stream: true` and answer with one JSON object.
fn is_json(headers: &HeaderMap) -> bool {
    headers
        .get(CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.starts_with("application/json"))
}

fn first_byte_timeout() -> ProviderError {
    ProviderError::new(
        ErrorKind::Timeout,
        "no answer before the first-byte timeout",
    )
}

pub(crate) fn transport_error(e: reqwest::Error) -> ProviderError {
    if let Some(refusal) = refusal_of(&e) {
        return blocked(refusal.clone());
    }
    let kind = if e.is_timeout() {
        ErrorKind::Timeout
    } else {
        ErrorKind::Connect
    };
    ProviderError::new(kind, e.to_string())
}

/// `Retry-After` in seconds or as an HTTP date, or OpenAI's `retry-after-ms`.
fn retry_after(headers: &HeaderMap) -> Option<Duration> {
    if let Some(ms) = headers
        .get("retry-after-ms")
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.trim().parse::<f64>().ok())
        .filter(|ms| ms.is_finite() && *ms >= 0.0)
    {
        return Some(Duration::from_secs_f64(ms / 1000.0));
    }
    let raw = headers.get(RETRY_AFTER)?.to_str().ok()?.trim();
    if let Ok(secs) = raw.parse::<f64>() {
        return (secs.is_finite() && secs >= 0.0).then(|| Duration::from_secs_f64(secs));
    }
    let at = httpdate::parse_http_date(raw).ok()?;
    Some(
        at.duration_since(std::time::SystemTime::now())
            .unwrap_or_default(),
    )
}

enum Source {
    /// Every event is already pending.
    Buffered,
    Http(Box<HttpSource>),
    Bedrock(Box<bedrock::Source>),
    Echo(echo::Source),
}

struct HttpSource {
    response: reqwest::Response,
    sse: SseParser,
    decoder: Decoder,
    events: Vec<SseEvent>,
}

impl HttpSource {
    async fn pull(&mut self, silent_until: tokio::time::Instant, out: &mut Vec<StreamEvent>) {
        match tokio::time::timeout_at(silent_until, self.response.chunk()).await {
            Err(_) => out.push(StreamEvent::Error(ProviderError::new(
                ErrorKind::Idle,
                "the provider went silent",
            ))),
            Ok(Err(e)) => {
                tracing::debug!(error = %e, "provider stream broke");
                out.push(StreamEvent::Error(ProviderError::new(
                    ErrorKind::Incomplete,
                    "the connection to the provider broke mid-answer",
                )));
            }
            Ok(Ok(Some(bytes))) => {
                if self.sse.push(&bytes, &mut self.events).is_err() {
                    return out.push(StreamEvent::Error(ProviderError::protocol(
                        "oversized event",
                    )));
                }
                for event in self.events.drain(..) {
                    self.decoder.on_event(&event, out);
                }
            }
            Ok(Ok(None)) => {
                if self.sse.finish(&mut self.events).is_err() {
                    return out.push(StreamEvent::Error(ProviderError::protocol(
                        "oversized event",
                    )));
                }
                for event in self.events.drain(..) {
                    self.decoder.on_event(&event, out);
                }
                self.decoder.on_end(out);
            }
        }
    }
}

/// A provider's answer as it arrives. It ends with exactly one `Finish` or `Error`, then `None`.
pub struct EventStream {
    source: Source,
    pending: VecDeque<StreamEvent>,
    done: bool,
    idle_timeout: Duration,
    /// When the provider, silent since it last sent something, counts as gone. Kept across
    /// calls, so a caller that drops `next()` does not restart the clock.
    silent_until: Option<tokio::time::Instant>,
}

/// Characters of a provider's error text kept for the log.
const ERROR_TEXT_MAX_CHARS: usize = 500;

impl EventStream {
    /// The next event, with any NUL in the provider's text replaced (PostgreSQL cannot store
    /// it).
    ///
    /// Cancel-safe, so it may be raced in `select!`: each source's `pull` awaits once, before it
    /// takes anything from its input (a chunk of the body, a frame of the event stream, echo's
    /// next word), and what it takes is decoded and queued with no await after it. A dropped
    /// call therefore loses nothing; the next call finds every event where it was.
    pub async fn next(&mut self) -> Option<StreamEvent> {
        loop {
            if let Some(event) = self.pending.pop_front() {
                if event.is_terminal() {
                    self.done = true;
                    self.pending.clear();
                }
                return Some(without_nul(event));
            }
            if self.done {
                return None;
            }
            let idle = self.idle_timeout;
            let silent_until = *self
                .silent_until
                .get_or_insert_with(|| tokio::time::Instant::now() + idle);
            let mut out = Vec::new();
            match &mut self.source {
                Source::Buffered => out.push(StreamEvent::Error(ProviderError::incomplete())),
                Source::Http(s) => s.pull(silent_until, &mut out).await,
                Source::Bedrock(s) => s.pull(silent_until, &mut out).await,
                Source::Echo(s) => s.pull(&mut out).await,
            }
            // The provider said something (or the stream ended): the silence starts over.
            self.silent_until = None;
            self.pending.extend(out);
        }
    }

    /// Waits for the first content (or the end of an empty answer), keeping every event for the
    /// caller. An error before any content is returned instead, so it can be retried.
    pub async fn first_content(&mut self) -> Result<(), ProviderError> {
        let mut seen = Vec::new();
        loop {
            match self.next().await {
                None => return Err(ProviderError::incomplete()),
                Some(StreamEvent::Error(e)) => return Err(e),
                Some(event) => {
                    let ready = event.is_content() || event.is_terminal();
                    seen.push(event);
                    if ready {
                        break;
                    }
                }
            }
        }
        self.done = false;
        for event in seen.into_iter().rev() {
            self.pending.push_front(event);
        }
        Ok(())
    }
}

fn without_nul(event: StreamEvent) -> StreamEvent {
    let clean = |text: String| match replace_nul(&text) {
        Cow::Borrowed(_) => text,
        Cow::Owned(clean) => clean,
    };
    match event {
        StreamEvent::TextDelta(t) => StreamEvent::TextDelta(clean(t)),
        StreamEvent::ReasoningDelta(t) => StreamEvent::ReasoningDelta(clean(t)),
        StreamEvent::ToolCallStart { index, id, name } => StreamEvent::ToolCallStart {
            index,
            id: clean(id),
            name: clean(name),
        },
        StreamEvent::ToolCallDelta { index, arguments } => StreamEvent::ToolCallDelta {
            index,
            arguments: clean(arguments),
        },
        StreamEvent::Error(mut e) => {
            e.message = clean(e.message);
            StreamEvent::Error(e)
        }
        other => other,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use reqwest::header::HeaderValue;

    #[test]
    fn retry_after_forms() {
        let mut h = HeaderMap::new();
        h.insert(RETRY_AFTER, HeaderValue::from_static("3"));
        assert_eq!(retry_after(&h), Some(Duration::from_secs(3)));
        h.insert("retry-after-ms", HeaderValue::from_static("250"));
        assert_eq!(retry_after(&h), Some(Duration::from_millis(250)));
        let mut d = HeaderMap::new();
        d.insert(
            RETRY_AFTER,
            HeaderValue::from_static("Wed, 21 Oct 2015 07:28:00 GMT"),
        );
        assert_eq!(retry_after(&d), Some(Duration::ZERO));
        d.insert(RETRY_AFTER, HeaderValue::from_static("soon"));
        assert_eq!(retry_after(&d), None);
    }

    #[test]
    fn keys_are_not_debug_printed() {
        let auth = Auth::Bearer("sk-secret".into());
        assert!(!format!("{auth:?}").contains("secret"));
    }
}
