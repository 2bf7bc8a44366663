//! A model's arguments checked against the tool's schema before anything runs: a call with bad
//! arguments goes back to the model as the tool's error, naming what is wrong.

use serde_json::Value;

/// Most problems reported for one call: enough for a model to fix its arguments.
pub const MAX_REPORTED_ERRORS: usize = 8;
/// Largest arguments accepted, serialized.
pub const MAX_ARGUMENT_BYTES: usize = 1024 * 1024;

/// A compiled argument schema.
pub struct Arguments {
    validator: jsonschema::Validator,
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ArgumentError {
    #[error("the tool's schema does not compile: {0}")]
    Schema(String),
    #[error("the arguments are larger than {MAX_ARGUMENT_BYTES} bytes")]
    TooLarge,
    #[error("the arguments do not match the tool's schema: {}", .0.join("; "))]
    Invalid(Vec<String>),
}

impl Arguments {
    pub fn compile(schema: &Value) -> Result<Self, ArgumentError> {
        jsonschema::validator_for(schema)
            .map(|validator| Self { validator })
            .map_err(|e| ArgumentError::Schema(e.to_string()))
    }

    pub fn check(&self, arguments: &Value) -> Result<(), ArgumentError> {
        if serde_json::to_vec(arguments).map_or(true, |b| b.len() > MAX_ARGUMENT_BYTES) {
            return Err(ArgumentError::TooLarge);
        }
        let problems: Vec<String> = self
            .validator
            .iter_errors(arguments)
            .take(MAX_REPORTED_ERRORS)
            .map(|e| {
                let at = e.instance_path().to_string();
                if at.is_empty() {
                    e.to_string()
                } else {
                    format!("{at}: {e}")
                }
            })
            .collect();
        if problems.is_empty() {
            Ok(())
        } else {
            Err(ArgumentError::Invalid(problems))
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn problems_are_named_with_where_they_are() {
        let args = Arguments::compile(&json!({
            "type": "object",
            "properties": {"n": {"type": "integer", "minimum": 1}, "s": {"type": "string"}},
            "required": ["n"],
            "additionalProperties": false
        }))
        .unwrap();
        assert_eq!(args.check(&json!({"n": 2})), Ok(()));
        let Err(ArgumentError::Invalid(problems)) = args.check(&json!({"n": 0, "s": 1, "x": true}))
        else {
            panic!("expected problems");
        };
        assert_eq!(problems.len(), 3, "{problems:?}");
        assert!(problems.iter().any(|p| p.starts_with("/n")), "{problems:?}");
        assert!(matches!(
            args.check(&json!({})),
            Err(ArgumentError::Invalid(_))
        ));
        assert!(matches!(
            args.check(&json!("not an object")),
            Err(ArgumentError::Invalid(_))
        ));
    }

    #[test]
    fn arguments_over_the_limit_are_refused_before_checking() {
        let args = Arguments::compile(&json!({"type": "object"})).unwrap();
        let big = json!({"x": "y".repeat(MAX_ARGUMENT_BYTES)});
        assert_eq!(args.check(&big), Err(ArgumentError::TooLarge));
    }
}
