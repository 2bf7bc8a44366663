//! Budgets, admin routes and prepaid credit end to end: `bestchat-local` on SQLite with the
//! in-process cache, and on PostgreSQL with Redis, against a fake provider with known prices
//! and a fake Stripe on loopback.

use std::time::{Duration, Instant};

use bestchat_tests::api::{Api, assert_error};
use bestchat_tests::chat::{FAKE_MODEL, FAKE_PROVIDER, new_conversation, use_fake_provider};
use bestchat_tests::fake_provider::{FakeProvider, Reply};
use bestchat_tests::gateway::{GatewayProcess, Running, now_epoch, postgres, sqlite};
use bestchat_tests::scripted::openai_stream;
use reqwest::StatusCode;
use serde_json::{Value, json};

/// A system prompt long enough that the planned input (about 200 tokens) is above what the
/// fake reports (40), so a hold is never below the cost it settles.
fn long_prompt() -> String {
    "Answer in plain words and keep to the point. ".repeat(20)
}

/// 50 output tokens at most; the fake answers with 50: each turn costs 40 + 2 × 50 = 140
/// micro-dollars (input 1, output 2 per token), and holds about 250 + 100.
const MAX_OUTPUT: u32 = 50;
const TURN_COST: i64 = 140;
/// About three turns.
const BUDGET: i64 = 3 * TURN_COST + 100;

fn words(n: usize) -> Vec<String> {
    (0..n).map(|i| format!("w{i} ")).collect()
}

fn budget_env(extra: &[(&'static str, &'static str)]) -> Vec<(&'static str, String)> {
    let mut env = vec![("BESTCHAT_BUDGET_DEFAULT_MICROS", BUDGET.to_string())];
    env.extend(extra.iter().map(|(k, v)| (*k, (*v).to_owned())));
    env
}

