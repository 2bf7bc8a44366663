//! `bestchat-local` as a child process, the way a developer runs it.

use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::mpsc;
use std::sync::{Arc, Mutex, OnceLock};
use std::time::Duration;

use bestchat_app::auth::{JwtVerifier, KeySource};

use crate::TempDir;
use crate::postgres::TestDatabase;

/// The signing secret every test gateway uses, so tests can mint their own tokens.
pub const TEST_SECRET: &str = "bestchat-test-secret-0123456789abcdef";
/// The secret every test gateway's AWS emulation asks of its callers, so tests can call it with
/// their own SDK clients.
pub const EMULATOR_SECRET: &str = "bestchat-test-emulator-secret-0123456789";
/// How long a gateway may take to print its address.
const STARTUP_TIMEOUT: Duration = Duration::from_secs(60);

/// The issuer and audience the gateway checks by default.
pub const ISSUER: &str = "bestchat-local";
pub const AUDIENCE: &str = "bestchat";

/// Signs like a token issuer with `secret`.
pub fn signer(secret: &[u8], issuer: &str, audience: &str) -> JwtVerifier {
    JwtVerifier::new(KeySource::Secret(secret.to_vec()), issuer, audience)
}

/// Tokens as the test gateways accept them.
pub fn auth() -> JwtVerifier {
    signer(TEST_SECRET.as_bytes(), ISSUER, AUDIENCE)
}

pub fn token(subject: &str) -> String {
    auth()
        .mint(subject, now_epoch(), Duration::from_secs(3600))
        .expect("mint token")
}

pub fn now_epoch() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_secs() as i64)
        .unwrap_or_default()
}

/// Builds the binary once per test process (cargo is a no-op when it is fresh) and returns its
/// path, so a test never runs a stale gateway.
pub fn binary() -> &'static Path {
    static BINARY: OnceLock<PathBuf> = OnceLock::new();
    BINARY.get_or_init(|| {
        let cargo = std::env::var("CARGO").unwrap_or_else(|_| "cargo".into());
        let workspace = Path::new(env!("CARGO_MANIFEST_DIR")).join("..");
        let output = Command::new(cargo)
            .current_dir(&workspace)
            .args([
                "build",
                "--quiet",
                "-p",
                "bestchat-local",
                "--bin",
                "bestchat-local",
                "--message-format=json-render-diagnostics",
            ])
            .stderr(Stdio::inherit())
            .output()
            .expect("run cargo build for bestchat-local");
        assert!(output.status.success(), "building bestchat-local failed");
        String::from_utf8_lossy(&output.stdout)
            .lines()
            .filter_map(|line| serde_json::from_str::<serde_json::Value>(line).ok())
            .filter(|msg| msg["target"]["name"] == "bestchat-local")
            .find_map(|msg| msg["executable"].as_str().map(PathBuf::from))
            .expect("cargo reported no bestchat-local executable")
    })
}

/// The gateway's command with the test settings, then `env` (which wins over them).
fn command(data_dir: &Path, env: &[(&str, &str)]) -> Command {
    let mut command = Command::new(binary());
    command
        .env_remove("DATABASE_URL")
        .env_remove("REDIS_URL")
        .env("BESTCHAT_DATA_DIR", data_dir)
        .env("BESTCHAT_JWT_SECRET", TEST_SECRET)
        .env("BESTCHAT_EMULATOR_SECRET", EMULATOR_SECRET)
        .env("BESTCHAT_DEV_AUTH", "1")
        // The fake providers and MCP servers listen on loopback, whatever the store.
        .env("BESTCHAT_ALLOW_PRIVATE_PROVIDER_URLS", "1")
        // Suites send far more than a person would; the limits' own tests set them.
        .env("BESTCHAT_RATE_READ_PER_MINUTE", "0")
        .env("BESTCHAT_RATE_WRITE_PER_MINUTE", "0")
        .env("BESTCHAT_RATE_TURN_PER_MINUTE", "0")
        .env("BESTCHAT_RATE_CONNECT_PER_MINUTE", "0")
        .env("BESTCHAT_RATE_ADMIN_PER_MINUTE", "0")
        .env("RUST_LOG", "info");
    for (k, v) in env {
        command.env(k, v);
    }
    command
}

pub struct GatewayProcess {
    child: Child,
    pub base_url: String,
    log: PathBuf,
    /// Every line the gateway wrote to stdout (EMF metrics, among others).
    stdout: Arc<Mutex<Vec<String>>>,
}

