//! `run_javascript`: runs a script in Boa (an ECMAScript engine written in Rust) inside the
//! sandbox, so the script has what the sandbox allows and nothing more: no files, no network,
//! no environment, its CPU and memory capped by the executor.
//!
//! Arguments: `{"code": "…"}`. Result: `{"result": <the last expression's value as JSON, or its
//! string form>, "console": ["…", …]}` — `console.log` lines, capped — or, when the script
//! throws, `{"error": "Uncaught …", "console": […]}`.

use std::cell::RefCell;

use boa_engine::object::ObjectInitializer;
use boa_engine::property::Attribute;
use boa_engine::{Context, JsResult, JsValue, NativeFunction, Source, js_string};
use serde_json::{Value, json};

/// Longest script read.
const MAX_CODE_CHARS: usize = 100_000;
/// `console.log` lines kept, and characters per line.
const MAX_CONSOLE_LINES: usize = 200;
const MAX_LINE_CHARS: usize = 2_000;
/// Deepest JavaScript recursion before Boa throws a RangeError (below the wasm stack).
const MAX_RECURSION: usize = 400;

thread_local! {
    static CONSOLE: RefCell<Vec<String>> = const { RefCell::new(Vec::new()) };
}

fn main() {
    bestchat_tool_sdk::run(|args| {
        let code = args["code"].as_str().ok_or("code must be a string")?;
        if code.chars().count() > MAX_CODE_CHARS {
            return Err(format!("code is longer than {MAX_CODE_CHARS} characters"));
        }
        Ok(run(code))
    });
}

fn run(code: &str) -> Value {
    let mut context = Context::default();
    context
        .runtime_limits_mut()
        .set_recursion_limit(MAX_RECURSION);
    if let Err(e) = install_console(&mut context) {
        return json!({ "error": format!("cannot set up console: {e}") });
    }
    let outcome = context.eval(Source::from_bytes(code));
    let console = CONSOLE.with(|lines| std::mem::take(&mut *lines.borrow_mut()));
    match outcome {
        Ok(value) => json!({ "result": to_json(&value, &mut context), "console": console }),
        Err(error) => json!({ "error": format!("Uncaught {error}"), "console": console }),
    }
}

/// The value as JSON where it has a JSON form; otherwise (functions, symbols, cycles) its
/// string form, so the model always sees something.
fn to_json(value: &JsValue, context: &mut Context) -> Value {
    if value.is_undefined() {
        return Value::Null;
    }
    match value.to_json(context) {
        Ok(Some(json)) => json,
        _ => Value::String(value.display().to_string()),
    }
}

fn install_console(context: &mut Context) -> JsResult<()> {
    let log = NativeFunction::from_fn_ptr(console_log);
    let console = ObjectInitializer::new(context)
        .function(log.clone(), js_string!("log"), 0)
        .function(log.clone(), js_string!("info"), 0)
        .function(log.clone(), js_string!("warn"), 0)
        .function(log, js_string!("error"), 0)
        .build();
    context.register_global_property(js_string!("console"), console, Attribute::all())
}

fn console_log(_this: &JsValue, args: &[JsValue], context: &mut Context) -> JsResult<JsValue> {
    let mut parts = Vec::with_capacity(args.len());
    for arg in args {
        parts.push(match arg.as_string() {
            Some(text) => text.to_std_string_escaped(),
            None => match arg.to_json(context) {
                Ok(Some(json)) if arg.is_object() => json.to_string(),
                _ => arg.display().to_string(),
            },
        });
    }
    let line: String = parts.join(" ").chars().take(MAX_LINE_CHARS).collect();
    CONSOLE.with(|lines| {
        let mut lines = lines.borrow_mut();
        if lines.len() < MAX_CONSOLE_LINES {
            lines.push(line);
        }
    });
    Ok(JsValue::undefined())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_last_value_and_the_console_come_back() {
        let out = run("console.log('hi', 1 + 1, {a: [1]}); [1, 2, 3].map(x => x * 2)");
        assert_eq!(out["result"], json!([2, 4, 6]));
        assert_eq!(out["console"], json!(["hi 2 {\"a\":[1]}"]));
    }

    #[test]
    fn a_throw_is_the_tools_error() {
        let out = run("throw new TypeError('nope')");
        assert!(
            out["error"].as_str().unwrap_or_default().contains("nope"),
            "{out}"
        );
    }

    #[test]
    fn deep_recursion_is_a_range_error_not_a_crash() {
        let out = run("function f(n) { return f(n + 1) } f(0)");
        assert!(out["error"].as_str().is_some(), "{out}");
    }

    #[test]
    fn functions_come_back_as_their_text() {
        let out = run("(function named() {})");
        assert!(
            out["result"].as_str().unwrap_or_default().contains("named"),
            "{out}"
        );
    }
}
