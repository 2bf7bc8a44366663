//! AWS Bedrock ConverseStream through the AWS SDK: IAM auth from the function's role, no key.

use std::collections::BTreeSet;

use aws_sdk_bedrockruntime::error::{ProvideErrorMetadata, SdkError};
use aws_sdk_bedrockruntime::operation::converse_stream::ConverseStreamOutput as Response;
use aws_sdk_bedrockruntime::types::error::ConverseStreamOutputError;
use aws_sdk_bedrockruntime::types::{
    ContentBlock, ContentBlockDelta, ContentBlockStart, ConversationRole, ConverseStreamOutput,
    DocumentBlock, DocumentFormat, DocumentSource, ImageBlock, ImageFormat, ImageSource,
    InferenceConfiguration, Message, ReasoningContentBlockDelta, StopReason, SystemContentBlock,
    Tool, ToolConfiguration, ToolInputSchema, ToolResultBlock, ToolResultContentBlock,
    ToolSpecification, ToolUseBlock,
};
use aws_smithy_types::{Blob, Document, Number};
use bestchat_domain::message::FinishReason;
use serde_json::Value;

use crate::types::{
    ChatMessage, ChatRequest, ErrorKind, Part, ProviderError, StreamEvent, TokenUsage,
};

/// Starts a ConverseStream call; errors before the stream are mapped like HTTP statuses.
pub async fn open(
    client: &aws_sdk_bedrockruntime::Client,
    model: &str,
    request: &ChatRequest,
) -> Result<Source, ProviderError> {
    let mut call = client
        .converse_stream()
        .model_id(model)
        .set_messages(Some(messages(request)?));
    if let Some(system) = &request.system {
        call = call.system(SystemContentBlock::Text(system.clone()));
    }
    if !request.tools.is_empty() {
        let mut config = ToolConfiguration::builder();
        for tool in &request.tools {
            let spec = ToolSpecification::builder()
                .name(&tool.name)
                .description(&tool.description)
                .input_schema(ToolInputSchema::Json(document(&tool.parameters)))
                .build()
                .map_err(|e| ProviderError::new(ErrorKind::InvalidRequest, e.to_string()))?;
            config = config.tools(Tool::ToolSpec(spec));
        }
        call = call.tool_config(
            config
                .build()
                .map_err(|e| ProviderError::new(ErrorKind::InvalidRequest, e.to_string()))?,
        );
    }
    let mut inference = InferenceConfiguration::builder();
    if let Some(n) = request.max_output_tokens {
        inference = inference.max_tokens(i32::try_from(n).unwrap_or(i32::MAX));
    }
    if let Some(t) = request.temperature {
        inference = inference.temperature(t as f32);
    }
    if !request.stop.is_empty() {
        inference = inference.set_stop_sequences(Some(request.stop.clone()));
    }
    let response: Response = call
        .inference_config(inference.build())
        .send()
        .await
        .map_err(sdk_error)?;
    Ok(Source {
        response,
        open_tools: BTreeSet::new(),
        any_tools: false,
        finish: None,
    })
}

/// An image or document block; Converse takes the bytes themselves.
fn file_block(part: &Part, index: usize) -> Result<ContentBlock, ProviderError> {
    let invalid =
        |e: &dyn std::fmt::Display| ProviderError::new(ErrorKind::InvalidRequest, e.to_string());
    let bytes = Blob::new(part.data().to_vec());
    match part {
        Part::Image { media_type, .. } => {
            let format = media_type.strip_prefix("image/").unwrap_or("png");
            ImageBlock::builder()
                .format(ImageFormat::from(format))
                .source(ImageSource::Bytes(bytes))
                .build()
                .map(ContentBlock::Image)
                .map_err(|e| invalid(&e))
        }
        Part::Document {
            name, media_type, ..
        } => {
            let format = crate::attachments::bedrock_document_format(media_type)
                .ok_or_else(|| invalid(&format!("Converse takes no {media_type} document")))?;
            DocumentBlock::builder()
                .format(DocumentFormat::from(format))
                .name(crate::attachments::bedrock_document_name(name, index))
                .source(DocumentSource::Bytes(bytes))
                .build()
                .map(ContentBlock::Document)
                .map_err(|e| invalid(&e))
        }
    }
}

