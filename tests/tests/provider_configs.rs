//! Providers and per-user provider configurations end to end over real HTTP: the catalog, keys
//! sealed at rest and shown only by their last four characters, custom providers, model lists
//! discovered from the provider and cached, and the audit trail.

use bestchat_tests::api::{Api, assert_error};
use bestchat_tests::fake_provider::{FakeProvider, Reply};
use bestchat_tests::gateway::{Running, postgres, sqlite};
use reqwest::StatusCode;
use serde_json::{Value, json};

macro_rules! on_both_stores {
    ($($case:ident),* $(,)?) => {
        mod sqlite {
            $( #[tokio::test] async fn $case() { let r = super::sqlite(&[]).await; super::$case(&r).await; } )*
        }
        mod postgres {
            $( #[tokio::test] async fn $case() { let r = super::postgres(&[]).await; super::$case(&r).await; } )*
        }
    };
}

on_both_stores!(
    the_catalog_is_listed_with_prices,
    an_unusable_provider_is_refused_with_its_reason,
    keys_are_sealed_and_shown_by_last_four_only,
    custom_providers_need_a_protocol_and_base_url,
    catalog_rules_are_enforced,
    configs_are_private_to_their_user,
    discovered_models_are_cached,
);

const KEY: &str = "sk-proj-TOPSECRET-0123456789abcdefWXYZ";

fn find<'a>(items: &'a Value, id: &str) -> &'a Value {
    items["items"]
        .as_array()
        .unwrap()
        .iter()
        .find(|p| p["id"] == id || p["provider"] == id)
        .unwrap_or_else(|| panic!("{id} not listed: {items}"))
}

/// Audit entries recorded for `user`, read straight from the database.
async fn audit_actions(running: &Running) -> Vec<String> {
    running
        .text_rows("SELECT action FROM audit_log ORDER BY created_at, id")
        .await
        .into_iter()
        .map(|mut row| row.remove(0))
        .collect()
}

async fn the_catalog_is_listed_with_prices(running: &Running) {
    let api = Api::new(&running.gateway, "alice");
    let (status, providers) = api.get("/api/providers").await;
    assert_eq!(status, StatusCode::OK);
    assert!(providers["items"].as_array().unwrap().len() >= 20);
    let openai = find(&providers, "openai");
    assert_eq!(openai["protocol"], "openai");
    assert_eq!(openai["base_url"], "https://api.openai.com/v1");
    assert_eq!(openai["requires_key"], true);
    assert_eq!(openai["configured"], false);
    let mini = openai["models"]
        .as_array()
        .unwrap()
        .iter()
        .find(|m| m["id"] == "gpt-4o-mini")
        .unwrap();
    assert_eq!(mini["provider"], "openai");
    assert_eq!(mini["context_window"], 128_000);
    assert_eq!(mini["input_price_per_mtok"], 150_000);
    let echo = find(&providers, "echo");
    assert_eq!(echo["configured"], true);
    assert_eq!(echo["usable"], true);
    assert!(echo.get("unavailable").is_none(), "{echo}");
    // The server's default, which a client offers first, is one this user can use.
    assert_eq!(
        providers["default"],
        json!({"provider": "echo", "model": "echo-1"})
    );
    // Each provider that cannot be used says why, in a code and a sentence.
    for (id, code) in [
        ("openai", "needs_key"),
        // Bedrock bills the operator's AWS account: off until the operator turns it on.
        ("bedrock", "turned_off_by_operator"),
        // A server on the user's own machine: nothing to call until they set it up.
        ("ollama", "needs_setup"),
        ("vllm", "needs_setup"),
    ] {
        let p = find(&providers, id);
        assert_eq!(p["usable"], false, "{p}");
        assert_eq!(p["unavailable"]["code"], code, "{p}");
        assert!(
            p["unavailable"]["message"]
                .as_str()
                .is_some_and(|m| m.contains(id)),
            "{p}"
        );
    }
    // Only what the user can call right now.
    let usable_providers = |models: &Value| -> Vec<String> {
        models["items"]
            .as_array()
            .unwrap()
            .iter()
            .map(|m| m["provider"].as_str().unwrap().to_owned())
            .collect()
    };
    let (_, models) = api.get("/api/models").await;
    let usable = usable_providers(&models);
    assert!(usable.contains(&"echo".to_owned()));
    for unusable in ["openai", "bedrock", "ollama"] {
        assert!(!usable.contains(&unusable.to_owned()), "{unusable}");
    }
    // Turned on (a config of the user's own), the local server is usable; turned off, it
    // says so; reset, it needs setting up again.
    let (status, _) = api
        .put("/api/provider-configs/ollama", &json!({"enabled": true}))
        .await;
    assert_eq!(status, StatusCode::OK);
    let (_, providers) = api.get("/api/providers").await;
    assert_eq!(find(&providers, "ollama")["usable"], true);
    let (_, models) = api.get("/api/models").await;
    assert!(usable_providers(&models).contains(&"ollama".to_owned()));
    api.put("/api/provider-configs/ollama", &json!({"enabled": false}))
        .await;
    let (_, providers) = api.get("/api/providers").await;
    assert_eq!(
        find(&providers, "ollama")["unavailable"]["code"],
        "disabled"
    );
    let (status, _) = api.delete("/api/provider-configs/ollama").await;
    assert_eq!(status, StatusCode::NO_CONTENT);
}

