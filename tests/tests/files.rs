//! Files end to end, on both adapter sets: the embedded one (SQLite, blobs in a directory the
//! gateway serves by signed URLs) and the AWS one (PostgreSQL, Redis, moto's S3 with real
//! presigned requests, processing invoked through the Lambda API). Uploads go straight to the
//! store; `complete` verifies and sniffs; processing records what it found; the bytes go with
//! the last file that holds them.

use bestchat_tests::api::{Api, assert_error};
use bestchat_tests::chat::new_conversation;
use bestchat_tests::fake_provider::{FakeProvider, Reply};
use bestchat_tests::files::{self, processed, put_presigned, sha256_hex, upload};
use bestchat_tests::gateway::Running;
use bestchat_tests::scripted;
use bestchat_tests::ws::WsClient;
use reqwest::StatusCode;
use serde_json::{Value, json};

const LIMITS: &[(&str, &str)] = &[
    ("BESTCHAT_FILES_MAX_BYTES", "2000000"),
    ("BESTCHAT_FILES_STORAGE_BYTES", "3000000"),
    ("BESTCHAT_FILES_MAX_EXPANDED_BYTES", "1000000"),
];

async fn keys_of(running: &Running, sha: &str) -> Vec<String> {
    running
        .blob_keys("files/")
        .await
        .into_iter()
        .filter(|k| k.contains(sha))
        .collect()
}

/// Puts `bytes` under the key of `sha` behind the API's back, as a broken client might leave
/// them.
async fn plant(running: &Running, user_key_prefix: &str, bytes: &[u8]) {
    let key = format!("{user_key_prefix}original");
    match &running.bucket {
        Some(bucket) => {
            bestchat_tests::gateway::s3()
                .put_object()
                .bucket(bucket)
                .key(&key)
                .body(bytes.to_vec().into())
                .send()
                .await
                .unwrap();
        }
        None => {
            let path = running.dir.path().join("blobs").join(&key);
            std::fs::create_dir_all(path.parent().unwrap()).unwrap();
            std::fs::write(path, bytes).unwrap();
        }
    }
}

fn prefix(user: &str, sha: &str) -> String {
    let subject = bestchat_domain::ids::Subject::parse(user).unwrap();
    let id = bestchat_domain::ids::UserId::from_subject(&subject);
    format!("files/{id}/{sha}/")
}

async fn ready_upload(api: &Api<'_>, name: &str, content_type: &str, bytes: &[u8]) -> Value {
    let (status, started) = upload(api, name, content_type, bytes).await;
    assert_eq!(status, StatusCode::ACCEPTED, "{started}");
    let file = processed(api, started["id"].as_str().unwrap()).await;
    assert_eq!(file["status"], "ready", "{file}");
    file
}

