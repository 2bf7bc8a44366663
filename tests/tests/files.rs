//! Files end to end, on both adapter sets: the embedded one (SQLite, blobs in a directory the
//! gateway serves by signed URLs) and the AWS one (PostgreSQL, Redis, moto's S3 with real
//! presigned requests, processing invoked through the Lambda API). Uploads go straight to the
//! store; `complete` verifies and sniffs; processing records what it found; the bytes go with
//! the last file that holds them.

use bestchat_tests::api::{Api, assert_error};
use bestchat_tests::files::{self, processed, put_presigned, sha256_hex, upload};
use bestchat_tests::gateway::{Running, bucket_keys};
use bestchat_tests::ws::WsClient;
use reqwest::StatusCode;
use serde_json::{Value, json};

const LIMITS: &[(&str, &str)] = &[
    ("BESTCHAT_FILES_MAX_BYTES", "2000000"),
    ("BESTCHAT_FILES_STORAGE_BYTES", "3000000"),
    ("BESTCHAT_FILES_MAX_EXPANDED_BYTES", "1000000"),
];

/// Every stored object under `files/`, wherever this adapter set keeps them.
async fn stored_keys(running: &Running) -> Vec<String> {
    match &running.bucket {
        Some(bucket) => bucket_keys(bucket, "files/").await,
        None => {
            let root = running.dir.path().join("blobs");
            let mut keys = Vec::new();
            let mut dirs = vec![root.join("files")];
            while let Some(dir) = dirs.pop() {
                let Ok(entries) = std::fs::read_dir(&dir) else {
                    continue;
                };
                for entry in entries.flatten() {
                    let path = entry.path();
                    if path.is_dir() {
                        dirs.push(path);
                    } else if !entry.file_name().to_string_lossy().starts_with('.') {
                        let key = path.strip_prefix(&root).unwrap().to_string_lossy().into();
                        keys.push(key);
                    }
                }
            }
            keys
        }
    }
}

async fn keys_of(running: &Running, sha: &str) -> Vec<String> {
    stored_keys(running)
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

on_both!(
    uploads_are_verified_processed_and_served,
    wrong_bytes_types_and_quota_are_refused,
    another_users_file_is_not_found_and_deleting_removes_bytes,
    hostile_files_fail_with_a_reason,
);