fn messages(request: &ChatRequest) -> Result<Vec<Message>, ProviderError> {
    let mut out: Vec<(ConversationRole, Vec<ContentBlock>)> = Vec::new();
    for message in &request.messages {
        let (role, blocks) = match message {
            ChatMessage::User { text, parts } => {
                let mut blocks = parts
                    .iter()
                    .enumerate()
                    .map(|(i, p)| file_block(p, i))
                    .collect::<Result<Vec<_>, _>>()?;
                blocks.push(ContentBlock::Text(text.clone()));
                (ConversationRole::User, blocks)
            }
            ChatMessage::Assistant { text, tool_calls } => {
                let mut blocks = Vec::new();
                if !text.is_empty() {
                    blocks.push(ContentBlock::Text(text.clone()));
                }
                for call in tool_calls {
                    blocks.push(ContentBlock::ToolUse(
                        ToolUseBlock::builder()
                            .tool_use_id(&call.id)
                            .name(&call.name)
                            .input(document(&call.arguments))
                            .build()
                            .map_err(|e| {
                                ProviderError::new(ErrorKind::InvalidRequest, e.to_string())
                            })?,
                    ));
                }
                (ConversationRole::Assistant, blocks)
            }
            ChatMessage::Tool {
                call_id, content, ..
            } => (
                ConversationRole::User,
                vec![ContentBlock::ToolResult(
                    ToolResultBlock::builder()
                        .tool_use_id(call_id)
                        .content(ToolResultContentBlock::Text(content.clone()))
                        .build()
                        .map_err(|e| {
                            ProviderError::new(ErrorKind::InvalidRequest, e.to_string())
                        })?,
                )],
            ),
        };
        match out.last_mut() {
            Some((last, existing)) if *last == role => existing.extend(blocks),
            _ => out.push((role, blocks)),
        }
    }
    out.into_iter()
        .map(|(role, content)| {
            Message::builder()
                .role(role)
                .set_content(Some(content))
                .build()
                .map_err(|e| ProviderError::new(ErrorKind::InvalidRequest, e.to_string()))
        })
        .collect()
}

/// JSON to the SDK's document type.
fn document(value: &Value) -> Document {
    match value {
        Value::Null => Document::Null,
        Value::Bool(b) => Document::Bool(*b),
        Value::Number(n) => Document::Number(match (n.as_u64(), n.as_i64()) {
            (Some(u), _) => Number::PosInt(u),
            (None, Some(i)) => Number::NegInt(i),
            _ => Number::Float(n.as_f64().unwrap_or_default()),
        }),
        Value::String(s) => Document::String(s.clone()),
        Value::Array(items) => Document::Array(items.iter().map(document).collect()),
        Value::Object(map) => {
            Document::Object(map.iter().map(|(k, v)| (k.clone(), document(v))).collect())
        }
    }
}

/// Operation errors name their code `ThrottlingException`; stream exceptions
/// `throttlingException`.
fn kind_of(code: Option<&str>) -> ErrorKind {
    match code.map(str::to_ascii_lowercase).as_deref() {
        Some("throttlingexception") => ErrorKind::RateLimited,
        Some("serviceunavailableexception" | "modelnotreadyexception") => ErrorKind::Overloaded,
        Some("internalserverexception" | "modelerrorexception") => ErrorKind::Server,
        Some("modeltimeoutexception") => ErrorKind::Timeout,
        Some("validationexception") => ErrorKind::InvalidRequest,
        Some("accessdeniedexception") => ErrorKind::Auth,
        Some("resourcenotfoundexception") => ErrorKind::NotFound,
        Some("modelstreamerrorexception") => ErrorKind::Stream,
        _ => ErrorKind::Stream,
    }
}

