//! `word_count`: the whole tool interface in one file. The arguments (already checked against
//! manifest.json's schema) arrive as JSON on stdin; the result leaves as one JSON value on
//! stdout; `{"error": "…"}` is how a tool says it failed. Nothing else is available: no
//! files, no environment, no network.

use std::collections::HashMap;
use std::io::Read;

use serde_json::{Value, json};

fn main() {
    let mut input = String::new();
    let result = match std::io::stdin().read_to_string(&mut input) {
        Ok(_) => match serde_json::from_str::<Value>(&input) {
            Ok(args) => count(&args),
            Err(e) => json!({ "error": format!("the arguments are not JSON: {e}") }),
        },
        Err(e) => json!({ "error": format!("cannot read the arguments: {e}") }),
    };
    print!("{result}");
}

fn count(args: &Value) -> Value {
    let Some(text) = args["text"].as_str() else {
        return json!({ "error": "text must be a string" });
    };
    let top = args["top"].as_u64().unwrap_or(5) as usize;
    let mut frequency: HashMap<String, u64> = HashMap::new();
    let mut words = 0;
    for word in text.split_whitespace() {
        words += 1;
        let word: String = word
            .chars()
            .filter(|c| c.is_alphanumeric())
            .flat_map(char::to_lowercase)
            .collect();
        if !word.is_empty() {
            *frequency.entry(word).or_default() += 1;
        }
    }
    let mut ranked: Vec<(String, u64)> = frequency.into_iter().collect();
    ranked.sort_by(|a, b| b.1.cmp(&a.1).then_with(|| a.0.cmp(&b.0)));
    ranked.truncate(top);
    json!({
        "words": words,
        "lines": text.lines().count(),
        "characters": text.chars().count(),
        "top": ranked.into_iter().map(|(word, n)| json!({ "word": word, "count": n })).collect::<Vec<_>>(),
    })
}
