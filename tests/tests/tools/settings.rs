//! Auto-approval rules over HTTP: the defaults, a change kept per user, and the rules no user
//! may set (destructive never runs without asking).

use bestchat_tests::api::{Api, assert_error};
use bestchat_tests::gateway::sqlite;
use serde_json::json;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn rules_default_change_per_user_and_refuse_what_is_unsafe() {
    let running = sqlite(&[]).await;
    let (ana, bo) = (
        Api::new(&running.gateway, "ana"),
        Api::new(&running.gateway, "bo"),
    );
    let defaults = json!({
        "risk": {"read": "auto", "write": "ask", "network": "ask", "exec": "ask", "destructive": "ask"},
        "tools": {},
        "max_auto_per_turn": 5
    });
    let (status, body) = ana.get("/api/settings/auto-approval").await;
    assert_eq!((status.as_u16(), &body), (200, &defaults));

    let mine = json!({
        "risk": {"read": "auto", "write": "deny", "network": "auto", "exec": "ask", "destructive": "ask"},
        "tools": {"run_javascript": "auto", "http_fetch": "ask"},
        "max_auto_per_turn": 12
    });
    let (status, body) = ana.put("/api/settings/auto-approval", &mine).await;
    assert_eq!((status.as_u16(), &body), (200, &mine));
    let (_, body) = ana.get("/api/settings/auto-approval").await;
    assert_eq!(body, mine);
    let (_, theirs) = bo.get("/api/settings/auto-approval").await;
    assert_eq!(theirs, defaults, "one user's rules are not another's");

    let mut unsafe_rules = mine.clone();
    unsafe_rules["risk"]["destructive"] = json!("auto");
    let (status, body) = ana.put("/api/settings/auto-approval", &unsafe_rules).await;
    assert_error(status, &body, 422, "validation_failed");
    for bad in [
        json!({"risk": {"read": "auto"}, "tools": {}, "max_auto_per_turn": 1}),
        json!({"risk": mine["risk"], "tools": {}, "max_auto_per_turn": 101}),
        json!({"risk": mine["risk"], "tools": {"Bad Name": "auto"}, "max_auto_per_turn": 1}),
        json!({"risk": mine["risk"], "tools": {"calculator": "sometimes"}, "max_auto_per_turn": 1}),
    ] {
        let (status, body) = ana.put("/api/settings/auto-approval", &bad).await;
        assert_error(status, &body, 422, "validation_failed");
    }
    let (_, body) = ana.get("/api/settings/auto-approval").await;
    assert_eq!(body, mine, "refused changes change nothing");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn fetch_hosts_are_host_names_kept_per_user() {
    let running = sqlite(&[]).await;
    let (ana, bo) = (
        Api::new(&running.gateway, "ana"),
        Api::new(&running.gateway, "bo"),
    );
    let (status, body) = ana.get("/api/settings/fetch-hosts").await;
    assert_eq!((status.as_u16(), &body), (200, &json!({"hosts": []})));
    let (status, body) = ana
        .put(
            "/api/settings/fetch-hosts",
            &json!({"hosts": ["docs.rs", "*.wikipedia.org", "docs.rs"]}),
        )
        .await;
    assert_eq!(status.as_u16(), 200, "{body}");
    assert_eq!(body, json!({"hosts": ["*.wikipedia.org", "docs.rs"]}));
    let (_, theirs) = bo.get("/api/settings/fetch-hosts").await;
    assert_eq!(theirs, json!({"hosts": []}));
    for bad in [
        json!({"hosts": ["https://docs.rs"]}),
        json!({"hosts": ["docs.rs:443"]}),
        json!({"hosts": ["*"]}),
        json!({"hosts": ["Docs.rs"]}),
        json!({"hosts": vec!["a.example"; 33]}),
        json!({"hosts": "docs.rs"}),
    ] {
        let (status, body) = ana.put("/api/settings/fetch-hosts", &bad).await;
        assert_error(status, &body, 422, "validation_failed");
    }
    let (_, kept) = ana.get("/api/settings/fetch-hosts").await;
    assert_eq!(kept, json!({"hosts": ["*.wikipedia.org", "docs.rs"]}));
}