async fn uploads_are_verified_processed_and_served(running: Running) {
    let gateway = &running.gateway;
    let api = Api::new(gateway, "ana");
    let mut socket = WsClient::connect(gateway, "ana").await;

    let pdf = files::pdf("Quarterly revenue rose by 12 percent");
    let file = ready_upload(&api, "q3.pdf", "application/pdf", &pdf).await;
    assert_eq!(
        (&file["kind"], &file["content_type"], &file["pages"]),
        (&json!("document"), &json!("application/pdf"), &json!(1))
    );
    assert!(file["text_chars"].as_i64().unwrap() > 20, "{file}");
    // Every device hears of it.
    let events = socket
        .until(|e| e["type"] == "file.updated" && e["file"]["status"] == "ready")
        .await;
    assert!(
        events.iter().any(|e| e["file"]["status"] == "processing"),
        "{events:?}"
    );

    let docx = files::docx(&["Meeting notes", "Ship on Friday"]);
    let file = ready_upload(&api, "notes.docx", "application/octet-stream", &docx).await;
    assert_eq!(file["kind"], "document");
    assert!(
        file["content_type"]
            .as_str()
            .unwrap()
            .contains("wordprocessingml")
    );
    let xlsx = files::xlsx("Budget", &[&["item", "cost"], &["laptops", "1200"]]);
    let file = ready_upload(&api, "budget.xlsx", "application/zip", &xlsx).await;
    assert_eq!(
        (&file["kind"], &file["pages"]),
        (&json!("spreadsheet"), &json!(1))
    );
    let png = files::png(3000, 1500);
    let image = ready_upload(&api, "photo.png", "image/png", &png).await;
    assert_eq!(
        (&image["kind"], &image["width"], &image["height"]),
        (&json!("image"), &json!(3000), &json!(1500))
    );
    // The original, and the image as models get it.
    let image_keys = keys_of(&running, &sha256_hex(&png)).await;
    assert!(
        image_keys.iter().any(|k| k.ends_with("/original")),
        "{image_keys:?}"
    );
    assert!(
        image_keys.iter().any(|k| k.ends_with("/image-0")),
        "{image_keys:?}"
    );

    // The same bytes again: nothing to upload, and what processing found is shared.
    let (status, again) = api
        .post(
            "/api/files",
            &json!({"name": "copy.pdf", "content_type": "application/pdf",
                "size_bytes": pdf.len(), "sha256": sha256_hex(&pdf)}),
        )
        .await;
    assert_eq!(status, StatusCode::CREATED, "{again}");
    assert!(again["upload"].is_null(), "{again}");
    assert_eq!(again["file"]["status"], "ready");
    assert_eq!(again["file"]["pages"], 1);

    // The content: a redirect to a short-lived URL that serves exactly the bytes, without auth.
    let id = file["id"].as_str().unwrap();
    let client = reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .unwrap();
    let redirect = client
        .get(gateway.url(&format!("/api/files/{id}/content")))
        .bearer_auth(bestchat_tests::gateway::token("ana"))
        .send()
        .await
        .unwrap();
    assert_eq!(redirect.status(), StatusCode::FOUND);
    let location = redirect.headers()["location"].to_str().unwrap().to_owned();
    let served = reqwest::get(&location).await.unwrap();
    assert_eq!(served.status(), StatusCode::OK);
    // Saved, never shown as a page: S3 answers with the disposition its URL was signed with
    // (moto does not play it back, so the signed URL is what is checked there).
    match served.headers().get("content-disposition") {
        Some(disposition) => assert!(
            disposition.to_str().unwrap().starts_with("attachment;"),
            "{disposition:?}"
        ),
        None => assert!(
            running.bucket.is_some()
                && location.contains("response-content-disposition=attachment"),
            "{location}"
        ),
    }
    assert_eq!(served.bytes().await.unwrap().as_ref(), xlsx.as_slice());
    // A URL changed by one character serves nothing.
    let forged = location.replacen("files/", "files/x", 1);
    assert_ne!(
        reqwest::get(&forged).await.unwrap().status(),
        StatusCode::OK
    );

    let (status, list) = api.get("/api/files?limit=2").await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(list["items"].as_array().unwrap().len(), 2);
    assert!(list["next_cursor"].is_string());
    socket.close().await;
}

