//! A process that runs guests and has a compiler elsewhere never writes shared compiled code:
//! the compiler writes it, the runner loads it from there.
#![allow(clippy::unwrap_used, clippy::panic, clippy::expect_used)]

use std::collections::HashMap;
use std::sync::{Arc, Mutex};

use async_trait::async_trait;
use bestchat_tools::executor::{CompileModule, Executor, Prepared};
use bestchat_tools::sandbox::{CompiledStore, ModuleError, RemoteCompiler};
use bestchat_tools::{Ceilings, ExecRequest, ExecResponse, Limits, ModuleRef, builtin};
use serde_json::json;

mod support;

/// One store for the deployment; each view counts what it wrote.
#[derive(Default)]
struct Store {
    code: Mutex<HashMap<String, Vec<u8>>>,
}

struct View {
    store: Arc<Store>,
    puts: Mutex<usize>,
}

impl View {
    fn of(store: &Arc<Store>) -> Arc<Self> {
        Arc::new(Self {
            store: Arc::clone(store),
            puts: Mutex::new(0),
        })
    }

    fn puts(&self) -> usize {
        *self.puts.lock().unwrap()
    }
}

#[async_trait]
impl CompiledStore for View {
    async fn get(&self, key: &str) -> Option<Vec<u8>> {
        self.store.code.lock().unwrap().get(key).cloned()
    }

    async fn put(&self, key: &str, bytes: Vec<u8>) {
        *self.puts.lock().unwrap() += 1;
        self.store.code.lock().unwrap().insert(key.into(), bytes);
    }
}

/// The compiler function, called in process.
struct Compiler(Executor);

#[async_trait]
impl RemoteCompiler for Compiler {
    async fn compile(&self, sha256: &str, trusted: bool) -> Result<(), ModuleError> {
        let request = CompileModule {
            sha256: sha256.into(),
            trusted,
        };
        self.0.compile_to_share(&request).await.into()
    }
}

fn request(tool: &str) -> ExecRequest {
    let manifest = &builtin::find(tool).unwrap().manifest;
    ExecRequest {
        tool: tool.into(),
        module: ModuleRef::Builtin(tool.into()),
        arguments: json!({"expression": "6 * 7"}),
        limits: Limits::granted(&manifest.grants, &Ceilings::default()),
    }
}

#[tokio::test]
async fn the_runner_loads_what_the_compiler_wrote_and_writes_nothing() {
    let store = Arc::new(Store::default());
    let (compiler_view, runner_view) = (View::of(&store), View::of(&store));
    let compiler = support::executor_on(support::sandbox_sharing(
        None,
        Some(compiler_view.clone()),
        None,
    ));
    let runner = support::executor_on(support::sandbox_sharing(
        None,
        Some(runner_view.clone()),
        Some(Arc::new(Compiler(compiler))),
    ));

    let out = runner.execute(request("calculator")).await;
    let ExecResponse::Ok { output, .. } = out else {
        panic!("{out:?}")
    };
    assert_eq!(output["result"], "42", "{output}");
    assert_eq!(runner_view.puts(), 0, "the runner wrote compiled code");
    assert_eq!(compiler_view.puts(), 1);
    assert_eq!(store.code.lock().unwrap().len(), 1);
}

#[tokio::test]
async fn the_compiler_answers_what_it_cannot_compile() {
    let compiler = support::executor(None);
    let unknown = CompileModule {
        sha256: "0".repeat(64),
        trusted: true,
    };
    assert!(matches!(
        compiler.compile_to_share(&unknown).await,
        Prepared::Unavailable { .. }
    ));
    let not_a_sha = CompileModule {
        sha256: "../../etc/passwd".into(),
        trusted: false,
    };
    assert!(matches!(
        compiler.compile_to_share(&not_a_sha).await,
        Prepared::Refused { .. }
    ));
}