impl GatewayProcess {
    /// Starts a gateway on a free port with its data under `data_dir`, on PostgreSQL when
    /// `database_url` is given and on SQLite otherwise.
    pub fn start(data_dir: &Path, database_url: Option<&str>, env: &[(&str, &str)]) -> Self {
        let mut all = vec![("BESTCHAT_ADDR", "127.0.0.1:0")];
        all.extend_from_slice(env);
        Self::start_at(data_dir, database_url, &all)
    }

    /// Like `start`, with `BESTCHAT_ADDR` among `env`.
    pub fn start_at(data_dir: &Path, database_url: Option<&str>, env: &[(&str, &str)]) -> Self {
        let log = data_dir.join(format!("gateway-{}.log", uuid::Uuid::now_v7()));
        let log_file = std::fs::File::create(&log).expect("create gateway log");
        let mut command = command(data_dir, env);
        command.stdout(Stdio::piped()).stderr(log_file);
        if let Some(url) = database_url {
            command.env("DATABASE_URL", url);
        }
        let mut child = command.spawn().expect("spawn bestchat-local");
        let stdout = child.stdout.take().expect("gateway stdout");
        let (tx, rx) = mpsc::channel();
        let lines = Arc::new(Mutex::new(Vec::new()));
        let kept = Arc::clone(&lines);
        std::thread::spawn(move || {
            // Keep reading after the address line so the pipe never fills.
            for line in BufReader::new(stdout).lines().map_while(Result::ok) {
                if let Some(rest) = line.split("listening on ").nth(1) {
                    let _ = tx.send(rest.trim().to_owned());
                }
                if let Ok(mut kept) = kept.lock() {
                    kept.push(line);
                }
            }
        });
        match rx.recv_timeout(STARTUP_TIMEOUT) {
            Ok(base_url) => Self {
                child,
                base_url,
                log,
                stdout: lines,
            },
            Err(_) => {
                let _ = child.kill();
                panic!(
                    "bestchat-local did not start:\n{}",
                    std::fs::read_to_string(&log).unwrap_or_default()
                );
            }
        }
    }

    /// Runs the gateway with `env`, expecting it to refuse to start; what it wrote to stderr.
    pub fn refused_start(data_dir: &Path, env: &[(&str, &str)]) -> String {
        let mut child = command(data_dir, env)
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .spawn()
            .expect("spawn bestchat-local");
        for _ in 0..600 {
            if let Ok(Some(status)) = child.try_wait() {
                assert!(!status.success(), "the gateway exited cleanly");
                let mut err = String::new();
                if let Some(mut stderr) = child.stderr.take() {
                    let _ = std::io::Read::read_to_string(&mut stderr, &mut err);
                }
                return err;
            }
            std::thread::sleep(Duration::from_millis(100));
        }
        let _ = child.kill();
        panic!("the gateway started where it should have refused to");
    }

    /// The lines the gateway wrote to stdout so far.
    pub fn stdout_lines(&self) -> Vec<String> {
        self.stdout.lock().map(|l| l.clone()).unwrap_or_default()
    }

    /// What the gateway logged so far (one line per request, among others).
    pub fn log(&self) -> String {
        std::fs::read_to_string(&self.log).unwrap_or_default()
    }

    pub fn url(&self, path: &str) -> String {
        format!("{}{path}", self.base_url)
    }

    /// Kills the gateway at once (SIGKILL), as a crashed function dies: nothing is flushed.
    pub fn kill(mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }

    /// Stops the gateway the way a terminal would (SIGTERM) and waits for it to exit.
    pub fn stop(mut self) {
        self.terminate();
    }