async fn wrong_bytes_types_and_quota_are_refused(running: Running) {
    let gateway = &running.gateway;
    let api = Api::new(gateway, "bo");
    let pdf = files::pdf("the real thing");
    let announce = |bytes: &[u8], name: &str| {
        json!({"name": name, "content_type": "application/pdf", "size_bytes": bytes.len(),
            "sha256": sha256_hex(bytes)})
    };

    // Nothing uploaded yet: 409.
    let (status, announced) = api.post("/api/files", &announce(&pdf, "a.pdf")).await;
    assert_eq!(status, StatusCode::CREATED, "{announced}");
    let id = announced["file"]["id"].as_str().unwrap().to_owned();
    let (status, body) = api
        .post(&format!("/api/files/{id}/complete"), &json!({}))
        .await;
    assert_error(status, &body, 409, "file_not_ready");

    // Other bytes than the URL was signed for: the store refuses them (S3 checks the signed
    // checksum and length; moto does not, so there `complete` is what refuses), and they are
    // not kept.
    let mut other = pdf.clone();
    other[20] ^= 1;
    let mut longer = pdf.clone();
    longer.push(b'\n');
    for wrong in [other.clone(), longer] {
        let put = put_presigned(&announced["upload"], wrong).await;
        assert!(
            put.is_client_error() || running.bucket.is_some(),
            "the embedded store took bytes its URL was not signed for: {put}"
        );
        let (status, body) = api
            .post(&format!("/api/files/{id}/complete"), &json!({}))
            .await;
        assert_error(status, &body, 409, "file_not_ready");
        assert!(keys_of(&running, &sha256_hex(&pdf)).await.is_empty());
    }

    // Bytes that reached the store under this key by another way, of another size or hash:
    // 409, and they are removed.
    let key_prefix = prefix("bo", &sha256_hex(&pdf));
    plant(&running, &key_prefix, &other).await;
    let (status, body) = api
        .post(&format!("/api/files/{id}/complete"), &json!({}))
        .await;
    assert_error(status, &body, 409, "file_not_ready");
    assert!(keys_of(&running, &sha256_hex(&pdf)).await.is_empty());
    plant(&running, &key_prefix, &pdf[..pdf.len() - 1]).await;
    let (status, body) = api
        .post(&format!("/api/files/{id}/complete"), &json!({}))
        .await;
    assert_error(status, &body, 409, "file_not_ready");

    // The right bytes at last.
    assert!(
        put_presigned(&announced["upload"], pdf.clone())
            .await
            .is_success()
    );
    let (status, body) = api
        .post(&format!("/api/files/{id}/complete"), &json!({}))
        .await;
    assert_eq!(status, StatusCode::ACCEPTED, "{body}");
    // Completing twice is harmless.
    let (status, _) = api
        .post(&format!("/api/files/{id}/complete"), &json!({}))
        .await;
    assert_eq!(status, StatusCode::ACCEPTED);

    // An executable declared as a PDF: 415, and nothing of it is kept.
    let elf = files::elf();
    let (status, body) = upload(&api, "invoice.pdf", "application/pdf", &elf).await;
    assert_error(status, &body, 415, "unsupported_file_type");
    assert!(keys_of(&running, &sha256_hex(&elf)).await.is_empty());

    // Too large for the deployment: 413 before any upload.
    let (status, body) = api
        .post(
            "/api/files",
            &json!({"name": "huge.pdf", "content_type": "application/pdf",
                "size_bytes": 2_000_001, "sha256": "a".repeat(64)}),
        )
        .await;
    assert_error(status, &body, 413, "file_too_large");
    // Past the user's storage: 403.
    for n in 0..2 {
        let (status, body) = api
            .post(
                "/api/files",
                &json!({"name": format!("big-{n}.pdf"), "content_type": "application/pdf",
                    "size_bytes": 1_400_000, "sha256": format!("{n}").repeat(64)}),
            )
            .await;
        assert_eq!(status, StatusCode::CREATED, "{body}");
    }
    let (status, body) = api
        .post(
            "/api/files",
            &json!({"name": "one-too-many.pdf", "content_type": "application/pdf",
                "size_bytes": 400_000, "sha256": "f".repeat(64)}),
        )
        .await;
    assert_error(status, &body, 403, "storage_quota_exceeded");

    // Bad announcements.
    for bad in [
        json!({"name": "", "content_type": "application/pdf", "size_bytes": 1, "sha256": "a".repeat(64)}),
        json!({"name": "a/b.pdf", "content_type": "application/pdf", "size_bytes": 1, "sha256": "a".repeat(64)}),
        json!({"name": "a.pdf", "content_type": "application/pdf", "size_bytes": 0, "sha256": "a".repeat(64)}),
        json!({"name": "a.pdf", "content_type": "application/pdf", "size_bytes": 1, "sha256": "xyz"}),
        json!({"name": "a.pdf", "content_type": "application/pdf", "size_bytes": -1, "sha256": "a".repeat(64)}),
    ] {
        let (status, body) = api.post("/api/files", &bad).await;
        assert_eq!(status.as_u16() / 100, 4, "{bad} → {body}");
        assert!(body["error"]["code"].is_string(), "{body}");
    }
}