async fn on_sqlite(env: &[(&'static str, String)]) -> Running {
    let env: Vec<(&str, &str)> = env.iter().map(|(k, v)| (*k, v.as_str())).collect();
    sqlite(&env).await
}

async fn on_postgres_and_redis(env: &[(&'static str, String)]) -> Running {
    let redis = bestchat_tests::redis_url();
    let prefix = bestchat_tests::unique_prefix();
    let mut env: Vec<(&str, &str)> = env.iter().map(|(k, v)| (*k, v.as_str())).collect();
    env.extend([
        ("REDIS_URL", redis.as_str()),
        ("REDIS_KEY_PREFIX", prefix.as_str()),
    ]);
    postgres(&env).await
}

async fn priced_conversation(gateway: &GatewayProcess, user: &str, fake: &FakeProvider) -> String {
    use_fake_provider(gateway, user, fake).await;
    new_conversation(
        gateway,
        user,
        &json!({"provider": FAKE_PROVIDER, "model": FAKE_MODEL, "system_prompt": long_prompt(),
                "settings": {"max_output_tokens": MAX_OUTPUT}}),
    )
    .await
}

/// The answer once it is no longer pending or streaming.
async fn settled_answer(gateway: &GatewayProcess, user: &str, conversation: &str) -> Value {
    let started = Instant::now();
    loop {
        let (_, page) = Api::new(gateway, user)
            .get(&format!("/api/conversations/{conversation}/messages"))
            .await;
        let answer = page["items"]
            .as_array()
            .and_then(|items| items.iter().rev().find(|m| m["role"] == "assistant"))
            .cloned();
        if let Some(answer) = answer
            && !matches!(answer["status"].as_str(), Some("pending" | "streaming"))
        {
            return answer;
        }
        assert!(
            started.elapsed() < Duration::from_secs(60),
            "the answer never settled: {page}"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

/// Sends `content` in `conversation` over HTTP; the answer's status and body.
async fn send(
    api: &Api<'_>,
    conversation: &str,
    client_id: &str,
    content: &str,
) -> (StatusCode, Value) {
    api.post(
        &format!("/api/conversations/{conversation}/messages"),
        &json!({"client_message_id": client_id, "content": content}),
    )
    .await
}

async fn usage_total(gateway: &GatewayProcess, user: &str) -> Value {
    let (status, usage) = Api::new(gateway, user)
        .get("/api/usage?group_by=model")
        .await;
    assert_eq!(status, StatusCode::OK, "{usage}");
    usage["total"].clone()
}

#[tokio::test]
async fn concurrent_turns_never_pass_the_budget_in_process() {
    let running = on_sqlite(&budget_env(&[])).await;
    concurrent_turns_never_pass_the_budget(&running).await;
}

#[tokio::test]
async fn concurrent_turns_never_pass_the_budget_on_redis() {
    let running = on_postgres_and_redis(&budget_env(&[])).await;
    concurrent_turns_never_pass_the_budget(&running).await;
}

/// 20 turns at once under a budget of about three: the money spent stays within it, every
/// other turn is refused with `budget_exceeded` before the provider is called, and the budget
/// and usage agree with the stored rows.
async fn concurrent_turns_never_pass_the_budget(running: &Running) {
    let gateway = &running.gateway;
    let fake = FakeProvider::start(vec![], Reply::sse(openai_stream(&words(50)))).await;
    let user = "spender";
    let mut conversations = Vec::new();
    for _ in 0..20 {
        conversations.push(priced_conversation(gateway, user, &fake).await);
    }
    let api = Api::new(gateway, user);
    let sends = conversations.iter().enumerate().map(|(i, c)| {
        let api = &api;
        async move { send(api, c, &format!("b-{i}"), "go").await }
    });
    let answers = futures_util::future::join_all(sends).await;
    let mut completed = 0;
    let mut refused = 0;
    for ((status, body), conversation) in answers.iter().zip(&conversations) {
        if *status == StatusCode::PAYMENT_REQUIRED {
            assert_eq!(body["error"]["code"], "budget_exceeded", "{body}");
            refused += 1;
            continue;
        }
        assert!(status.is_success(), "{status} {body}");
        let answer = settled_answer(gateway, user, conversation).await;
        match answer["status"].as_str() {
            Some("complete") => completed += 1,
            _ => {
                assert_eq!(answer["error"]["code"], "budget_exceeded", "{answer}");
                refused += 1;
            }
        }
    }
    let calls = fake.requests().len();
    assert_eq!(
        calls, completed,
        "a refused turn never reached the provider"
    );
    assert!((1..=3).contains(&completed), "{completed} turns completed");
    assert_eq!(completed + refused, 20);
    let total = usage_total(gateway, user).await;
    let spent = total["cost_micros"].as_i64().unwrap();
    assert_eq!(spent, TURN_COST * i64::try_from(completed).unwrap());
    // The report adds up the stored rows.
    let rows = running
        .text_rows(
            "SELECT CAST(COALESCE(SUM(cost_micros), 0) AS text), CAST(COUNT(*) AS text) \
             FROM usage_logs",
        )
        .await;
    assert_eq!(
        rows,
        vec![vec![spent.to_string(), total["turns"].to_string()]]
    );
    assert!(spent <= BUDGET, "{spent} spent of {BUDGET}");
    let (status, budget) = api.get("/api/budget").await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(budget["spent_micros"], json!(spent), "{budget}");
    assert_eq!(budget["limit_micros"], json!(BUDGET));
    assert_eq!(
        budget["reserved_micros"],
        json!(0),
        "every hold was settled"
    );
    assert_eq!(budget["period"], "month");
    // Another user's budget is their own.
    let other = priced_conversation(gateway, "saver", &fake).await;
    let (status, _) = send(&Api::new(gateway, "saver"), &other, "s-1", "go").await;
    assert!(status.is_success());
    assert_eq!(
        settled_answer(gateway, "saver", &other).await["status"],
        "complete"
    );
}

#[tokio::test]
async fn a_personal_cap_below_the_operators_applies_in_process() {
    let running = on_sqlite(&[("BESTCHAT_ADMINS", "boss".to_owned())]).await;
    a_personal_cap_below_the_operators_applies(&running.gateway).await;
}

#[tokio::test]
async fn a_personal_cap_below_the_operators_applies_on_redis() {
    let running = on_postgres_and_redis(&[("BESTCHAT_ADMINS", "boss".to_owned())]).await;
    a_personal_cap_below_the_operators_applies(&running.gateway).await;
}

/// The admin's limit for the user, the user's lower cap, and a cap set again after spending
/// without one (what was spent meanwhile counts).
async fn a_personal_cap_below_the_operators_applies(gateway: &GatewayProcess) {
    let fake = FakeProvider::start(vec![], Reply::sse(openai_stream(&words(50)))).await;
    let api = Api::new(gateway, "careful");
    let (_, me) = api.get("/api/budget").await;
    assert_eq!(me["limit_micros"], Value::Null, "no default here");
    let (_, users) = Api::new(gateway, "boss").get("/api/admin/users").await;
    let careful = users["items"]
        .as_array()
        .unwrap()
        .iter()
        .find(|u| u["subject"] == "careful")
        .unwrap()["id"]
        .as_str()
        .unwrap()
        .to_owned();
    let (status, _) = Api::new(gateway, "boss")
        .put(
            &format!("/api/admin/users/{careful}/budget"),
            &json!({"limit_micros": BUDGET, "period": "month"}),
        )
        .await;
    assert_eq!(status, StatusCode::OK);
    let (status, body) = api
        .put("/api/budget", &json!({"personal_limit_micros": 100}))
        .await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert_eq!(body["personal_limit_micros"], 100);
    assert_eq!(body["limit_micros"], json!(BUDGET));
    // The turn's hold (about 350) does not fit the cap of 100: refused before the provider.
    let conversation = priced_conversation(gateway, "careful", &fake).await;
    let (status, _) = send(&api, &conversation, "c-1", "go").await;
    assert!(status.is_success());
    let answer = settled_answer(gateway, "careful", &conversation).await;
    assert_eq!(answer["error"]["code"], "budget_exceeded", "{answer}");
    assert!(fake.requests().is_empty());
    // Bad caps are refused; clearing the cap lets the operator's limit apply again.
    let (status, body) = api
        .put("/api/budget", &json!({"personal_limit_micros": -1}))
        .await;
    assert_error(status, &body, 422, "validation_failed");
    let (status, body) = api.put("/api/budget", &json!({"personal_limit": 5})).await;
    assert_eq!(status.as_u16() / 100, 4, "{body}");
    let (status, _) = api
        .put("/api/budget", &json!({"personal_limit_micros": null}))
        .await;
    assert_eq!(status, StatusCode::OK);
    let (status, _) = api
        .post(
            &format!(
                "/api/conversations/{conversation}/messages/{}/retry",
                answer["id"].as_str().unwrap()
            ),
            &json!({}),
        )
        .await;
    assert!(status.is_success(), "{status}");
    assert_eq!(
        settled_answer(gateway, "careful", &conversation).await["status"],
        "complete"
    );
    assert_eq!(fake.requests().len(), 1);
    // A cap again, above what was spent but below it plus the next call's hold: refused,
    // though the ledger kept under the first cap never saw the uncapped turn's cost.
    let (status, body) = api
        .put(
            "/api/budget",
            &json!({"personal_limit_micros": TURN_COST + 200}),
        )
        .await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(body["spent_micros"], json!(TURN_COST), "{body}");
    let (status, _) = send(&api, &conversation, "c-2", "again").await;
    assert!(status.is_success());
    let answer = settled_answer(gateway, "careful", &conversation).await;
    assert_eq!(answer["error"]["code"], "budget_exceeded", "{answer}");
    assert_eq!(fake.requests().len(), 1, "refused before the provider");
}

#[tokio::test]
async fn a_model_without_prices_is_refused_under_a_budget_in_process() {
    let running = on_sqlite(&budget_env(&[])).await;
    a_model_without_prices_is_refused_under_a_budget(&running.gateway).await;
}

#[tokio::test]
async fn a_model_without_prices_is_refused_under_a_budget_on_redis() {
    let running = on_postgres_and_redis(&budget_env(&[])).await;
    a_model_without_prices_is_refused_under_a_budget(&running.gateway).await;
}

async fn a_model_without_prices_is_refused_under_a_budget(gateway: &GatewayProcess) {
    let fake = FakeProvider::start(vec![], Reply::sse(openai_stream(&words(5)))).await;
    let (status, body) = Api::new(gateway, "frugal")
        .put(
            &format!("/api/provider-configs/{FAKE_PROVIDER}"),
            &json!({"protocol": "openai", "base_url": format!("{}/v1", fake.base_url),
                    "api_key": null,
                    "models": [{"id": FAKE_MODEL, "context_window": 128000, "max_output_tokens": 4096}]}),
        )
        .await;
    assert_eq!(status, StatusCode::OK, "{body}");
    let conversation = new_conversation(
        gateway,
        "frugal",
        &json!({"provider": FAKE_PROVIDER, "model": FAKE_MODEL}),
    )
    .await;
    send(&Api::new(gateway, "frugal"), &conversation, "f-1", "go").await;
    let answer = settled_answer(gateway, "frugal", &conversation).await;
    assert_eq!(answer["error"]["code"], "budget_exceeded", "{answer}");
    assert!(
        answer["error"]["message"]
            .as_str()
            .unwrap()
            .contains("prices")
    );
    assert!(fake.requests().is_empty());
}

#[tokio::test]
async fn admins_see_users_set_budgets_and_read_usage_in_process() {
    let running = on_sqlite(&[("BESTCHAT_ADMINS", "boss".to_owned())]).await;
    admins_see_users_set_budgets_and_read_usage(&running).await;
}

#[tokio::test]
async fn admins_see_users_set_budgets_and_read_usage_on_postgres() {
    let running = on_postgres_and_redis(&[("BESTCHAT_ADMINS", "boss".to_owned())]).await;
    admins_see_users_set_budgets_and_read_usage(&running).await;
}

async fn admins_see_users_set_budgets_and_read_usage(running: &Running) {
    let gateway = &running.gateway;
    let fake = FakeProvider::start(vec![], Reply::sse(openai_stream(&words(50)))).await;
    let conversation = priced_conversation(gateway, "worker", &fake).await;
    send(&Api::new(gateway, "worker"), &conversation, "w-1", "go").await;
    assert_eq!(
        settled_answer(gateway, "worker", &conversation).await["status"],
        "complete"
    );
    let boss = Api::new(gateway, "boss");
    let (status, page) = boss.get("/api/admin/users?limit=200").await;
    assert_eq!(status, StatusCode::OK, "{page}");
    let users = page["items"].as_array().unwrap();
    let worker = users.iter().find(|u| u["subject"] == "worker").unwrap();
    assert_eq!(worker["spent_micros"], json!(TURN_COST));
    assert_eq!(worker["limit_micros"], Value::Null);
    let me = users.iter().find(|u| u["subject"] == "boss").unwrap();
    assert_eq!(me["roles"], json!(["admin"]));
    let worker_id = worker["id"].as_str().unwrap();

    // The admin sets a daily limit the worker has already spent: the next send is refused.
    let (status, budget) = boss
        .put(
            &format!("/api/admin/users/{worker_id}/budget"),
            &json!({"limit_micros": TURN_COST, "period": "day"}),
        )
        .await;
    assert_eq!(status, StatusCode::OK, "{budget}");
    assert_eq!(budget["limit_micros"], json!(TURN_COST));
    assert_eq!(budget["period"], "day");
    assert_eq!(budget["spent_micros"], json!(TURN_COST));
    // Audited under the admin who did it, naming whom; the list read before it too.
    let audited = running
        .text_rows(
            "SELECT action, COALESCE(target_type, ''), COALESCE(target_id, '') FROM audit_log \
             WHERE action LIKE 'admin.%' ORDER BY created_at, id",
        )
        .await;
    assert_eq!(
        audited,
        vec![
            vec!["admin.users.list".to_owned(), String::new(), String::new()],
            vec![
                "admin.budget.put".to_owned(),
                "user".to_owned(),
                worker_id.to_owned()
            ]
        ]
    );
    let boss_id = users.iter().find(|u| u["subject"] == "boss").unwrap()["id"]
        .as_str()
        .unwrap()
        .to_owned();
    let actors = running
        .text_rows(
            "SELECT DISTINCT CAST(user_id AS text) FROM audit_log WHERE action LIKE 'admin.%'",
        )
        .await;
    assert_eq!(actors, vec![vec![boss_id]], "the admin is the actor");
    let second = priced_conversation(gateway, "worker", &fake).await;
    let (status, body) = send(&Api::new(gateway, "worker"), &second, "w-2", "again").await;
    assert_error(status, &body, 402, "budget_exceeded");
    assert!(
        body["error"]["message"]
            .as_str()
            .unwrap()
            .contains("resets at")
    );
    assert_eq!(fake.requests().len(), 1);
    let (_, mine) = Api::new(gateway, "worker").get("/api/budget").await;
    assert_eq!(mine["limit_micros"], json!(TURN_COST));

    // Usage of every user, by user, agrees with the worker's own report.
    let (status, by_user) = boss.get("/api/admin/usage?group_by=user").await;
    assert_eq!(status, StatusCode::OK, "{by_user}");
    let row = by_user["items"]
        .as_array()
        .unwrap()
        .iter()
        .find(|i| i["key"] == worker_id)
        .unwrap()
        .clone();
    let own = usage_total(gateway, "worker").await;
    assert_eq!(row["cost_micros"], own["cost_micros"]);
    assert_eq!(row["turns"], own["turns"]);
    let (status, body) = boss.get("/api/admin/usage?group_by=weekday").await;
    assert_error(status, &body, 422, "validation_failed");
    let (status, body) = Api::new(gateway, "worker")
        .get("/api/usage?group_by=user")
        .await;
    assert_error(status, &body, 422, "validation_failed");

    // Bad input to the admin's budget route.
    for (path, body) in [
        (
            format!("/api/admin/users/{worker_id}/budget"),
            json!({"limit_micros": -5, "period": "day"}),
        ),
        (
            format!("/api/admin/users/{worker_id}/budget"),
            json!({"limit_micros": 5, "period": "week"}),
        ),
        (
            format!("/api/admin/users/{worker_id}/budget"),
            json!({"limit_micros": 5}),
        ),
        // A limit left out is not "no limit".
        (
            format!("/api/admin/users/{worker_id}/budget"),
            json!({"period": "day"}),
        ),
    ] {
        let (status, answer) = boss.put(&path, &body).await;
        assert_eq!(status.as_u16() / 100, 4, "{body} → {answer}");
    }
    let (status, body) = boss
        .put(
            &format!("/api/admin/users/{}/budget", uuid::Uuid::now_v7()),
            &json!({"limit_micros": 5, "period": "day"}),
        )
        .await;
    assert_error(status, &body, 404, "user_not_found");
    let (status, body) = boss
        .put(
            "/api/admin/users/not-a-uuid/budget",
            &json!({"limit_micros": 5, "period": "day"}),
        )
        .await;
    assert_error(status, &body, 404, "user_not_found");
}

const STRIPE_SECRET_KEY: &str = "sk_test_bestchat";
const STRIPE_WEBHOOK_SECRET: &str = "whsec_bestchat_test";

/// The header Stripe would send; the signature is computed independently of the server's code
/// (HMAC-SHA256 of `t.payload`, hex), so a mistake there cannot pass here too.
fn stripe_signature(payload: &str, t: i64, secret: &str) -> String {
    use aws_lc_rs::hmac;
    let tag = hmac::sign(
        &hmac::Key::new(hmac::HMAC_SHA256, secret.as_bytes()),
        format!("{t}.{payload}").as_bytes(),
    );
    let hex: String = tag.as_ref().iter().map(|b| format!("{b:02x}")).collect();
    format!("t={t},v1={hex}")
}

#[tokio::test]
async fn prepaid_credit_through_stripe_in_process() {
    prepaid_credit_through_stripe(false).await;
}

#[tokio::test]
async fn prepaid_credit_through_stripe_on_postgres() {
    prepaid_credit_through_stripe(true).await;
}

/// Checkout against a fake Stripe, then its webhook: a valid signature credits once however
/// often it is delivered; a bad or stale one is 400 and credits nothing; the credit is a limit.
async fn prepaid_credit_through_stripe(on_postgres: bool) {
    let stripe = FakeProvider::start(
        vec![],
        Reply::json(
            200,
            r#"{"id":"cs_test_a1","object":"checkout.session","mode":"payment","payment_status":"unpaid","url":"https://checkout.stripe.com/c/pay/cs_test_a1"}"#,
        ),
    )
    .await;
    let env = vec![
        ("BESTCHAT_BILLING", "1".to_owned()),
        ("STRIPE_API_BASE", stripe.base_url.clone()),
        ("STRIPE_SECRET_KEY", STRIPE_SECRET_KEY.to_owned()),
        ("STRIPE_WEBHOOK_SECRET", STRIPE_WEBHOOK_SECRET.to_owned()),
    ];
    let running = if on_postgres {
        on_postgres_and_redis(&env).await
    } else {
        on_sqlite(&env).await
    };
    let gateway = &running.gateway;
    let fake = FakeProvider::start(vec![], Reply::sse(openai_stream(&words(50)))).await;
    let buyer = Api::new(gateway, "buyer");

    // No credit yet: a turn is refused at once.
    let conversation = priced_conversation(gateway, "buyer", &fake).await;
    let (status, body) = send(&buyer, &conversation, "p-1", "go").await;
    assert_error(status, &body, 402, "budget_exceeded");
    assert!(
        body["error"]["message"]
            .as_str()
            .unwrap()
            .contains("credit")
    );

    let (status, body) = buyer
        .post(
            "/api/billing/checkout",
            &json!({"amount_micros": 5_000_000}),
        )
        .await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert_eq!(body["url"], "https://checkout.stripe.com/c/pay/cs_test_a1");
    let sent = stripe.requests();
    assert_eq!(sent.len(), 1);
    assert_eq!(sent[0].method, "POST");
    assert_eq!(sent[0].path, "/v1/checkout/sessions");
    assert_eq!(
        sent[0].header("authorization"),
        Some(format!("Bearer {STRIPE_SECRET_KEY}").as_str())
    );
    assert!(sent[0].header("idempotency-key").is_some());
    let form = String::from_utf8(sent[0].body.clone()).unwrap();
    for field in [
        "mode=payment",
        "line_items%5B0%5D%5Bprice_data%5D%5Bunit_amount%5D=500",
        "line_items%5B0%5D%5Bprice_data%5D%5Bcurrency%5D=usd",
        "client_reference_id=",
    ] {
        assert!(form.contains(field), "{field} in {form}");
    }
    for bad in [
        json!({"amount_micros": 5}),
        json!({"amount_micros": 5_000_001}),
        json!({}),
    ] {
        let (status, body) = buyer.post("/api/billing/checkout", &bad).await;
        assert_eq!(status.as_u16() / 100, 4, "{bad} → {body}");
    }
    let (_, billing) = buyer.get("/api/billing").await;
    assert_eq!(billing["balance_micros"], 0);
    assert_eq!(billing["payments"][0]["status"], "pending");

    let event = json!({
        "id": "evt_test_1", "object": "event", "type": "checkout.session.completed",
        "data": {"object": {"id": "cs_test_a1", "object": "checkout.session",
                 "payment_status": "paid", "amount_total": 500, "currency": "usd"}}
    })
    .to_string();
    let http = reqwest::Client::new();
    let deliver = |payload: String, signature: String| {
        http.post(gateway.url("/api/billing/webhook"))
            .header("stripe-signature", signature)
            .header("content-type", "application/json")
            .body(payload)
            .send()
    };
    // Bad and stale signatures credit nothing.
    for signature in [
        stripe_signature(&event, now_epoch(), "whsec_wrong"),
        stripe_signature(&event, now_epoch() - 600, STRIPE_WEBHOOK_SECRET),
        "t=1,v1=00".to_owned(),
        String::new(),
    ] {
        let response = deliver(event.clone(), signature).await.unwrap();
        assert_eq!(response.status(), 400);
        let body: Value = response.json().await.unwrap();
        assert_eq!(body["error"]["code"], "invalid_signature");
    }
    let tampered = event.replace("cs_test_a1", "cs_test_zz");
    let response = deliver(
        tampered,
        stripe_signature(&event, now_epoch(), STRIPE_WEBHOOK_SECRET),
    )
    .await
    .unwrap();
    assert_eq!(
        response.status(),
        400,
        "a signature covers the payload it came with"
    );
    let (_, billing) = buyer.get("/api/billing").await;
    assert_eq!(billing["balance_micros"], 0);
    // Signed, but not an event this deployment can record: refused in the error shape, not 500.
    for odd in [
        json!({"id": "", "type": "checkout.session.completed", "data": {"object": {"id": "cs_test_a1", "payment_status": "paid"}}}),
        json!({"id": "evt_x", "type": "checkout.session.completed", "data": {"object": {"id": "x".repeat(300), "payment_status": "paid"}}}),
        json!({"id": "evt_y"}),
    ] {
        let payload = odd.to_string();
        let response = deliver(
            payload.clone(),
            stripe_signature(&payload, now_epoch(), STRIPE_WEBHOOK_SECRET),
        )
        .await
        .unwrap();
        assert_eq!(response.status(), 422, "{odd}");
        let body: Value = response.json().await.unwrap();
        assert_eq!(body["error"]["code"], "validation_failed");
    }

    // Delivered three times, credited once.
    for _ in 0..3 {
        let response = deliver(
            event.clone(),
            stripe_signature(&event, now_epoch(), STRIPE_WEBHOOK_SECRET),
        )
        .await
        .unwrap();
        assert_eq!(response.status(), 200);
    }
    let (_, billing) = buyer.get("/api/billing").await;
    assert_eq!(billing["balance_micros"], 5_000_000, "{billing}");
    assert_eq!(billing["payments"][0]["status"], "paid");
    assert_eq!(billing["payments"].as_array().unwrap().len(), 1);

    // The credit pays for a turn, and the balance goes down by its cost.
    let (status, body) = send(&buyer, &conversation, "p-2", "go").await;
    assert!(status.is_success(), "{body}");
    assert_eq!(
        settled_answer(gateway, "buyer", &conversation).await["status"],
        "complete"
    );
    let (_, billing) = buyer.get("/api/billing").await;
    assert_eq!(billing["balance_micros"], 5_000_000 - TURN_COST);
    let (_, budget) = buyer.get("/api/budget").await;
    assert_eq!(budget["balance_micros"], 5_000_000 - TURN_COST);
}

#[tokio::test]
async fn billing_routes_say_when_billing_is_off() {
    let running = on_sqlite(&[]).await;
    let api = Api::new(&running.gateway, "nobody");
    let (status, body) = api.get("/api/billing").await;
    assert_error(status, &body, 404, "billing_off");
    let (status, body) = api
        .post(
            "/api/billing/checkout",
            &json!({"amount_micros": 5_000_000}),
        )
        .await;
    assert_error(status, &body, 404, "billing_off");
    let response = reqwest::Client::new()
        .post(running.gateway.url("/api/billing/webhook"))
        .body("{}")
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 404);
    // Without a limit, the budget says so.
    let (status, budget) = api.get("/api/budget").await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(budget["limit_micros"], Value::Null);
    assert_eq!(budget["balance_micros"], Value::Null);
    assert_eq!(budget["at_limit"], "stop");
}
