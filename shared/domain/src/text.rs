//! Text as it enters the system. PostgreSQL's `text` and `jsonb` cannot hold NUL, and a stored
//! value that cannot be written loses a message, so NUL never gets in: a client that sends it is
//! refused (422), and a provider's NUL is replaced.

use std::borrow::Cow;

use serde::de::DeserializeOwned;
use serde_json::Value;

use crate::error::{DomainError, ErrorCode};

/// What a provider's NUL becomes.
pub const NUL_REPLACEMENT: char = '\u{FFFD}';

/// `text` with every NUL replaced; borrowed when there is none.
pub fn replace_nul(text: &str) -> Cow<'_, str> {
    if text.contains('\0') {
        Cow::Owned(text.replace('\0', "\u{FFFD}"))
    } else {
        Cow::Borrowed(text)
    }
}

/// Like [`replace_nul`], in place.
pub fn replace_nul_owned(text: &mut String) {
    if text.contains('\0') {
        *text = text.replace('\0', "\u{FFFD}");
    }
}

/// Replaces NUL in every string and key of `value`.
pub fn replace_nul_in_json(value: &mut Value) {
    match value {
        Value::String(s) => replace_nul_owned(s),
        Value::Array(items) => items.iter_mut().for_each(replace_nul_in_json),
        Value::Object(map) if map.keys().any(|k| k.contains('\0')) => {
            let entries = std::mem::take(map);
            for (mut key, mut item) in entries {
                replace_nul_owned(&mut key);
                replace_nul_in_json(&mut item);
                map.insert(key, item);
            }
        }
        Value::Object(map) => map.values_mut().for_each(replace_nul_in_json),
        Value::Null | Value::Bool(_) | Value::Number(_) => {}
    }
}

/// Whether any string or key of `value` holds NUL.
pub fn json_has_nul(value: &Value) -> bool {
    match value {
        Value::String(s) => s.contains('\0'),
        Value::Array(items) => items.iter().any(json_has_nul),
        Value::Object(map) => map.iter().any(|(k, v)| k.contains('\0') || json_has_nul(v)),
        Value::Null | Value::Bool(_) | Value::Number(_) => false,
    }
}

/// Decodes a client's JSON body or frame: syntax errors (and nesting past serde_json's limit)
/// are 400 `invalid_json`; NUL anywhere, or well-formed JSON of the wrong shape, is 422.
pub fn decode_json<T: DeserializeOwned>(bytes: &[u8]) -> Result<T, DomainError> {
    if bytes.iter().all(u8::is_ascii_whitespace) {
        return Err(DomainError::new(
            ErrorCode::InvalidJson,
            "the request body must be a JSON object",
        ));
    }
    let value: Value = serde_json::from_slice(bytes)
        .map_err(|e| DomainError::new(ErrorCode::InvalidJson, public_serde_message(&e)))?;
    if json_has_nul(&value) {
        return Err(DomainError::validation(
            "text must not contain NUL (U+0000) characters",
        ));
    }
    serde_json::from_value(value).map_err(|e| DomainError::validation(public_serde_message(&e)))
}

/// serde's message without the line/column suffix, which means nothing to an API client.
fn public_serde_message(e: &serde_json::Error) -> String {
    let text = e.to_string();
    match text.rfind(" at line ") {
        Some(i) => text[..i].to_owned(),
        None => text,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[derive(Debug, serde::Deserialize)]
    #[allow(dead_code)]
    struct Shape {
        n: u32,
        s: Option<String>,
    }

    #[test]
    fn decoding_classifies_every_failure() {
        let code = |body: &str| decode_json::<Shape>(body.as_bytes()).unwrap_err().code;
        assert_eq!(code("{"), ErrorCode::InvalidJson);
        assert_eq!(code(""), ErrorCode::InvalidJson);
        assert_eq!(code(r#"{"n":1,"s":"\ud800"}"#), ErrorCode::InvalidJson);
        assert_eq!(code(&"[".repeat(10_000)), ErrorCode::InvalidJson);
        assert_eq!(code(r#"{"n":"x"}"#), ErrorCode::ValidationFailed);
        assert_eq!(code(r#"{"n":-1}"#), ErrorCode::ValidationFailed);
        assert_eq!(code(r#"{"n":1e400}"#), ErrorCode::InvalidJson);
        assert_eq!(
            code(r#"{"n":1,"s":"a\u0000b"}"#),
            ErrorCode::ValidationFailed
        );
        assert_eq!(code(r#"{"n":1,"x\u0000":1}"#), ErrorCode::ValidationFailed);
        let wrong = decode_json::<Shape>(br#"{"n":"x"}"#).unwrap_err();
        assert!(!wrong.message.contains("line"), "{}", wrong.message);
        assert_eq!(decode_json::<Shape>(br#"{"n":1}"#).unwrap().n, 1);
    }

    #[test]
    fn provider_nul_is_replaced_everywhere() {
        assert_eq!(replace_nul("a\0b"), "a\u{FFFD}b");
        assert!(matches!(replace_nul("ab"), Cow::Borrowed(_)));
        let mut v = json!({"a\u{0}": ["x\u{0}", {"k": "y\u{0}"}], "n": 1});
        assert!(json_has_nul(&v));
        replace_nul_in_json(&mut v);
        assert!(!json_has_nul(&v));
        assert_eq!(v["a\u{FFFD}"][1]["k"], "y\u{FFFD}");
    }
}