async fn another_users_file_is_not_found_and_deleting_removes_bytes(running: Running) {
    let gateway = &running.gateway;
    let (ana, eve) = (Api::new(gateway, "ana"), Api::new(gateway, "eve"));
    let text = b"shopping list: eggs, milk\n".to_vec();
    let file = ready_upload(&ana, "list.txt", "text/plain", &text).await;
    let id = file["id"].as_str().unwrap();
    for (status, body) in [
        eve.get(&format!("/api/files/{id}")).await,
        eve.get(&format!("/api/files/{id}/content")).await,
        eve.post(&format!("/api/files/{id}/complete"), &json!({}))
            .await,
        eve.delete(&format!("/api/files/{id}")).await,
    ] {
        assert_error(status, &body, 404, "file_not_found");
    }
    let (_, listed) = eve.get("/api/files").await;
    assert_eq!(listed["items"], json!([]));

    // Two files hold the same bytes: the bytes stay until the last goes.
    let (status, twin) = ana
        .post(
            "/api/files",
            &json!({"name": "list-copy.txt", "content_type": "text/plain",
                "size_bytes": text.len(), "sha256": sha256_hex(&text)}),
        )
        .await;
    assert_eq!(status, StatusCode::CREATED);
    let twin = twin["file"]["id"].as_str().unwrap();
    let sha = sha256_hex(&text);
    let (status, _) = ana.delete(&format!("/api/files/{id}")).await;
    assert_eq!(status, StatusCode::NO_CONTENT);
    assert!(!keys_of(&running, &sha).await.is_empty());
    let (status, _) = ana.delete(&format!("/api/files/{twin}")).await;
    assert_eq!(status, StatusCode::NO_CONTENT);
    assert_eq!(keys_of(&running, &sha).await, Vec::<String>::new());
    let (status, body) = ana.get(&format!("/api/files/{id}")).await;
    assert_error(status, &body, 404, "file_not_found");
}

async fn hostile_files_fail_with_a_reason(running: Running) {
    let api = Api::new(&running.gateway, "mallory");
    for (name, bytes, code) in [
        ("bomb.docx", files::docx_bomb(3_000_000), "file_too_large"),
        (
            "huge.png",
            files::png_claiming(60_000, 60_000),
            "file_too_large",
        ),
        (
            "cut.png",
            files::png(200, 200)[..400].to_vec(),
            "unsupported_file_type",
        ),
    ] {
        let (status, started) = upload(&api, name, "application/octet-stream", &bytes).await;
        assert_eq!(status, StatusCode::ACCEPTED, "{name}: {started}");
        let file = processed(&api, started["id"].as_str().unwrap()).await;
        assert_eq!(file["status"], "failed", "{name}: {file}");
        assert_eq!(file["error"]["code"], code, "{name}: {file}");
        assert!(
            file["error"]["message"].as_str().unwrap().len() > 10,
            "{file}"
        );
    }
    // The function is still there for the next file.
    let ok = ready_upload(&api, "fine.md", "text/markdown", b"# Fine\n").await;
    assert_eq!(ok["kind"], "text");
}

macro_rules! on_both {
    ($($case:ident),* $(,)?) => {
        mod embedded {
            $(
                #[tokio::test]
                async fn $case() {
                    super::$case(bestchat_tests::gateway::sqlite(super::LIMITS).await).await;
                }
            )*
        }
        mod aws {
            $(
                #[tokio::test]
                async fn $case() {
                    super::$case(bestchat_tests::gateway::cloud(super::LIMITS).await).await;
                }
            )*
        }
    };
}