/// A conversation on a provider the user cannot use fails before any call, with the reason the
/// providers list gives.
async fn an_unusable_provider_is_refused_with_its_reason(running: &Running) {
    let api = Api::new(&running.gateway, "zoe");
    let (status, conversation) = api
        .post(
            "/api/conversations",
            &json!({"provider": "bedrock", "model": "us.anthropic.claude-sonnet-4-5-20250929-v1:0"}),
        )
        .await;
    assert_eq!(status, StatusCode::CREATED, "{conversation}");
    let id = conversation["id"].as_str().unwrap();
    let (status, sent) = api
        .post(
            &format!("/api/conversations/{id}/messages"),
            &json!({"client_message_id": "b-1", "content": "hello"}),
        )
        .await;
    assert_eq!(status, StatusCode::ACCEPTED, "{sent}");
    let answer = sent["assistant_message"]["id"].as_str().unwrap();
    let path = format!("/api/conversations/{id}/messages/{answer}");
    let mut stored = Value::Null;
    for _ in 0..100 {
        stored = api.get(&path).await.1;
        if stored["status"] == "error" {
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
    }
    assert_eq!(stored["status"], "error", "{stored}");
    assert_eq!(stored["error"]["code"], "provider_not_configured");
    assert!(
        stored["error"]["message"]
            .as_str()
            .is_some_and(|m| m.contains("turned off by the operator")),
        "{stored}"
    );
}

async fn keys_are_sealed_and_shown_by_last_four_only(running: &Running) {
    let api = Api::new(&running.gateway, "alice");
    let (status, config) = api
        .put(
            "/api/provider-configs/openai",
            &json!({"api_key": KEY, "default_model": "gpt-4o", "summary_model": "gpt-4o-mini"}),
        )
        .await;
    assert_eq!(status, StatusCode::OK, "{config}");
    assert_eq!(config["key_last4"], "WXYZ");
    assert_eq!(config["protocol"], "openai");
    assert_eq!(config["base_url"], "https://api.openai.com/v1");
    assert!(!config.to_string().contains("TOPSECRET"));
    let (_, providers) = api.get("/api/providers").await;
    assert_eq!(find(&providers, "openai")["configured"], true);
    let (_, models) = api.get("/api/models").await;
    assert!(models.to_string().contains("\"gpt-4o-mini\""));

    // Other fields change without touching the key; null removes it.
    let (_, config) = api
        .put("/api/provider-configs/openai", &json!({"enabled": false}))
        .await;
    assert_eq!(config["key_last4"], "WXYZ");
    assert_eq!(config["enabled"], false);
    let (_, listed) = api.get("/api/provider-configs").await;
    assert_eq!(find(&listed, "openai")["default_model"], "gpt-4o");
    assert_eq!(find(&listed, "openai")["summary_model"], "gpt-4o-mini");
    assert!(!listed.to_string().contains("TOPSECRET"));
    let (_, config) = api
        .put("/api/provider-configs/openai", &json!({"api_key": null}))
        .await;
    assert_eq!(config["key_last4"], Value::Null);

    let (status, _) = api.delete("/api/provider-configs/openai").await;
    assert_eq!(status, StatusCode::NO_CONTENT);
    let (status, body) = api.delete("/api/provider-configs/openai").await;
    assert_error(status, &body, 404, "provider_config_not_found");
    assert_eq!(
        audit_actions(running).await,
        vec![
            "provider_config.put",
            "provider_config.put",
            "provider_config.put",
            "provider_config.delete"
        ]
    );
}

async fn custom_providers_need_a_protocol_and_base_url(running: &Running) {
    let api = Api::new(&running.gateway, "alice");
    let (status, body) = api
        .put(
            "/api/provider-configs/my-vllm",
            &json!({"api_key": "k-1234"}),
        )
        .await;
    assert_error(status, &body, 422, "validation_failed");
    let (status, body) = api
        .put(
            "/api/provider-configs/my-vllm",
            &json!({"protocol": "openai"}),
        )
        .await;
    assert_error(status, &body, 422, "validation_failed");
    let (status, body) = api
        .put(
            "/api/provider-configs/my-vllm",
            &json!({"protocol": "bedrock", "base_url": "https://x.example/v1"}),
        )
        .await;
    assert_error(status, &body, 422, "validation_failed");
    let declared = json!({
        "protocol": "openai",
        "base_url": "https://llm.example.com/v1",
        "models": [{"id": "qwen3-32b", "context_window": 32768, "max_output_tokens": 4096,
                    "input_price_per_mtok": 100000, "output_price_per_mtok": 300000, "supports_tools": true}],
    });
    let (status, config) = api.put("/api/provider-configs/my-vllm", &declared).await;
    assert_eq!(status, StatusCode::OK, "{config}");
    assert_eq!(config["models"][0]["provider"], "my-vllm");
    let (_, providers) = api.get("/api/providers").await;
    let custom = find(&providers, "my-vllm");
    assert_eq!(custom["custom"], true);
    assert_eq!(
        custom["configured"], true,
        "a custom provider needs no key unless its server does"
    );
    let (_, models) = api.get("/api/models").await;
    let qwen = models["items"]
        .as_array()
        .unwrap()
        .iter()
        .find(|m| m["id"] == "qwen3-32b")
        .unwrap();
    assert_eq!(qwen["context_window"], 32768);
    assert_eq!(qwen["provider"], "my-vllm");
}

async fn catalog_rules_are_enforced(running: &Running) {
    let api = Api::new(&running.gateway, "alice");
    for (path, body) in [
        (
            "/api/provider-configs/openai",
            json!({"protocol": "anthropic"}),
        ),
        (
            "/api/provider-configs/bedrock",
            json!({"api_key": "AKIA-nope"}),
        ),
        (
            "/api/provider-configs/bedrock",
            json!({"base_url": "https://bedrock.example"}),
        ),
        (
            "/api/provider-configs/azure-openai",
            json!({"api_key": "az-key-1"}),
        ),
        (
            "/api/provider-configs/openai",
            json!({"base_url": "ftp://api.openai.com"}),
        ),
        ("/api/provider-configs/openai", json!({"api_key": ""})),
        ("/api/provider-configs/Not%20An%20Id", json!({})),
        (
            "/api/provider-configs/openai",
            json!({"models": [{"id": "m", "context_window": 10, "max_output_tokens": 100}]}),
        ),
        ("/api/provider-configs/openai", json!({"colour": "blue"})),
    ] {
        let (status, error) = api.put(path, &body).await;
        assert_error(status, &error, 422, "validation_failed");
    }
    let (status, error) = api
        .send(
            reqwest::Method::PUT,
            "/api/provider-configs/openai",
            Some("{"),
        )
        .await;
    assert_error(status, &error, 400, "invalid_json");
    // Azure works once it knows where the resource is.
    let (status, config) = api
        .put(
            "/api/provider-configs/azure-openai",
            &json!({"api_key": "az-key-1", "base_url": "https://my-resource.openai.azure.com/openai/v1"}),
        )
        .await;
    assert_eq!(status, StatusCode::OK, "{config}");
    let (_, listed) = api.get("/api/provider-configs").await;
    assert_eq!(
        listed["items"].as_array().unwrap().len(),
        1,
        "refused requests stored nothing"
    );
}

async fn configs_are_private_to_their_user(running: &Running) {
    let alice = Api::new(&running.gateway, "alice");
    let bob = Api::new(&running.gateway, "bob");
    alice
        .put("/api/provider-configs/anthropic", &json!({"api_key": KEY}))
        .await;
    let (_, listed) = bob.get("/api/provider-configs").await;
    assert_eq!(listed["items"], json!([]));
    let (_, providers) = bob.get("/api/providers").await;
    assert_eq!(find(&providers, "anthropic")["configured"], false);
    let (status, body) = bob.delete("/api/provider-configs/anthropic").await;
    assert_error(status, &body, 404, "provider_config_not_found");
    let (_, still) = alice.get("/api/provider-configs").await;
    assert_eq!(find(&still, "anthropic")["key_last4"], "WXYZ");
}

async fn discovered_models_are_cached(running: &Running) {
    let listing = json!({"object": "list", "data": [{"id": "llama3.2:3b", "object": "model"}, {"id": "qwen2.5:7b", "object": "model"}]});
    let server = FakeProvider::start(vec![], Reply::json(200, listing.to_string())).await;
    let api = Api::new(&running.gateway, "alice");
    let (status, _) = api
        .put("/api/provider-configs/homelab", &json!({"protocol": "openai", "base_url": format!("{}/v1", server.base_url), "api_key": "lab-key-42"}))
        .await;
    assert_eq!(status, StatusCode::OK);
    for _ in 0..3 {
        let (_, models) = api.get("/api/models").await;
        let ids: Vec<&str> = models["items"]
            .as_array()
            .unwrap()
            .iter()
            .filter(|m| m["provider"] == "homelab")
            .map(|m| m["id"].as_str().unwrap())
            .collect();
        assert_eq!(ids, vec!["llama3.2:3b", "qwen2.5:7b"]);
    }
    let asked = server.requests();
    assert_eq!(asked.len(), 1, "the list is cached");
    assert_eq!(asked[0].path, "/v1/models");
    assert_eq!(asked[0].header("authorization"), Some("Bearer lab-key-42"));
}

#[tokio::test]
async fn a_postgres_dump_holds_no_plaintext_key() {
    let running = postgres(&[]).await;
    let api = Api::new(&running.gateway, "alice");
    let (status, _) = api
        .put("/api/provider-configs/openai", &json!({"api_key": KEY}))
        .await;
    assert_eq!(status, StatusCode::OK);
    let db = running.db.as_ref().unwrap();
    let dump = std::process::Command::new("pg_dump")
        .arg("--data-only")
        .arg(db.url())
        .output()
        .unwrap();
    assert!(
        dump.status.success(),
        "{}",
        String::from_utf8_lossy(&dump.stderr)
    );
    let text = String::from_utf8_lossy(&dump.stdout);
    assert!(
        text.contains("provider_configs"),
        "the dump includes the table"
    );
    assert!(
        text.contains("WXYZ"),
        "the last four characters are stored for display"
    );
    assert!(!text.contains("TOPSECRET"), "no plaintext key in the dump");
    assert!(!text.contains(KEY));
}

#[tokio::test]
async fn operator_keys_serve_users_only_when_enabled() {
    let off = sqlite(&[("OPENAI_API_KEY", "sk-operator")]).await;
    let (_, providers) = Api::new(&off.gateway, "alice").get("/api/providers").await;
    assert_eq!(find(&providers, "openai")["configured"], false);
    let on = sqlite(&[
        ("OPENAI_API_KEY", "sk-operator"),
        ("BESTCHAT_ENV_KEYS", "1"),
    ])
    .await;
    let (_, providers) = Api::new(&on.gateway, "alice").get("/api/providers").await;
    assert_eq!(find(&providers, "openai")["configured"], true);
}

#[tokio::test]
async fn private_base_urls_can_be_refused() {
    let running = sqlite(&[("BESTCHAT_ALLOW_PRIVATE_PROVIDER_URLS", "0")]).await;
    let api = Api::new(&running.gateway, "alice");
    for url in [
        "http://169.254.169.254/latest",
        "http://localhost:11434/v1",
        "http://10.0.0.5/v1",
    ] {
        let (status, body) = api
            .put("/api/provider-configs/ollama", &json!({"base_url": url}))
            .await;
        assert_error(status, &body, 422, "validation_failed");
    }
    let (status, _) = api
        .put(
            "/api/provider-configs/ollama",
            &json!({"base_url": "https://ollama.example.com/v1"}),
        )
        .await;
    assert_eq!(status, StatusCode::OK);
}

/// Bedrock bills the operator: with it on, users see and may call only the models the operator
/// allowed (a cross-region profile of an allowed model is the same model); any other is
/// refused before a call, with the providers list's reason.
#[tokio::test]
async fn bedrock_offers_only_the_models_the_operator_allowed() {
    let running = sqlite(&[
        ("BESTCHAT_BEDROCK", "1"),
        (
            "BESTCHAT_BEDROCK_MODELS",
            "amazon.nova-micro-v1:0,anthropic.claude-haiku-4-5-20251001-v1:0",
        ),
    ])
    .await;
    let api = Api::new(&running.gateway, "zoe");
    let (_, providers) = api.get("/api/providers").await;
    let bedrock = find(&providers, "bedrock");
    assert_eq!(bedrock["usable"], true, "{bedrock}");
    let mut offered: Vec<&str> = bedrock["models"]
        .as_array()
        .unwrap()
        .iter()
        .map(|m| m["id"].as_str().unwrap())
        .collect();
    offered.sort_unstable();
    assert_eq!(
        offered,
        [
            "amazon.nova-micro-v1:0",
            "us.anthropic.claude-haiku-4-5-20251001-v1:0"
        ]
    );
    let (status, conversation) = api
        .post(
            "/api/conversations",
            &json!({"provider": "bedrock", "model": "us.anthropic.claude-sonnet-4-5-20250929-v1:0"}),
        )
        .await;
    assert_eq!(status, StatusCode::CREATED, "{conversation}");
    let id = conversation["id"].as_str().unwrap();
    let (_, sent) = api
        .post(
            &format!("/api/conversations/{id}/messages"),
            &json!({"client_message_id": "b-1", "content": "hello"}),
        )
        .await;
    let answer = sent["assistant_message"]["id"].as_str().unwrap();
    let path = format!("/api/conversations/{id}/messages/{answer}");
    let mut stored = Value::Null;
    for _ in 0..100 {
        stored = api.get(&path).await.1;
        if stored["status"] == "error" {
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
    }
    assert_eq!(
        stored["error"]["code"], "provider_not_configured",
        "{stored}"
    );
    assert!(
        stored["error"]["message"]
            .as_str()
            .is_some_and(|m| m.contains("turned off by the operator")),
        "{stored}"
    );
}