fn sdk_error<E: ProvideErrorMetadata + std::error::Error + 'static, R>(
    e: SdkError<E, R>,
) -> ProviderError
where
    R: std::fmt::Debug,
{
    match &e {
        SdkError::DispatchFailure(_) => ProviderError::new(ErrorKind::Connect, e.to_string()),
        SdkError::TimeoutError(_) => ProviderError::new(ErrorKind::Timeout, e.to_string()),
        SdkError::ServiceError(service) => {
            let err = service.err();
            let mut error = ProviderError::new(
                kind_of(err.code()),
                err.message()
                    .unwrap_or("Bedrock refused the request")
                    .to_owned(),
            );
            error.status = None;
            error
        }
        _ => ProviderError::new(ErrorKind::Protocol, e.to_string()),
    }
}

/// Exceptions inside the stream carry their kind in the variant, not in an error code.
fn stream_error<R: std::fmt::Debug>(e: SdkError<ConverseStreamOutputError, R>) -> ProviderError {
    let SdkError::ServiceError(service) = &e else {
        return sdk_error(e);
    };
    let err = service.err();
    let kind = match err {
        ConverseStreamOutputError::ThrottlingException(_) => ErrorKind::RateLimited,
        ConverseStreamOutputError::ServiceUnavailableException(_) => ErrorKind::Overloaded,
        ConverseStreamOutputError::InternalServerException(_) => ErrorKind::Server,
        ConverseStreamOutputError::ValidationException(_) => ErrorKind::InvalidRequest,
        _ => kind_of(err.code()),
    };
    ProviderError::new(
        kind,
        err.message().unwrap_or("Bedrock stream error").to_owned(),
    )
}

pub struct Source {
    response: Response,
    open_tools: BTreeSet<u32>,
    any_tools: bool,
    finish: Option<FinishReason>,
}

impl Source {
    /// Reads one event; the stream's end after `messageStop` completes the answer.
    pub async fn pull(&mut self, silent_until: tokio::time::Instant, out: &mut Vec<StreamEvent>) {
        let event = match tokio::time::timeout_at(silent_until, self.response.stream.recv()).await {
            Err(_) => {
                return out.push(StreamEvent::Error(ProviderError::new(
                    ErrorKind::Idle,
                    "the provider went silent",
                )));
            }
            Ok(Err(e)) => return out.push(StreamEvent::Error(stream_error(e))),
            Ok(Ok(None)) => {
                return match self.finish.take() {
                    Some(reason) => self.complete(reason, None, out),
                    None => out.push(StreamEvent::Error(ProviderError::incomplete())),
                };
            }
            Ok(Ok(Some(event))) => event,
        };
        match event {
            ConverseStreamOutput::ContentBlockStart(e) => {
                if let Some(ContentBlockStart::ToolUse(tool)) = e.start {
                    let index = u32::try_from(e.content_block_index).unwrap_or_default();
                    self.open_tools.insert(index);
                    self.any_tools = true;
                    out.push(StreamEvent::ToolCallStart {
                        index,
                        id: tool.tool_use_id,
                        name: tool.name,
                    });
                }
            }
            ConverseStreamOutput::ContentBlockDelta(e) => {
                let index = u32::try_from(e.content_block_index).unwrap_or_default();
                match e.delta {
                    Some(ContentBlockDelta::Text(text)) if !text.is_empty() => {
                        out.push(StreamEvent::TextDelta(text));
                    }
                    Some(ContentBlockDelta::ToolUse(tool)) if !tool.input.is_empty() => {
                        out.push(StreamEvent::ToolCallDelta {
                            index,
                            arguments: tool.input,
                        });
                    }
                    Some(ContentBlockDelta::ReasoningContent(
                        ReasoningContentBlockDelta::Text(text),
                    )) if !text.is_empty() => out.push(StreamEvent::ReasoningDelta(text)),
                    _ => {}
                }
            }
            ConverseStreamOutput::ContentBlockStop(e) => {
                let index = u32::try_from(e.content_block_index).unwrap_or_default();
                if self.open_tools.remove(&index) {
                    out.push(StreamEvent::ToolCallEnd { index });
                }
            }
            ConverseStreamOutput::MessageStop(e) => {
                self.finish = Some(match e.stop_reason {
                    StopReason::MaxTokens | StopReason::ModelContextWindowExceeded => {
                        FinishReason::Length
                    }
                    StopReason::ToolUse => FinishReason::ToolCalls,
                    StopReason::ContentFiltered | StopReason::GuardrailIntervened => {
                        FinishReason::ContentFilter
                    }
                    StopReason::MalformedModelOutput | StopReason::MalformedToolUse => {
                        FinishReason::Error
                    }
                    _ if self.any_tools => FinishReason::ToolCalls,
                    _ => FinishReason::Stop,
                });
            }
            ConverseStreamOutput::Metadata(e) => {
                let usage = e.usage.map(|u| {
                    let cached = u.cache_read_input_tokens.unwrap_or(0);
                    let written = u.cache_write_input_tokens.unwrap_or(0);
                    TokenUsage {
                        input_tokens: count(u.input_tokens + cached + written),
                        output_tokens: count(u.output_tokens),
                        cached_tokens: count(cached),
                        reasoning_tokens: 0,
                    }
                });
                let reason = self.finish.take().unwrap_or(FinishReason::Stop);
                self.complete(reason, usage, out);
            }
            _ => {}
        }
    }