/// A fake provider of `protocol` answering `text`, set up as the user's `fake` provider with a
/// model that sees images; a new conversation on it.
async fn vision_conversation(
    gateway: &bestchat_tests::gateway::GatewayProcess,
    user: &str,
    protocol: &str,
) -> (FakeProvider, String) {
    let reply = match protocol {
        "openai" => scripted::openai_stream(&["Read ".into(), "them.".into()]),
        "openai-responses" => scripted::responses_text("Read them."),
        "anthropic" => scripted::anthropic_text("Read them."),
        _ => scripted::gemini_text("Read them."),
    };
    let fake = FakeProvider::start(vec![], Reply::sse(reply)).await;
    let base_url = match protocol {
        "openai" | "openai-responses" => format!("{}/v1", fake.base_url),
        _ => fake.base_url.clone(),
    };
    let (status, body) = Api::new(gateway, user)
        .put(
            "/api/provider-configs/fake",
            &json!({"protocol": protocol, "base_url": base_url, "api_key": "sk-test-key-0123456789",
                    "models": [{"id": "fake-model", "context_window": 200000, "max_output_tokens": 4096,
                                "supports_vision": true}]}),
        )
        .await;
    assert_eq!(status, StatusCode::OK, "{body}");
    let conversation = new_conversation(
        gateway,
        user,
        &json!({"provider": "fake", "model": "fake-model"}),
    )
    .await;
    (fake, conversation)
}

/// Sends `content` with `attachments` and waits for the answer; the request the fake got.
async fn send_with(
    api: &Api<'_>,
    fake: &FakeProvider,
    conversation: &str,
    content: &str,
    attachments: &[&str],
) -> Value {
    let before = fake.requests().len();
    let (status, sent) = api
        .post(
            &format!("/api/conversations/{conversation}/messages"),
            &json!({"client_message_id": format!("c-{}", uuid::Uuid::now_v7()), "content": content,
                    "attachments": attachments}),
        )
        .await;
    assert_eq!(status, StatusCode::ACCEPTED, "{sent}");
    let answer = sent["assistant_message"]["id"].as_str().unwrap();
    let started = std::time::Instant::now();
    loop {
        let message = stored_message(api, conversation, answer).await;
        if message["status"] == "complete" {
            break;
        }
        assert!(
            !matches!(message["status"].as_str(), Some("error" | "incomplete")),
            "{message}"
        );
        assert!(
            started.elapsed() < std::time::Duration::from_secs(30),
            "{message}"
        );
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
    }
    let requests = fake.requests();
    assert_eq!(requests.len(), before + 1);
    requests.last().unwrap().json()
}

async fn stored_message(api: &Api<'_>, conversation: &str, id: &str) -> Value {
    let (status, message) = api
        .get(&format!("/api/conversations/{conversation}/messages/{id}"))
        .await;
    assert_eq!(status, StatusCode::OK, "{message}");
    message
}

/// The user message's parts as the wire format carries them, newest message last.
fn last_user_content(protocol: &str, body: &Value) -> Vec<Value> {
    let messages = match protocol {
        "openai" => body["messages"].clone(),
        "openai-responses" => body["input"].clone(),
        "anthropic" => body["messages"].clone(),
        _ => body["contents"].clone(),
    };
    let last = messages
        .as_array()
        .unwrap()
        .iter()
        .rev()
        .find(|m| m["role"] == "user")
        .unwrap()
        .clone();
    let parts = if protocol == "gemini" {
        &last["parts"]
    } else {
        &last["content"]
    };
    parts
        .as_array()
        .cloned()
        .unwrap_or_else(|| vec![parts.clone()])
}

