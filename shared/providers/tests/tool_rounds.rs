//! A tool round on every JSON wire format: the tool definitions, an assistant turn with two
//! parallel calls, and both results, encoded as each provider's API reference shapes them.
#![allow(clippy::unwrap_used)]

use bestchat_domain::message::ToolCall;
use bestchat_providers::protocol::{anthropic, gemini, openai, responses};
use bestchat_providers::types::{ChatMessage, ChatRequest, ToolSpec};
use serde_json::{Value, json};

fn round() -> ChatRequest {
    let call = |id: &str, city: &str| ToolCall {
        id: id.into(),
        name: "get_weather".into(),
        arguments: json!({"city": city}),
        signature: (id == "call_1").then(|| "sig-1".to_owned()),
    };
    ChatRequest {
        messages: vec![
            ChatMessage::user("Weather in Lisbon and Porto?"),
            ChatMessage::Assistant {
                text: "Checking both.".into(),
                tool_calls: vec![call("call_1", "Lisbon"), call("call_2", "Porto")],
            },
            ChatMessage::Tool {
                call_id: "call_1".into(),
                name: "get_weather".into(),
                content: "{\"c\":21}".into(),
            },
            ChatMessage::Tool {
                call_id: "call_2".into(),
                name: "get_weather".into(),
                content: "{\"c\":18}".into(),
            },
        ],
        tools: vec![ToolSpec {
            name: "get_weather".into(),
            description: "Weather by city".into(),
            parameters: json!({"type": "object", "properties": {"city": {"type": "string"}}, "required": ["city"]}),
        }],
        ..ChatRequest::default()
    }
}

#[test]
fn openai_chat_sends_function_tools_calls_with_string_arguments_and_one_tool_message_each() {
    let body = openai::body(&round(), "gpt-x", "max_completion_tokens");
    assert_eq!(body["tools"][0]["type"], "function");
    assert_eq!(body["tools"][0]["function"]["name"], "get_weather");
    assert_eq!(
        body["tools"][0]["function"]["parameters"]["required"],
        json!(["city"])
    );
    let messages = body["messages"].as_array().unwrap();
    let assistant = &messages[1];
    assert_eq!(assistant["role"], "assistant");
    let calls = assistant["tool_calls"].as_array().unwrap();
    assert_eq!(calls.len(), 2);
    assert_eq!(
        (calls[0]["id"].as_str(), calls[0]["type"].as_str()),
        (Some("call_1"), Some("function"))
    );
    // Arguments travel as a JSON string, as the API requires.
    let arguments: Value =
        serde_json::from_str(calls[1]["function"]["arguments"].as_str().unwrap()).unwrap();
    assert_eq!(arguments, json!({"city": "Porto"}));
    let results: Vec<(&str, &str)> = messages[2..]
        .iter()
        .map(|m| {
            (
                m["tool_call_id"].as_str().unwrap(),
                m["content"].as_str().unwrap(),
            )
        })
        .collect();
    assert_eq!(
        results,
        [("call_1", "{\"c\":21}"), ("call_2", "{\"c\":18}")]
    );
    assert!(messages[2..].iter().all(|m| m["role"] == "tool"));
}

#[test]
fn responses_sends_function_call_items_and_their_outputs() {
    let body = responses::body(&round(), "gpt-x");
    assert_eq!(
        body["tools"][0],
        json!({"type": "function", "name": "get_weather", "description": "Weather by city",
        "parameters": round().tools[0].parameters})
    );
    let items = body["input"].as_array().unwrap();
    let kinds: Vec<&str> = items
        .iter()
        .map(|i| i["type"].as_str().unwrap_or("message"))
        .collect();
    assert_eq!(
        kinds,
        [
            "message",
            "message",
            "function_call",
            "function_call",
            "function_call_output",
            "function_call_output"
        ]
    );
    assert_eq!(items[3]["call_id"], "call_2");
    let arguments: Value = serde_json::from_str(items[3]["arguments"].as_str().unwrap()).unwrap();
    assert_eq!(arguments["city"], "Porto");
    assert_eq!(
        (items[5]["call_id"].as_str(), items[5]["output"].as_str()),
        (Some("call_2"), Some("{\"c\":18}"))
    );
}

#[test]
fn anthropic_sends_tool_use_blocks_and_both_results_in_one_user_turn() {
    let body = anthropic::body(&round(), "claude-x");
    assert_eq!(body["tools"][0]["name"], "get_weather");
    assert_eq!(body["tools"][0]["input_schema"]["type"], "object");
    let messages = body["messages"].as_array().unwrap();
    assert_eq!(
        messages.len(),
        3,
        "user, assistant, and one user turn with both results: {body}"
    );
    let blocks = messages[1]["content"].as_array().unwrap();
    let uses: Vec<&Value> = blocks.iter().filter(|b| b["type"] == "tool_use").collect();
    assert_eq!(uses.len(), 2);
    assert_eq!(
        uses[0]["input"],
        json!({"city": "Lisbon"}),
        "input is an object, not a string"
    );
    let results = messages[2]["content"].as_array().unwrap();
    assert_eq!(messages[2]["role"], "user");
    let ids: Vec<&str> = results
        .iter()
        .map(|r| r["tool_use_id"].as_str().unwrap())
        .collect();
    assert_eq!(ids, ["call_1", "call_2"]);
    assert!(results.iter().all(|r| r["type"] == "tool_result"));
}

#[test]
fn gemini_sends_function_declarations_calls_and_responses_together() {
    let body = gemini::body(&round());
    assert_eq!(
        body["tools"][0]["functionDeclarations"][0]["name"],
        "get_weather"
    );
    let contents = body["contents"].as_array().unwrap();
    assert_eq!(contents.len(), 3, "{body}");
    assert_eq!(contents[1]["role"], "model");
    let calls: Vec<&Value> = contents[1]["parts"]
        .as_array()
        .unwrap()
        .iter()
        .filter_map(|p| p.get("functionCall"))
        .collect();
    assert_eq!(calls.len(), 2);
    assert_eq!(calls[1]["args"], json!({"city": "Porto"}));
    // The thought signature goes back on its call's part, and only there.
    let parts = contents[1]["parts"].as_array().unwrap();
    let signed: Vec<&Value> = parts
        .iter()
        .filter_map(|p| p.get("thoughtSignature"))
        .collect();
    assert_eq!(signed, [&json!("sig-1")]);
    assert!(
        parts
            .iter()
            .any(|p| p.get("functionCall").is_some() && p["thoughtSignature"] == "sig-1")
    );
    let responses: Vec<&Value> = contents[2]["parts"]
        .as_array()
        .unwrap()
        .iter()
        .filter_map(|p| p.get("functionResponse"))
        .collect();
    assert_eq!(responses.len(), 2, "parallel responses travel in one turn");
    assert_eq!(responses[0]["name"], "get_weather");
    assert_eq!(responses[1]["response"]["content"], "{\"c\":18}");
}