    fn complete(
        &mut self,
        reason: FinishReason,
        usage: Option<TokenUsage>,
        out: &mut Vec<StreamEvent>,
    ) {
        for index in std::mem::take(&mut self.open_tools) {
            out.push(StreamEvent::ToolCallEnd { index });
        }
        if let Some(usage) = usage {
            out.push(StreamEvent::Usage(usage));
        }
        out.push(StreamEvent::Finish(reason));
    }
}

fn count(n: i32) -> u32 {
    u32::try_from(n).unwrap_or_default()
}

#[cfg(test)]
mod tests {
    use super::*;
    use bestchat_domain::message::ToolCall;
    use serde_json::json;

    #[test]
    fn parallel_calls_go_as_tool_use_blocks_and_their_results_in_one_user_turn() {
        let call = |id: &str| ToolCall {
            id: id.into(),
            name: "get_weather".into(),
            arguments: json!({"city": id, "days": 2, "metric": true}),
            signature: None,
        };
        let result = |id: &str| ChatMessage::Tool {
            call_id: id.into(),
            name: "get_weather".into(),
            content: format!("result {id}"),
        };
        let request = ChatRequest {
            messages: vec![
                ChatMessage::user("weather?"),
                ChatMessage::Assistant {
                    text: String::new(),
                    tool_calls: vec![call("a"), call("b")],
                },
                result("a"),
                result("b"),
            ],
            ..ChatRequest::default()
        };
        let messages = messages(&request).unwrap();
        assert_eq!(messages.len(), 3);
        let uses: Vec<&ToolUseBlock> = messages[1]
            .content()
            .iter()
            .filter_map(|b| b.as_tool_use().ok())
            .collect();
        assert_eq!(
            uses.iter().map(|u| u.tool_use_id()).collect::<Vec<_>>(),
            ["a", "b"]
        );
        assert_eq!(
            uses[0].input(),
            &document(&json!({"city": "a", "days": 2, "metric": true}))
        );
        assert_eq!(messages[2].role(), &ConversationRole::User);
        let results: Vec<&str> = messages[2]
            .content()
            .iter()
            .filter_map(|b| b.as_tool_result().ok())
            .map(ToolResultBlock::tool_use_id)
            .collect();
        assert_eq!(results, ["a", "b"]);
    }
}