fn texts_of(parts: &[Value]) -> String {
    parts
        .iter()
        .filter_map(|p| p["text"].as_str().or(p.as_str()))
        .collect::<Vec<_>>()
        .join("\n")
}

async fn attachments_reach_each_wire_format_in_its_form(running: Running) {
    let gateway = &running.gateway;
    let api = Api::new(gateway, "ana");
    let pdf = files::pdf("Quarterly revenue rose by 12 percent");
    let docx = files::docx(&["Ship on Friday"]);
    let xlsx = files::xlsx("Budget", &[&["laptops", "1200"]]);
    let png = files::png(2400, 1200);
    let mut ids = Vec::new();
    for (name, bytes) in [
        ("q3.pdf", &pdf),
        ("plan.docx", &docx),
        ("budget.xlsx", &xlsx),
        ("photo.png", &png),
    ] {
        ids.push(
            ready_upload(&api, name, "application/octet-stream", bytes).await["id"]
                .as_str()
                .unwrap()
                .to_owned(),
        );
    }
    let ids: Vec<&str> = ids.iter().map(String::as_str).collect();
    for protocol in ["openai", "openai-responses", "anthropic", "gemini"] {
        let (fake, conversation) = vision_conversation(gateway, "ana", protocol).await;
        let body = send_with(&api, &fake, &conversation, "What do these say?", &ids).await;
        let parts = last_user_content(protocol, &body);
        let text = texts_of(&parts);
        assert!(text.contains("What do these say?"), "{protocol}: {text}");
        // DOCX and XLSX go as their text everywhere.
        assert!(text.contains("Ship on Friday"), "{protocol}: {text}");
        assert!(text.contains("laptops\t1200"), "{protocol}: {text}");
        let rendered = serde_json::to_string(&parts).unwrap();
        // The image, resized and re-encoded, as each format takes an image.
        let jpeg_b64 = "/9j/";
        match protocol {
            "openai" => {
                let image = parts.iter().find(|p| p["type"] == "image_url").unwrap();
                assert!(
                    image["image_url"]["url"]
                        .as_str()
                        .unwrap()
                        .starts_with("data:image/jpeg;base64,/9j/")
                );
                assert!(
                    text.contains("Quarterly revenue"),
                    "OpenAI gets the PDF's text"
                );
            }
            "openai-responses" => {
                let image = parts.iter().find(|p| p["type"] == "input_image").unwrap();
                assert!(
                    image["image_url"]
                        .as_str()
                        .unwrap()
                        .starts_with("data:image/jpeg;base64,")
                );
                assert!(
                    text.contains("Quarterly revenue"),
                    "Responses gets the PDF's text"
                );
            }
            "anthropic" => {
                let image = parts.iter().find(|p| p["type"] == "image").unwrap();
                assert_eq!(image["source"]["media_type"], "image/jpeg");
                assert!(
                    image["source"]["data"]
                        .as_str()
                        .unwrap()
                        .starts_with(jpeg_b64)
                );
                let document = parts.iter().find(|p| p["type"] == "document").unwrap();
                assert_eq!(document["source"]["media_type"], "application/pdf");
                assert!(
                    document["source"]["data"]
                        .as_str()
                        .unwrap()
                        .starts_with("JVBER")
                );
                assert!(
                    !text.contains("Quarterly revenue"),
                    "Claude reads the PDF itself"
                );
            }
            _ => {
                let inline: Vec<&Value> =
                    parts.iter().filter_map(|p| p.get("inlineData")).collect();
                assert!(
                    inline.iter().any(|d| d["mimeType"] == "application/pdf"),
                    "{rendered}"
                );
                assert!(
                    inline.iter().any(|d| d["mimeType"] == "image/jpeg"),
                    "{rendered}"
                );
                assert!(
                    !text.contains("Quarterly revenue"),
                    "Gemini reads the PDF itself"
                );
            }
        }
        // The original 2400 px image never goes as it is.
        assert!(!rendered.contains(&base64_of(&png)[..64]), "{protocol}");
    }
    // A message's attachments are listed with it.
    let (_, conversations) = api.get("/api/conversations").await;
    let conversation = conversations["items"][0]["id"].as_str().unwrap();
    let (_, messages) = api
        .get(&format!("/api/conversations/{conversation}/messages"))
        .await;
    let question = &messages["items"][0];
    assert_eq!(
        question["attachments"].as_array().unwrap().len(),
        4,
        "{question}"
    );
    assert_eq!(question["attachments"][3]["kind"], "image");
}

