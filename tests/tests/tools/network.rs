//! Network tools: only granted hosts, never a private address (whatever the grant says), a
//! redirect checked like the first hop, bodies cut at their limit.

use bestchat_tests::api::Api;
use bestchat_tests::fake_provider::{FakeProvider, Reply};
use bestchat_tests::gateway::sqlite;
use bestchat_tests::tools::{Executor, limits, registered};
use bestchat_tests::wasm::module;
use bestchat_tools::{ExecResponse, FailureKind, ModuleRef};
use serde_json::{Value, json};

fn probe_manifest(hosts: &[&str]) -> Value {
    json!({
        "name": "probe",
        "description": "fetches what it is told",
        "parameters": {"type": "object", "properties": {"url": {"type": "string"}}},
        "risk": "network",
        "grants": {"hosts": hosts}
    })
}

fn page(status: u16, content_type: &str, body: &str) -> Reply {
    Reply {
        status,
        headers: vec![("content-type".into(), content_type.into())],
        ..Reply::json(status, body.as_bytes().to_vec())
    }
}

/// Hosts a manifest may name; the guard refuses each of them anyway.
const PRIVATE_HOSTS: [&str; 7] = [
    "127.0.0.1",
    "::1",
    "localhost",
    "169.254.169.254",
    "10.0.0.1",
    "0.0.0.0",
    "::ffff:7f00:1",
];

fn failure_kind(out: &ExecResponse) -> Option<FailureKind> {
    match out {
        ExecResponse::Failed { failure, .. } => Some(failure.kind),
        ExecResponse::Ok { .. } => None,
    }
}

/// Every spelling of a private address the guard knows, granted by the manifest, is refused
/// by the guard; a host the manifest does not grant is refused before anything resolves.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn private_addresses_are_blocked_whatever_the_grant() {
    let running = sqlite(&[]).await;
    let (api, executor) = (
        Api::new(&running.gateway, "mallory"),
        Executor::of(&running.gateway),
    );
    let target = FakeProvider::start(vec![], page(200, "text/plain", "secret")).await;
    let port = target.base_url.rsplit(':').next().unwrap().to_owned();
    let probe = ModuleRef::Sha256(
        registered(&api, probe_manifest(&PRIVATE_HOSTS), module("fetch_probe")).await,
    );
    let spellings = [
        format!("http://127.0.0.1:{port}/"),
        format!("http://2130706433:{port}/"),
        format!("http://0x7f.0.0.1:{port}/"),
        format!("http://0177.0.0.1:{port}/"),
        format!("http://127.1:{port}/"),
        format!("http://[::1]:{port}/"),
        format!("http://[::ffff:127.0.0.1]:{port}/"),
        format!("http://localhost:{port}/"),
        "http://169.254.169.254/latest/meta-data/".to_owned(),
        "http://10.0.0.1/".to_owned(),
        "http://0.0.0.0/".to_owned(),
    ];
    for url in spellings {
        let grant = limits(|l| l.hosts = PRIVATE_HOSTS.map(String::from).to_vec());
        let out = executor
            .call(probe.clone(), json!({"url": url}), grant)
            .await;
        assert_eq!(
            failure_kind(&out),
            Some(FailureKind::BlockedAddress),
            "{url}: {out:?}"
        );
    }
    assert!(
        target.requests().is_empty(),
        "a private address was reached"
    );
    let out = executor
        .call(
            probe,
            json!({"url": "https://example.com/"}),
            limits(|l| l.hosts = vec!["docs.rs".into()]),
        )
        .await;
    assert_eq!(
        failure_kind(&out),
        Some(FailureKind::HostNotAllowed),
        "{out:?}"
    );
    executor.assert_still_serves().await;
}

/// Where private addresses are allowed (a laptop's setting), the grant still decides, every
/// redirect hop included, and bodies are cut at the limit.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn http_fetch_reads_granted_pages_and_checks_every_hop() {
    let running = sqlite(&[
        ("BESTCHAT_TOOL_FETCH_ALLOW_PRIVATE", "1"),
        ("BESTCHAT_TOOL_FETCH_MAX_BYTES", "4096"),
    ])
    .await;
    let executor = Executor::of(&running.gateway);
    let html = "<html><head><title>Docs</title><script>steal()</script></head>\
                <body><h1>Install</h1><p>Run <code>cargo add</code> &amp; build.</p></body></html>";
    let site = FakeProvider::start(vec![], page(200, "text/html; charset=utf-8", html)).await;
    let granted = |l: &mut bestchat_tools::Limits| l.hosts = vec!["127.0.0.1".into()];
    let grants = limits(granted);
    let out = executor
        .call(
            ModuleRef::Builtin("http_fetch".into()),
            json!({"url": format!("{}/docs", site.base_url)}),
            grants.clone(),
        )
        .await;
    let ExecResponse::Ok { output, .. } = out else {
        panic!("{out:?}")
    };
    assert_eq!(output["status"], 200);
    assert_eq!(
        output["text"], "Docs\nInstall\nRun cargo add & build.",
        "{output}"
    );
    assert_eq!(output["truncated"], false);

    // A body over the limit arrives cut, and says so.
    site.push(page(200, "text/plain", &"y".repeat(10_000)));
    let ExecResponse::Ok { output, .. } = executor
        .call(
            ModuleRef::Builtin("http_fetch".into()),
            json!({"url": site.base_url}),
            grants.clone(),
        )
        .await
    else {
        panic!("the long page should arrive cut");
    };
    assert_eq!(output["text"].as_str().unwrap().len(), 4096);
    assert_eq!(output["truncated"], true);

    // A redirect to a host outside the grant ends the call; to a granted one, it is followed.
    site.push(page(302, "text/plain", "").header("location", "http://localhost:9/elsewhere"));
    let out = executor
        .call(
            ModuleRef::Builtin("http_fetch".into()),
            json!({"url": site.base_url}),
            grants.clone(),
        )
        .await;
    assert_eq!(
        failure_kind(&out),
        Some(FailureKind::HostNotAllowed),
        "{out:?}"
    );
    site.push(page(301, "text/plain", "").header("location", "/moved"));
    site.push(page(200, "text/plain", "arrived"));
    let ExecResponse::Ok { output, .. } = executor
        .call(
            ModuleRef::Builtin("http_fetch".into()),
            json!({"url": site.base_url}),
            grants,
        )
        .await
    else {
        panic!("a granted redirect is followed");
    };
    assert_eq!(output["text"], "arrived");
    let paths: Vec<String> = site.requests().iter().map(|r| r.path.clone()).collect();
    assert_eq!(
        paths.last().map(String::as_str),
        Some("/moved"),
        "{paths:?}"
    );
}