    fn terminate(&mut self) {
        if let Ok(Some(_)) = self.child.try_wait() {
            return;
        }
        let _ = Command::new("kill")
            .args(["-TERM", &self.child.id().to_string()])
            .stderr(Stdio::null())
            .status();
        for _ in 0..100 {
            if let Ok(Some(_)) = self.child.try_wait() {
                return;
            }
            std::thread::sleep(Duration::from_millis(50));
        }
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

impl Drop for GatewayProcess {
    fn drop(&mut self) {
        self.terminate();
        if std::thread::panicking() {
            eprintln!(
                "--- bestchat-local log ---\n{}",
                std::fs::read_to_string(&self.log).unwrap_or_default()
            );
        }
    }
}

/// A gateway with whatever backs it, kept alive for the test.
pub struct Running {
    pub gateway: GatewayProcess,
    pub dir: TempDir,
    pub db: Option<TestDatabase>,
    /// The DynamoDB connections table, for the production adapter set.
    pub table: Option<String>,
    /// The S3 blob bucket, for the production adapter set.
    pub bucket: Option<String>,
}

impl Running {
    /// Runs `sql` on the gateway's database behind the API's back, as an intruder with the
    /// database's password would: the database's refusal, as its text.
    pub async fn try_sql(&self, sql: &str) -> Result<(), String> {
        match &self.db {
            Some(db) => db.try_execute(sql).await,
            None => self.sqlite().execute_batch(sql).map_err(|e| e.to_string()),
        }
    }

    /// The rows `sql` selects from the gateway's database, every column as its text (NULL as "").
    pub async fn text_rows(&self, sql: &str) -> Vec<Vec<String>> {
        use rusqlite::types::ValueRef;
        if let Some(db) = &self.db {
            return db.text_rows(sql).await;
        }
        let conn = self.sqlite();
        let mut stmt = conn.prepare(sql).unwrap_or_else(|e| panic!("{sql}: {e}"));
        let columns = stmt.column_count();
        stmt.query_map([], |row| {
            (0..columns)
                .map(|i| {
                    Ok(match row.get_ref(i)? {
                        ValueRef::Null => String::new(),
                        ValueRef::Integer(n) => n.to_string(),
                        ValueRef::Real(x) => x.to_string(),
                        ValueRef::Text(t) | ValueRef::Blob(t) => {
                            String::from_utf8_lossy(t).into_owned()
                        }
                    })
                })
                .collect()
        })
        .and_then(Iterator::collect)
        .unwrap_or_else(|e| panic!("{sql}: {e}"))
    }

    /// The keys of the blobs under `prefix` (`tools/`), wherever this gateway keeps them.
    pub async fn blob_keys(&self, prefix: &str) -> Vec<String> {
        if let Some(bucket) = &self.bucket {
            return bucket_keys(bucket, prefix).await;
        }
        let root = self.dir.path().join("blobs");
        let mut keys = Vec::new();
        let mut dirs = vec![root.join(prefix)];
        while let Some(dir) = dirs.pop() {
            let Ok(entries) = std::fs::read_dir(&dir) else {
                continue;
            };
            for entry in entries.flatten() {
                let path = entry.path();
                if path.is_dir() {
                    dirs.push(path);
                } else if !entry.file_name().to_string_lossy().starts_with('.') {
                    let key = path.strip_prefix(&root).expect("under the root");
                    keys.push(key.to_string_lossy().into_owned());
                }
            }
        }
        keys.sort();
        keys
    }

    fn sqlite(&self) -> rusqlite::Connection {
        let conn = rusqlite::Connection::open(self.dir.path().join("bestchat.db"))
            .expect("open the gateway's database");
        conn.busy_timeout(Duration::from_secs(10))
            .expect("busy timeout");
        conn.execute_batch("PRAGMA foreign_keys = ON")
            .expect("foreign keys");
        conn
    }
}

pub async fn sqlite(env: &[(&str, &str)]) -> Running {
    let dir = TempDir::new("e2e");
    let gateway = GatewayProcess::start(dir.path(), None, env);
    Running {
        gateway,
        dir,
        db: None,
        table: None,
        bucket: None,
    }
}

pub async fn postgres(env: &[(&str, &str)]) -> Running {
    let dir = TempDir::new("e2e");
    let db = TestDatabase::create().await;
    let gateway = GatewayProcess::start(dir.path(), Some(db.url()), env);
    Running {
        gateway,
        dir,
        db: Some(db),
        table: None,
        bucket: None,
    }
}

/// A DynamoDB client on moto.
pub fn dynamodb() -> aws_sdk_dynamodb::Client {
    use aws_sdk_dynamodb::config::{BehaviorVersion, Credentials, Region};
    let config = aws_sdk_dynamodb::Config::builder()
        .behavior_version(BehaviorVersion::latest())
        .region(Region::new("us-east-1"))
        .endpoint_url(crate::moto_url())
        .credentials_provider(Credentials::new("testing", "testing", None, None, "moto"))
        .build();
    aws_sdk_dynamodb::Client::from_conf(config)
}

/// An S3 client on moto.
pub fn s3() -> aws_sdk_s3::Client {
    use aws_sdk_s3::config::{BehaviorVersion, Credentials, Region};
    let config = aws_sdk_s3::Config::builder()
        .behavior_version(BehaviorVersion::latest())
        .region(Region::new("us-east-1"))
        .endpoint_url(crate::moto_url())
        .force_path_style(true)
        .credentials_provider(Credentials::new("testing", "testing", None, None, "moto"))
        .build();
    aws_sdk_s3::Client::from_conf(config)
}

/// A fresh blob bucket on moto.
pub async fn create_bucket() -> String {
    let name = format!("blobs-{}", uuid::Uuid::now_v7().simple());
    s3().create_bucket()
        .bucket(&name)
        .send()
        .await
        .expect("create the blob bucket");
    name
}

/// The keys under `prefix` in `bucket`.
pub async fn bucket_keys(bucket: &str, prefix: &str) -> Vec<String> {
    let listed = s3()
        .list_objects_v2()
        .bucket(bucket)
        .prefix(prefix)
        .send()
        .await
        .expect("list the bucket");
    listed
        .contents()
        .iter()
        .filter_map(|o| o.key().map(str::to_owned))
        .collect()
}

/// A fresh connections table shaped as the SAM template declares it.
pub async fn create_connections_table() -> String {
    use aws_sdk_dynamodb::types::{
        AttributeDefinition, BillingMode, GlobalSecondaryIndex, KeySchemaElement, KeyType,
        Projection, ProjectionType, ScalarAttributeType,
    };
    let name = format!("connections-{}", uuid::Uuid::now_v7().simple());
    let key = |attr: &str| {
        KeySchemaElement::builder()
            .attribute_name(attr)
            .key_type(KeyType::Hash)
            .build()
            .expect("key")
    };
    let attr = |attr: &str| {
        AttributeDefinition::builder()
            .attribute_name(attr)
            .attribute_type(ScalarAttributeType::S)
            .build()
            .expect("attribute")
    };
    dynamodb()
        .create_table()
        .table_name(&name)
        .billing_mode(BillingMode::PayPerRequest)
        .attribute_definitions(attr("connection_id"))
        .attribute_definitions(attr("user_id"))
        .key_schema(key("connection_id"))
        .global_secondary_indexes(
            GlobalSecondaryIndex::builder()
                .index_name("by_user")
                .key_schema(key("user_id"))
                .projection(
                    Projection::builder()
                        .projection_type(ProjectionType::All)
                        .build(),
                )
                .build()
                .expect("index"),
        )
        .send()
        .await
        .expect("moto creates the table");
    name
}

/// A port nobody listens on now.
pub fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .map(|a| a.port())
        .expect("a free port")
}

/// The production adapter set: PostgreSQL, Redis, DynamoDB (moto), and frames and turns sent
/// through the real AWS SDK clients to this gateway's own `@connections` and Lambda Invoke
/// endpoints, as they would go to API Gateway and Lambda.
pub async fn cloud(env: &[(&str, &str)]) -> Running {
    let dir = TempDir::new("e2e-cloud");
    let db = TestDatabase::create().await;
    let table = create_connections_table().await;
    let bucket = create_bucket().await;
    let port = free_port();
    let self_url = format!("http://127.0.0.1:{port}");
    let addr = format!("127.0.0.1:{port}");
    let prefix = crate::unique_prefix();
    let redis = crate::redis_url();
    let moto = crate::moto_url();
    let mut all: Vec<(&str, &str)> = vec![
        ("BESTCHAT_ADDR", &addr),
        ("REDIS_URL", &redis),
        ("REDIS_KEY_PREFIX", &prefix),
        ("CONNECTIONS_TABLE", &table),
        ("AWS_ENDPOINT_URL_DYNAMODB", &moto),
        ("WS_ENDPOINT", &self_url),
        ("CHAT_TURN_FUNCTION", "chat-turn"),
        ("SUMMARIZE_FUNCTION", "summarize"),
        ("TOOL_EXECUTOR_FUNCTION", "tool-executor"),
        ("FILES_PROCESS_FUNCTION", "files-process"),
        ("AWS_ENDPOINT_URL_LAMBDA", &self_url),
        ("BLOB_BUCKET", &bucket),
        ("AWS_ENDPOINT_URL_S3", &moto),
        ("BESTCHAT_S3_PATH_STYLE", "1"),
        ("AWS_ACCESS_KEY_ID", "testing"),
        ("AWS_SECRET_ACCESS_KEY", "testing"),
        ("AWS_REGION", "us-east-1"),
    ];
    all.extend_from_slice(env);
    let gateway = GatewayProcess::start_at(dir.path(), Some(db.url()), &all);
    Running {
        gateway,
        dir,
        db: Some(db),
        table: Some(table),
        bucket: Some(bucket),
    }
}