fn base64_of(bytes: &[u8]) -> String {
    use base64::Engine as _;
    base64::engine::general_purpose::STANDARD.encode(bytes)
}

async fn files_in_a_conversation_are_tracked_and_go_with_it(running: Running) {
    let gateway = &running.gateway;
    let api = Api::new(gateway, "ana");
    let (fake, conversation) = vision_conversation(gateway, "ana", "openai").await;
    let v1 = ready_upload(
        &api,
        "notes.txt",
        "text/plain",
        b"version one: ship on Friday\n",
    )
    .await;
    let v2 = ready_upload(
        &api,
        "notes.txt",
        "text/plain",
        b"version two: ship on Monday\n",
    )
    .await;
    let (v1, v2) = (v1["id"].as_str().unwrap(), v2["id"].as_str().unwrap());
    let first = send_with(&api, &fake, &conversation, "Read my notes", &[v1]).await;
    assert!(first.to_string().contains("version one"));
    // The newer version replaces the older copy in the context, with a note.
    let second = send_with(&api, &fake, &conversation, "I updated them", &[v2]).await;
    let sent = second.to_string();
    assert!(sent.contains("version two"), "{sent}");
    assert!(!sent.contains("version one"), "{sent}");
    assert!(
        sent.contains("an older copy, replaced by the one attached later"),
        "{sent}"
    );
    // A deleted file's content leaves the context; its message keeps a note of it.
    let (status, _) = api.delete(&format!("/api/files/{v2}")).await;
    assert_eq!(status, StatusCode::NO_CONTENT);
    let third = send_with(&api, &fake, &conversation, "And now?", &[]).await;
    let sent = third.to_string();
    assert!(
        !sent.contains("version two") && !sent.contains("version one"),
        "{sent}"
    );
    assert!(sent.contains("this file was deleted"), "{sent}");
    let (_, messages) = api
        .get(&format!("/api/conversations/{conversation}/messages"))
        .await;
    let second_question = &messages["items"][2];
    assert_eq!(
        second_question["attachments"][0]["deleted"], true,
        "{second_question}"
    );
    // Sending a file that is not ready, not the user's, or too many: refused before any call.
    let calls = fake.requests().len();
    let (status, body) = api
        .post(
            &format!("/api/conversations/{conversation}/messages"),
            &json!({"client_message_id": "c-gone", "content": "x", "attachments": [v2]}),
        )
        .await;
    assert_error(status, &body, 404, "file_not_found");
    let eve = Api::new(gateway, "eve");
    let (eve_fake, eve_conversation) = vision_conversation(gateway, "eve", "openai").await;
    let (status, body) = eve
        .post(
            &format!("/api/conversations/{eve_conversation}/messages"),
            &json!({"client_message_id": "c-steal", "content": "x", "attachments": [v1]}),
        )
        .await;
    assert_error(status, &body, 404, "file_not_found");
    assert!(eve_fake.requests().is_empty());
    let eleven: Vec<String> = (0..11)
        .map(|i| format!("00000000-0000-7000-8000-{i:012}"))
        .collect();
    let (status, body) = api
        .post(
            &format!("/api/conversations/{conversation}/messages"),
            &json!({"client_message_id": "c-many", "content": "x", "attachments": eleven}),
        )
        .await;
    assert_error(status, &body, 422, "validation_failed");
    assert_eq!(fake.requests().len(), calls);
    // Deleting the conversation deletes the files first attached in it, and their bytes.
    let sha = files::sha256_hex(b"version one: ship on Friday\n");
    assert!(!keys_of(&running, &sha).await.is_empty());
    let (status, _) = api
        .delete(&format!("/api/conversations/{conversation}"))
        .await;
    assert_eq!(status, StatusCode::NO_CONTENT);
    let (status, body) = api.get(&format!("/api/files/{v1}")).await;
    assert_error(status, &body, 404, "file_not_found");
    assert_eq!(keys_of(&running, &sha).await, Vec::<String>::new());
}

