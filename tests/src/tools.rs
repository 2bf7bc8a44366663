//! Tools as tests drive them: registering a module over HTTP, and calling the `tool-executor`
//! function through the gateway's Lambda Invoke emulation, as a deployed caller would.

use std::collections::HashMap;

use base64::Engine as _;
use bestchat_domain::ports::realtime::Invoker;
use bestchat_platform::invoke::LambdaInvoker;
use bestchat_tools::{Ceilings, ExecRequest, ExecResponse, Limits, ModuleRef};
use reqwest::StatusCode;
use serde_json::{Value, json};

use crate::api::Api;
use crate::gateway::{EMULATOR_SECRET, GatewayProcess};

/// Registers `module` under `manifest`; the answer's status and body.
pub async fn register(api: &Api<'_>, manifest: Value, module: &[u8]) -> (StatusCode, Value) {
    let encoded = base64::engine::general_purpose::STANDARD.encode(module);
    api.post(
        "/api/tools",
        &json!({ "manifest": manifest, "module": encoded }),
    )
    .await
}

/// A read-only manifest for `name` that accepts any object.
pub fn manifest(name: &str) -> Value {
    json!({
        "name": name,
        "description": format!("test tool {name}"),
        "parameters": {"type": "object"},
        "risk": "read"
    })
}

/// Registers a module that must be accepted; its sha256.
pub async fn registered(api: &Api<'_>, manifest: Value, module: &[u8]) -> String {
    let (status, body) = register(api, manifest, module).await;
    assert_eq!(status, StatusCode::CREATED, "{body}");
    body["module_sha256"].as_str().unwrap().to_owned()
}

/// The user has no tools of their own: only the built-ins are listed.
pub async fn assert_only_builtins(api: &Api<'_>) {
    let (_, listed) = api.get("/api/tools").await;
    let items = listed["items"].as_array().unwrap();
    assert!(items.iter().all(|t| t["source"] == "builtin"), "{listed}");
}

/// Calls the tool-executor function of a gateway, as another function would.
pub struct Executor {
    invoker: LambdaInvoker,
}

impl Executor {
    pub fn of(gateway: &GatewayProcess) -> Self {
        let config = aws_sdk_lambda::Config::builder()
            .behavior_version(aws_sdk_lambda::config::BehaviorVersion::latest())
            .region(aws_sdk_lambda::config::Region::new("us-east-1"))
            .endpoint_url(&gateway.base_url)
            .credentials_provider(aws_sdk_lambda::config::Credentials::new(
                "testing", "testing", None, None, "test",
            ))
            .build();
        let functions = ["tool-executor", "janitor"]
            .into_iter()
            .map(|f| (f.to_owned(), f.to_owned()))
            .collect::<HashMap<_, _>>();
        let client = aws_sdk_lambda::Client::from_conf(config);
        Self {
            invoker: LambdaInvoker::with_client(functions, client, Some(EMULATOR_SECRET.into())),
        }
    }

    pub async fn call(&self, module: ModuleRef, arguments: Value, limits: Limits) -> ExecResponse {
        let request = ExecRequest {
            tool: "test".into(),
            module,
            arguments,
            limits,
        };
        let answer = self
            .invoker
            .invoke("tool-executor", &serde_json::to_value(request).unwrap())
            .await
            .unwrap();
        serde_json::from_value(answer).unwrap()
    }

    /// Runs the janitor function once, as its schedule would; what it reports.
    pub async fn janitor(&self) -> Value {
        self.invoker.invoke("janitor", &json!({})).await.unwrap()
    }

    /// A built-in tool's output, which must succeed.
    pub async fn builtin(&self, name: &str, arguments: Value) -> Value {
        let grants = &bestchat_tools::builtin::find(name).unwrap().manifest.grants;
        let limits = Limits::granted(grants, &Ceilings::default());
        match self
            .call(ModuleRef::Builtin(name.into()), arguments, limits)
            .await
        {
            ExecResponse::Ok { output, .. } => output,
            failed => panic!("{name} failed: {failed:?}"),
        }
    }

    /// The executor still answers an ordinary call correctly.
    pub async fn assert_still_serves(&self) {
        let out = self
            .builtin("calculator", json!({"expression": "6 * 7"}))
            .await;
        assert_eq!(out["result"], "42");
    }
}

/// Limits for a test call: defaults, with what the test changes.
pub fn limits(change: impl FnOnce(&mut Limits)) -> Limits {
    let mut limits = Limits::granted(&Default::default(), &Ceilings::default());
    change(&mut limits);
    limits
}
