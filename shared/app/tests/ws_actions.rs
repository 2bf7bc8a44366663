//! The WebSocket action decoder under arbitrary frames, a bounded number of cases per run: it
//! never panics, refuses with a 4xx code, refuses NUL anywhere, and accepts only the actions
//! API.md lists.
#![allow(clippy::expect_used)]

use bestchat_app::ws::decode_action;
use bestchat_domain::ErrorCode;
use proptest::prelude::*;
use serde_json::{Map, Value, json};

/// The actions the contract lists, so a new action is covered the day it is added.
fn actions() -> &'static [&'static str] {
    static ACTIONS: std::sync::OnceLock<Vec<&'static str>> = std::sync::OnceLock::new();
    ACTIONS.get_or_init(bestchat_app::openapi::client_actions)
}

#[test]
fn the_contracts_actions_are_read() {
    assert!(actions().contains(&"approveTool"), "{:?}", actions());
}

fn json_value() -> impl Strategy<Value = Value> {
    let leaf = prop_oneof![
        Just(Value::Null),
        any::<bool>().prop_map(Value::Bool),
        any::<i64>().prop_map(Value::from),
        any::<u64>().prop_map(Value::from),
        any::<f64>()
            .prop_filter("finite", |f| f.is_finite())
            .prop_map(Value::from),
        "\\PC{0,12}".prop_map(Value::String),
        Just(json!("00000000-0000-0000-0000-000000000000")),
        Just(json!("a\u{0}b")),
    ];
    leaf.prop_recursive(4, 32, 6, |inner| {
        prop_oneof![
            proptest::collection::vec(inner.clone(), 0..6).prop_map(Value::Array),
            proptest::collection::btree_map("[a-z_]{1,16}", inner, 0..6)
                .prop_map(|m| Value::Object(m.into_iter().collect())),
        ]
    })
}

/// Frames shaped like actions: a known or unknown `action` and fields of every kind.
fn action_frame() -> impl Strategy<Value = String> {
    let name = prop_oneof![
        proptest::sample::select(actions()).prop_map(str::to_owned),
        "[A-Za-z$]{0,12}",
    ];
    let field = prop_oneof![
        Just("conversation_id".to_owned()),
        Just("message_id".to_owned()),
        Just("client_message_id".to_owned()),
        Just("content".to_owned()),
        Just("after_seq".to_owned()),
        Just("provider".to_owned()),
        Just("model".to_owned()),
        Just("tool_execution_id".to_owned()),
        Just("decision".to_owned()),
        "[a-z_]{1,10}",
    ];
    (name, proptest::collection::vec((field, json_value()), 0..6)).prop_map(|(name, fields)| {
        let mut map: Map<String, Value> = fields.into_iter().collect();
        map.insert("action".into(), Value::String(name));
        Value::Object(map).to_string()
    })
}

fn check(frame: &str) -> Result<(), TestCaseError> {
    match decode_action(frame) {
        Ok(_) => {
            let value: Value = serde_json::from_str(frame).expect("accepted frames are JSON");
            let action = value["action"].as_str().unwrap_or_default();
            prop_assert!(actions().contains(&action));
            prop_assert!(!frame.contains("\\u0000"));
        }
        Err(e) => {
            prop_assert!(
                matches!(
                    e.code,
                    ErrorCode::InvalidRequest
                        | ErrorCode::InvalidJson
                        | ErrorCode::ValidationFailed
                ),
                "{:?}",
                e
            );
            prop_assert!((400..500).contains(&e.code.http_status()));
            prop_assert!(!e.message.is_empty());
        }
    }
    Ok(())
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 512, failure_persistence: None, ..ProptestConfig::default() })]

    #[test]
    fn action_shaped_frames_decode_or_are_refused_with_a_client_error(frame in action_frame()) {
        check(&frame)?;
        if frame.contains("\\u0000") {
            prop_assert_eq!(decode_action(&frame).unwrap_err().code, ErrorCode::ValidationFailed);
        }
    }

    #[test]
    fn any_text_decodes_or_is_refused_with_a_client_error(frame in "\\PC{0,200}") {
        check(&frame)?;
    }
}
