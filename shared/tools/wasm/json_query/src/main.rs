//! `json_query`: a JMESPath query (<https://jmespath.org>) over JSON given inline.
//!
//! Arguments: `{"query": "people[?age > `30`].name", "data": {...}}` (`data` may also be a
//! string holding JSON). Result: `{"result": <the query's value>}`.

use serde_json::{Value, json};

/// Longest query read.
const MAX_QUERY_CHARS: usize = 2_000;

fn main() {
    bestchat_tool_sdk::run(|args| query(&args));
}

fn query(args: &Value) -> Result<Value, String> {
    let expression = args["query"]
        .as_str()
        .ok_or("query must be a JMESPath string")?;
    if expression.chars().count() > MAX_QUERY_CHARS {
        return Err(format!("query is longer than {MAX_QUERY_CHARS} characters"));
    }
    let data = match &args["data"] {
        Value::String(text) => {
            serde_json::from_str(text).map_err(|e| format!("data is a string but not JSON: {e}"))?
        }
        Value::Null => return Err("data is required".into()),
        other => other.clone(),
    };
    let compiled = jmespath::compile(expression)
        .map_err(|e| format!("the query is not valid JMESPath: {e}"))?;
    let found = compiled
        .search(data)
        .map_err(|e| format!("the query failed: {e}"))?;
    let result =
        serde_json::to_value(&*found).map_err(|e| format!("the result is not JSON: {e}"))?;
    Ok(json!({ "result": result }))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn queries_filter_project_and_compute() {
        let data = json!({"people": [{"name": "Ana", "age": 34}, {"name": "Bo", "age": 25}, {"name": "Cy", "age": 41}]});
        let run = |q: &str| query(&json!({"query": q, "data": data})).unwrap()["result"].clone();
        assert_eq!(run("people[?age > `30`].name"), json!(["Ana", "Cy"]));
        assert_eq!(run("max_by(people, &age).name"), json!("Cy"));
        assert_eq!(run("length(people)"), json!(3));
        assert_eq!(run("people[0].missing"), Value::Null);
        let as_text = query(&json!({"query": "a.b", "data": "{\"a\": {\"b\": [1, 2]}}"})).unwrap();
        assert_eq!(as_text["result"], json!([1, 2]));
    }

    #[test]
    fn bad_queries_and_data_are_explained() {
        for bad in [
            json!({"query": "people[?", "data": {}}),
            json!({"query": 1, "data": {}}),
            json!({"query": "a"}),
            json!({"query": "a", "data": "{not json"}),
            json!({"query": "abs(`\"x\"`)", "data": {}}),
        ] {
            assert!(query(&bad).is_err(), "{bad}");
        }
    }
}