on_both!(
    uploads_are_verified_processed_and_served,
    wrong_bytes_types_and_quota_are_refused,
    another_users_file_is_not_found_and_deleting_removes_bytes,
    hostile_files_fail_with_a_reason,
    attachments_reach_each_wire_format_in_its_form,
    files_in_a_conversation_are_tracked_and_go_with_it,
);

/// The janitor, every 200 ms with a grace of 5 s: uploads never completed are forgotten, and the
/// bytes of a user whose rows are gone are removed; another user's stay.
async fn the_janitor_forgets_orphans_and_unheld_bytes(running: Running) {
    let gateway = &running.gateway;
    let (ana, bo) = (Api::new(gateway, "ana"), Api::new(gateway, "bo"));
    let kept = ready_upload(&ana, "kept.txt", "text/plain", b"ana keeps this\n").await;
    let (status, orphan) = ana
        .post(
            "/api/files",
            &json!({"name": "never.txt", "content_type": "text/plain", "size_bytes": 5,
                "sha256": "e".repeat(64)}),
        )
        .await;
    assert_eq!(status, StatusCode::CREATED, "{orphan}");
    let orphan = orphan["file"]["id"].as_str().unwrap().to_owned();
    let gone = b"bo leaves\n";
    ready_upload(&bo, "gone.txt", "text/plain", gone).await;
    let bo_id = bestchat_domain::ids::UserId::from_subject(
        &bestchat_domain::ids::Subject::parse("bo").unwrap(),
    );
    // The user is erased behind the API's back: rows cascade, bytes are the janitor's.
    running
        .try_sql(&format!("DELETE FROM users WHERE id = '{bo_id}'"))
        .await
        .unwrap();
    let started = std::time::Instant::now();
    loop {
        let (status, _) = ana.get(&format!("/api/files/{orphan}")).await;
        let bytes_left = keys_of(&running, &files::sha256_hex(gone)).await;
        if status == StatusCode::NOT_FOUND && bytes_left.is_empty() {
            break;
        }
        assert!(
            started.elapsed() < std::time::Duration::from_secs(30),
            "orphan {status}, bytes {bytes_left:?}"
        );
        tokio::time::sleep(std::time::Duration::from_millis(100)).await;
    }
    let (status, file) = ana
        .get(&format!("/api/files/{}", kept["id"].as_str().unwrap()))
        .await;
    assert_eq!((status, &file["status"]), (StatusCode::OK, &json!("ready")));
    assert!(
        !keys_of(&running, &files::sha256_hex(b"ana keeps this\n"))
            .await
            .is_empty()
    );
}

const JANITOR: &[(&str, &str)] = &[
    ("BESTCHAT_JANITOR_INTERVAL_MS", "200"),
    ("BESTCHAT_FILES_ORPHAN_AFTER_S", "5"),
];

#[tokio::test]
async fn embedded_janitor_forgets_orphans_and_unheld_bytes() {
    the_janitor_forgets_orphans_and_unheld_bytes(bestchat_tests::gateway::sqlite(JANITOR).await)
        .await;
}

#[tokio::test]
async fn aws_janitor_forgets_orphans_and_unheld_bytes() {
    the_janitor_forgets_orphans_and_unheld_bytes(bestchat_tests::gateway::cloud(JANITOR).await)
        .await;
}
