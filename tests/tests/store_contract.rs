//! One contract for the storage ports, run against both adapters: SQLite on a temporary file
//! and PostgreSQL on a fresh database.

use bestchat_app::state::Store;
use bestchat_domain::ErrorCode;
use bestchat_domain::context::{ContextOptimization, Strategy};
use bestchat_domain::conversation::{
    Conversation, ConversationPatch, ConversationSettings, DEFAULT_TITLE,
};
use bestchat_domain::file::{FileKind, FileRecord, FileStatus, Processed};
use bestchat_domain::ids::{
    ConversationId, FileId, MessageId, Subject, ToolExecutionId, ToolId, UserId,
};
use bestchat_domain::message::{
    FinishReason, Message, MessageError, MessageStatus, Role, ToolCall, Usage,
};
use bestchat_domain::model_ref::{ModelId, ModelRef, ProviderId};
use bestchat_domain::page::PageRequest;
use bestchat_domain::ports::store::{
    AuditEntry, AutoApprovalRecord, ExecutionFilter, Finisher, LeaseId, StepRecords, StoreError,
    TurnStart,
};
use bestchat_domain::time::{Timestamp, now};
use bestchat_domain::tool::{
    DecidedBy, ExecutionDecision, ExecutionError, ExecutionStatus, ExecutionUsage, ToolExecution,
    UserTool, Verdict, module_key,
};
use bestchat_domain::usage::{UsageGroup, UsageLog, UsageQuery, UsageSums};
use bestchat_store::{PgSettings, PgStore, SqliteStore};
use bestchat_tests::TempDir;
use bestchat_tests::postgres::TestDatabase;
use chrono_free::plus_micros;

/// Time arithmetic without another dependency: timestamps are micros in the domain.
mod chrono_free {
    use bestchat_domain::time::{Timestamp, from_micros, to_micros};

    pub fn plus_micros(at: Timestamp, micros: i64) -> Timestamp {
        from_micros(to_micros(at) + micros).unwrap()
    }
}

async fn sqlite_store() -> (SqliteStore, TempDir) {
    let dir = TempDir::new("store");
    let store = SqliteStore::open(&dir.path().join("t.db")).unwrap();
    store.migrate().await.unwrap();
    (store, dir)
}

async fn pg_store() -> (PgStore, TestDatabase) {
    let db = TestDatabase::create().await;
    let store = PgStore::connect(db.url(), &PgSettings::default()).unwrap();
    store.migrate().await.unwrap();
    (store, db)
}

macro_rules! contract {
    ($($case:ident),* $(,)?) => {
        mod sqlite {
            $(
                #[tokio::test]
                async fn $case() {
                    let (store, _dir) = super::sqlite_store().await;
                    super::$case(&store).await;
                }
            )*
        }
        mod postgres {
            $(
                #[tokio::test]
                async fn $case() {
                    let (store, _db) = super::pg_store().await;
                    super::$case(&store).await;
                }
            )*
        }
    };
}

contract!(
    users_are_recorded_once,
    conversation_crud,
    conversations_page_newest_first,
    conversations_are_searched_by_title,
    pages_survive_equal_timestamps,
    users_are_isolated,
    messages_round_trip_every_field,
    messages_page_oldest_first,
    deleting_a_conversation_deletes_its_messages,
    client_message_ids_are_unique_per_conversation,
    a_turn_starts_once_per_client_message_id,
    a_new_turn_waits_for_the_previous_one,
    a_tool_loop_holds_the_turn_until_its_next_step,
    only_a_failed_last_answer_is_retried,
    a_turn_is_claimed_once_and_finished_with_its_usage,
    optimizations_are_recorded_and_the_latest_summary_found,
    leases_decide_who_ends_an_answer,
    the_sender_ends_only_an_unclaimed_answer,
    tools_are_the_users_own_and_unique_by_name,
    auto_approval_settings_are_kept_per_user,
    a_steps_calls_are_stored_with_it_and_move_by_compare_and_set,
    mcp_servers_are_the_users_own_with_their_sealed_headers,
    usage_is_summed_per_group_and_range,
    roles_follow_the_token,
    budgets_keep_the_operators_part_and_the_users_cap_apart,
    a_payment_is_credited_once,
    files_share_bytes_per_user_and_move_together,
    files_go_with_their_conversation_and_orphans_expire,
);

/// Far enough ahead that nothing lapses during a test.
fn later_by_an_hour(at: Timestamp) -> Timestamp {
    plus_micros(at, 3_600_000_000)
}

async fn user(store: &dyn Store, name: &str) -> UserId {
    let subject = Subject::parse(name).unwrap();
    let id = UserId::from_subject(&subject);
    store.ensure_user(id, &subject, &[]).await.unwrap();
    id
}

fn conversation(user: UserId, title: &str, at: Timestamp) -> Conversation {
    Conversation {
        id: ConversationId::generate(),
        user_id: user,
        title: title.to_owned(),
        provider: ProviderId::parse("echo").unwrap(),
        model: ModelId::parse("echo-1").unwrap(),
        system_prompt: None,
        settings: ConversationSettings::default(),
        created_at: at,
        updated_at: at,
    }
}

fn message(c: &Conversation, role: Role, content: &str, at: Timestamp) -> Message {
    Message {
        id: MessageId::generate(),
        conversation_id: c.id,
        user_id: c.user_id,
        role,
        content: content.to_owned(),
        status: MessageStatus::Complete,
        client_message_id: None,
        reply_to: None,
        provider: None,
        model: None,
        tool_calls: Vec::new(),
        tool_call_id: None,
        token_count: 3,
        usage: None,
        finish_reason: None,
        error: None,
        attachments: Vec::new(),
        created_at: at,
        updated_at: at,
        content_omitted: false,
    }
}

/// Every item of every page, following cursors from the first page.
async fn all_conversation_pages(store: &dyn Store, user: UserId, limit: u32) -> Vec<Vec<String>> {
    let mut pages = Vec::new();
    let mut request = PageRequest { limit, after: None };
    loop {
        let page = store
            .list_conversations(user, None, &request)
            .await
            .unwrap();
        pages.push(page.items.iter().map(|c| c.title.clone()).collect());
        match page.next_cursor {
            Some(cursor) => {
                request = PageRequest::parse(Some(&limit.to_string()), Some(&cursor)).unwrap()
            }
            None => return pages,
        }
    }
}

async fn users_are_recorded_once(store: &dyn Store) {
    let a = user(store, "alice").await;
    let again = user(store, "alice").await;
    assert_eq!(a, again);
    // The row exists: a conversation can reference it.
    store
        .create_conversation(&conversation(a, DEFAULT_TITLE, now()))
        .await
        .unwrap();
}

async fn conversation_crud(store: &dyn Store) {
    let alice = user(store, "alice").await;
    let mut c = conversation(alice, "First", now());
    c.system_prompt = Some("Be brief.".into());
    c.settings.temperature = Some(0.5);
    store.create_conversation(&c).await.unwrap();
    assert_eq!(
        store.get_conversation(alice, c.id).await.unwrap(),
        Some(c.clone())
    );

    let later = plus_micros(c.updated_at, 1_000);
    let settings = ConversationSettings {
        temperature: None,
        max_output_tokens: Some(256),
        fallbacks: vec![ModelRef {
            provider: ProviderId::parse("openai").unwrap(),
            model: ModelId::parse("gpt-4o-mini").unwrap(),
        }],
    };
    let patch = ConversationPatch {
        title: Some("Renamed".into()),
        system_prompt: Some(None),
        settings: Some(settings.clone()),
        ..ConversationPatch::default()
    };
    let updated = store
        .update_conversation(alice, c.id, &patch, later)
        .await
        .unwrap()
        .unwrap();
    assert_eq!(updated.title, "Renamed");
    assert_eq!(updated.system_prompt, None);
    assert_eq!(updated.settings, settings);
    assert_eq!(updated.model, c.model, "fields not in the patch are kept");
    assert_eq!(updated.created_at, c.created_at);
    assert_eq!(updated.updated_at, later);
    assert_eq!(
        store.get_conversation(alice, c.id).await.unwrap(),
        Some(updated.clone())
    );

    // An empty patch changes nothing, not even updated_at.
    let same = store
        .update_conversation(
            alice,
            c.id,
            &ConversationPatch::default(),
            plus_micros(later, 5),
        )
        .await
        .unwrap()
        .unwrap();
    assert_eq!(same, updated);

    assert!(
        store
            .delete_conversation(alice, c.id, &deletion(alice, c.id))
            .await
            .unwrap()
    );
    assert_eq!(store.get_conversation(alice, c.id).await.unwrap(), None);
    assert!(
        !store
            .delete_conversation(alice, c.id, &deletion(alice, c.id))
            .await
            .unwrap()
    );
    assert_eq!(
        store
            .update_conversation(alice, c.id, &patch, later)
            .await
            .unwrap(),
        None
    );
}

async fn conversations_are_searched_by_title(store: &dyn Store) {
    let alice = user(store, "alice").await;
    let bob = user(store, "bob").await;
    let start = now();
    let titles = [
        "Trip to Rome",
        "rome itinerary",
        "Groceries",
        "ROMEO and Juliet",
        "Budget",
    ];
    for (i, title) in titles.iter().enumerate() {
        let c = conversation(alice, title, plus_micros(start, i as i64 * 1000));
        store.create_conversation(&c).await.unwrap();
    }
    store
        .create_conversation(&conversation(bob, "Rome for bob", start))
        .await
        .unwrap();
    let mut request = PageRequest {
        limit: 2,
        after: None,
    };
    let mut found = Vec::new();
    loop {
        let page = store
            .list_conversations(alice, Some("rOmE"), &request)
            .await
            .unwrap();
        found.extend(page.items.iter().map(|c| c.title.clone()));
        let Some(cursor) = page.next_cursor else {
            break;
        };
        request = PageRequest::parse(Some("2"), Some(&cursor)).unwrap();
    }
    assert_eq!(
        found,
        ["ROMEO and Juliet", "rome itinerary", "Trip to Rome"]
    );
    // Text that looks like a pattern is only text.
    for literal in ["%", "_", "Rom%"] {
        let page = store
            .list_conversations(alice, Some(literal), &PageRequest::default())
            .await
            .unwrap();
        assert!(page.items.is_empty(), "{literal} matched {:?}", page.items);
    }
}

async fn conversations_page_newest_first(store: &dyn Store) {
    let alice = user(store, "alice").await;
    let start = now();
    for i in 0..5 {
        let c = conversation(alice, &format!("c{i}"), plus_micros(start, i * 1000));
        store.create_conversation(&c).await.unwrap();
    }
    let pages = all_conversation_pages(store, alice, 2).await;
    assert_eq!(pages, vec![vec!["c4", "c3"], vec!["c2", "c1"], vec!["c0"]]);
    // Updating moves a conversation to the front.
    let first = store
        .list_conversations(
            alice,
            None,
            &PageRequest {
                limit: 5,
                after: None,
            },
        )
        .await
        .unwrap();
    let oldest = first.items.last().unwrap();
    let patch = ConversationPatch {
        title: Some("c0*".into()),
        ..ConversationPatch::default()
    };
    store
        .update_conversation(alice, oldest.id, &patch, plus_micros(start, 10_000))
        .await
        .unwrap();
    let pages = all_conversation_pages(store, alice, 10).await;
    assert_eq!(pages, vec![vec!["c0*", "c4", "c3", "c2", "c1"]]);
}

async fn pages_survive_equal_timestamps(store: &dyn Store) {
    let alice = user(store, "alice").await;
    let at = now();
    let mut expected: Vec<Conversation> = (0..7)
        .map(|i| conversation(alice, &format!("t{i}"), at))
        .collect();
    for c in &expected {
        store.create_conversation(c).await.unwrap();
    }
    // Ties on updated_at are broken by id, newest id first.
    expected.sort_by_key(|c| std::cmp::Reverse(c.id));
    let want: Vec<String> = expected.iter().map(|c| c.title.clone()).collect();
    let got: Vec<String> = all_conversation_pages(store, alice, 3).await.concat();
    assert_eq!(got, want);
}

async fn users_are_isolated(store: &dyn Store) {
    let alice = user(store, "alice").await;
    let bob = user(store, "bob").await;
    let c = conversation(alice, "private", now());
    store.create_conversation(&c).await.unwrap();
    store
        .insert_message(&message(&c, Role::User, "hello", now()))
        .await
        .unwrap();

    assert_eq!(store.get_conversation(bob, c.id).await.unwrap(), None);
    let patch = ConversationPatch {
        title: Some("mine".into()),
        ..ConversationPatch::default()
    };
    assert_eq!(
        store
            .update_conversation(bob, c.id, &patch, now())
            .await
            .unwrap(),
        None
    );
    assert!(
        !store
            .delete_conversation(bob, c.id, &deletion(bob, c.id))
            .await
            .unwrap()
    );
    let bobs = store
        .list_conversations(bob, None, &PageRequest::default())
        .await
        .unwrap();
    assert!(bobs.items.is_empty());
    let seen = store
        .list_messages(bob, c.id, &PageRequest::default())
        .await
        .unwrap();
    assert!(seen.items.is_empty());
    // Alice's data is untouched.
    assert_eq!(
        store
            .get_conversation(alice, c.id)
            .await
            .unwrap()
            .unwrap()
            .title,
        "private"
    );
    assert_eq!(
        store
            .list_messages(alice, c.id, &PageRequest::default())
            .await
            .unwrap()
            .items
            .len(),
        1
    );
}

async fn messages_round_trip_every_field(store: &dyn Store) {
    let alice = user(store, "alice").await;
    let c = conversation(alice, "m", now());
    store.create_conversation(&c).await.unwrap();
    let question = Message {
        client_message_id: Some("client-1".into()),
        attachments: vec![bestchat_domain::file::Attachment {
            file_id: FileId::generate(),
            name: "sums.xlsx".into(),
            content_type: "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet"
                .into(),
            kind: FileKind::Spreadsheet,
            deleted: false,
        }],
        ..message(&c, Role::User, "What is 2+2?", now())
    };
    let answer = Message {
        id: MessageId::generate(),
        role: Role::Assistant,
        content: "4".into(),
        status: MessageStatus::Incomplete,
        client_message_id: None,
        reply_to: Some(question.id),
        provider: Some(ProviderId::parse("openai").unwrap()),
        model: Some(ModelId::parse("gpt-4o").unwrap()),
        tool_calls: vec![ToolCall {
            id: "call_1".into(),
            name: "calculator".into(),
            arguments: serde_json::json!({"expression": "2+2"}),
            signature: Some("opaque-provider-state".into()),
        }],
        token_count: 12,
        usage: Some(Usage {
            input_tokens: 20,
            output_tokens: 12,
            cached_tokens: 4,
            cost_micros: None,
        }),
        finish_reason: Some(FinishReason::ToolCalls),
        error: Some(MessageError {
            code: ErrorCode::ProviderError,
            message: "stream cut".into(),
        }),
        created_at: plus_micros(question.created_at, 1),
        updated_at: plus_micros(question.created_at, 2),
        ..question.clone()
    };
    store.insert_message(&question).await.unwrap();
    store.insert_message(&answer).await.unwrap();
    let page = store
        .list_messages(alice, c.id, &PageRequest::default())
        .await
        .unwrap();
    assert_eq!(page.items, vec![question, answer]);
    assert_eq!(page.next_cursor, None);
}

async fn messages_page_oldest_first(store: &dyn Store) {
    let alice = user(store, "alice").await;
    let c = conversation(alice, "m", now());
    store.create_conversation(&c).await.unwrap();
    let start = now();
    for i in 0..5 {
        store
            .insert_message(&message(
                &c,
                Role::User,
                &format!("m{i}"),
                plus_micros(start, i),
            ))
            .await
            .unwrap();
    }
    let mut seen = Vec::new();
    let mut request = PageRequest {
        limit: 2,
        after: None,
    };
    loop {
        let page = store.list_messages(alice, c.id, &request).await.unwrap();
        assert!(page.items.len() <= 2);
        seen.extend(page.items.iter().map(|m| m.content.clone()));
        match page.next_cursor {
            Some(cursor) => request = PageRequest::parse(Some("2"), Some(&cursor)).unwrap(),
            None => break,
        }
    }
    assert_eq!(seen, vec!["m0", "m1", "m2", "m3", "m4"]);
    // Walking back from the last message, newest first, the last one itself left out.
    let all = store
        .list_messages(alice, c.id, &PageRequest::default())
        .await
        .unwrap()
        .items;
    let last = all.last().unwrap();
    let key = |m: &Message| bestchat_domain::page::CursorKey {
        at: m.created_at,
        id: *m.id.as_uuid(),
    };
    let back = store
        .messages_before(alice, c.id, key(last), 2)
        .await
        .unwrap();
    assert_eq!(
        back.iter().map(|m| m.content.as_str()).collect::<Vec<_>>(),
        vec!["m3", "m2"]
    );
    let rest = store
        .messages_before(alice, c.id, key(&back[1]), 10)
        .await
        .unwrap();
    assert_eq!(
        rest.iter().map(|m| m.content.as_str()).collect::<Vec<_>>(),
        vec!["m1", "m0"]
    );
    let bob = user(store, "bob").await;
    assert!(
        store
            .messages_before(bob, c.id, key(last), 10)
            .await
            .unwrap()
            .is_empty()
    );
}

async fn deleting_a_conversation_deletes_its_messages(store: &dyn Store) {
    let alice = user(store, "alice").await;
    let doomed = conversation(alice, "doomed", now());
    let kept = conversation(alice, "kept", now());
    store.create_conversation(&doomed).await.unwrap();
    store.create_conversation(&kept).await.unwrap();
    let question = message(&doomed, Role::User, "q", now());
    let answer = Message {
        reply_to: Some(question.id),
        ..message(&doomed, Role::Assistant, "a", now())
    };
    store.insert_message(&question).await.unwrap();
    store.insert_message(&answer).await.unwrap();
    store
        .insert_message(&message(&kept, Role::User, "stays", now()))
        .await
        .unwrap();

    assert!(
        store
            .delete_conversation(alice, doomed.id, &deletion(alice, doomed.id))
            .await
            .unwrap()
    );
    let gone = store
        .list_messages(alice, doomed.id, &PageRequest::default())
        .await
        .unwrap();
    assert!(gone.items.is_empty());
    // The message ids are free again: the rows are really gone, not just hidden.
    store.create_conversation(&doomed).await.unwrap();
    store.insert_message(&question).await.unwrap();
    let other = store
        .list_messages(alice, kept.id, &PageRequest::default())
        .await
        .unwrap();
    assert_eq!(other.items.len(), 1);
}

async fn client_message_ids_are_unique_per_conversation(store: &dyn Store) {
    let alice = user(store, "alice").await;
    let c1 = conversation(alice, "one", now());
    let c2 = conversation(alice, "two", now());
    store.create_conversation(&c1).await.unwrap();
    store.create_conversation(&c2).await.unwrap();
    let first = Message {
        client_message_id: Some("same".into()),
        ..message(&c1, Role::User, "x", now())
    };
    store.insert_message(&first).await.unwrap();
    let repeat = Message {
        id: MessageId::generate(),
        ..first.clone()
    };
    assert!(matches!(
        store.insert_message(&repeat).await,
        Err(StoreError::Conflict(_))
    ));
    let elsewhere = Message {
        id: MessageId::generate(),
        conversation_id: c2.id,
        ..first
    };
    store.insert_message(&elsewhere).await.unwrap();
}

fn pair(c: &Conversation, client_id: &str) -> (Message, Message) {
    let question = Message {
        client_message_id: Some(client_id.to_owned()),
        ..message(c, Role::User, "Why is the sky blue?", now())
    };
    let answer = Message {
        status: MessageStatus::Pending,
        reply_to: Some(question.id),
        token_count: 0,
        ..message(c, Role::Assistant, "", now())
    };
    (question, answer)
}

async fn a_turn_starts_once_per_client_message_id(store: &dyn Store) {
    let alice = user(store, "alice").await;
    let c = conversation(alice, "sky", now());
    store.create_conversation(&c).await.unwrap();
    let (question, answer) = pair(&c, "client-1");
    let later = plus_micros(c.updated_at, 5_000);
    let question = Message {
        created_at: later,
        updated_at: later,
        ..question
    };
    match store
        .start_turn(&question, &answer, later_by_an_hour(now()))
        .await
        .unwrap()
    {
        TurnStart::Started { user, assistant } => {
            assert_eq!(user, question);
            assert_eq!(assistant, answer);
        }
        other => panic!("expected a new turn: {other:?}"),
    }
    // The conversation moves to the top of the list.
    assert_eq!(
        store
            .get_conversation(alice, c.id)
            .await
            .unwrap()
            .unwrap()
            .updated_at,
        later
    );
    // The same client message id again: the original pair, nothing new stored.
    let (again_q, again_a) = pair(&c, "client-1");
    match store
        .start_turn(&again_q, &again_a, later_by_an_hour(now()))
        .await
        .unwrap()
    {
        TurnStart::Existing { user, assistant } => {
            assert_eq!(user.id, question.id);
            assert_eq!(assistant.id, answer.id);
        }
        other => panic!("expected the original pair: {other:?}"),
    }
    let all = store
        .list_messages(alice, c.id, &PageRequest::default())
        .await
        .unwrap();
    assert_eq!(all.items.len(), 2);
    assert_eq!(
        store
            .get_message(alice, answer.id)
            .await
            .unwrap()
            .unwrap()
            .status,
        MessageStatus::Pending
    );
    let bob = user(store, "bob").await;
    assert_eq!(store.get_message(bob, answer.id).await.unwrap(), None);
}

/// Ends `answer` as its turn would, with `status`.
async fn end_answer(store: &dyn Store, answer: &Message, status: MessageStatus) {
    let lease = LeaseId::generate();
    assert!(
        store
            .claim_turn(
                answer.user_id,
                answer.id,
                lease,
                now(),
                later_by_an_hour(now())
            )
            .await
            .unwrap()
    );
    let ended = Message {
        status,
        error: (status == MessageStatus::Error).then(|| MessageError::of(ErrorCode::ProviderError)),
        updated_at: now(),
        ..answer.clone()
    };
    assert!(
        store
            .finish_turn(
                &ended,
                None,
                Finisher::Lease(lease),
                &StepRecords::default()
            )
            .await
            .unwrap()
    );
}

async fn a_new_turn_waits_for_the_previous_one(store: &dyn Store) {
    let alice = user(store, "alice").await;
    let c = conversation(alice, "order", now());
    store.create_conversation(&c).await.unwrap();
    let (q1, a1) = pair(&c, "first");
    assert!(matches!(
        store
            .start_turn(&q1, &a1, later_by_an_hour(now()))
            .await
            .unwrap(),
        TurnStart::Started { .. }
    ));
    // While the answer is pending, then streaming, a new message stores nothing.
    let (q2, a2) = pair(&c, "second");
    assert_eq!(
        store
            .start_turn(&q2, &a2, later_by_an_hour(now()))
            .await
            .unwrap(),
        TurnStart::Busy
    );
    // Claimed (streaming), the same.
    let lease = LeaseId::generate();
    assert!(
        store
            .claim_turn(alice, a1.id, lease, now(), later_by_an_hour(now()))
            .await
            .unwrap()
    );
    assert_eq!(
        store
            .start_turn(&q2, &a2, later_by_an_hour(now()))
            .await
            .unwrap(),
        TurnStart::Busy
    );
    // The repeat of the open turn's own message is still the original pair.
    let (again, again_answer) = pair(&c, "first");
    assert!(matches!(
        store
            .start_turn(&again, &again_answer, later_by_an_hour(now()))
            .await
            .unwrap(),
        TurnStart::Existing { .. }
    ));
    let ended = Message {
        status: MessageStatus::Complete,
        updated_at: now(),
        ..a1.clone()
    };
    assert!(
        store
            .finish_turn(
                &ended,
                None,
                Finisher::Lease(lease),
                &StepRecords::default()
            )
            .await
            .unwrap()
    );
    // Ended: the next one starts, and the stored transcript is in turn order.
    let (q3, a3) = pair(&c, "third");
    assert!(matches!(
        store
            .start_turn(&q3, &a3, later_by_an_hour(now()))
            .await
            .unwrap(),
        TurnStart::Started { .. }
    ));
    let ids: Vec<MessageId> = store
        .list_messages(alice, c.id, &PageRequest::default())
        .await
        .unwrap()
        .items
        .iter()
        .map(|m| m.id)
        .collect();
    assert_eq!(
        ids,
        [q1.id, a1.id, q3.id, a3.id],
        "nothing of the refused send"
    );
    end_answer(store, &a3, MessageStatus::Error).await;

    // Sends racing on an idle conversation: exactly one starts.
    let racing: Vec<(Message, Message)> = (0..8).map(|i| pair(&c, &format!("race-{i}"))).collect();
    let starts = futures_util::future::join_all(
        racing
            .iter()
            .map(|(q, a)| store.start_turn(q, a, later_by_an_hour(now()))),
    )
    .await;
    let started = starts
        .iter()
        .filter(|s| matches!(s, Ok(TurnStart::Started { .. })))
        .count();
    let busy = starts
        .iter()
        .filter(|s| matches!(s, Ok(TurnStart::Busy)))
        .count();
    assert_eq!((started, busy), (1, 7), "{starts:?}");
    let stored = store
        .list_messages(alice, c.id, &PageRequest::default())
        .await
        .unwrap()
        .items;
    assert_eq!(stored.len(), 6);
}

/// A step whose calls run without asking is `complete` at once; its turn stays open while the
/// calls run and, after they end, until the loop's next step exists (or the janitor makes it).
async fn a_tool_loop_holds_the_turn_until_its_next_step(store: &dyn Store) {
    let alice = user(store, "alice").await;
    let c = conversation(alice, "loop", now());
    store.create_conversation(&c).await.unwrap();
    let (question, answer) = pair(&c, "loop-1");
    store
        .start_turn(&question, &answer, later_by_an_hour(now()))
        .await
        .unwrap();
    let lease = LeaseId::generate();
    store
        .claim_turn(alice, answer.id, lease, now(), later_by_an_hour(now()))
        .await
        .unwrap();
    let at = now();
    let step = Message {
        status: MessageStatus::Complete,
        finish_reason: Some(FinishReason::ToolCalls),
        tool_calls: vec![ToolCall {
            id: "call_1".into(),
            name: "calculator".into(),
            arguments: serde_json::json!({"expression": "1 + 1"}),
            signature: None,
        }],
        updated_at: at,
        ..answer.clone()
    };
    let approved = execution(&step, "call_1", ExecutionStatus::Approved, at);
    let deadline = plus_micros(at, 2_000_000);
    let records = StepRecords {
        executions: std::slice::from_ref(&approved),
        results: &[],
        audit: &[],
        continue_by: Some(deadline),
    };
    assert!(
        store
            .finish_turn(&step, None, Finisher::Lease(lease), &records)
            .await
            .unwrap()
    );
    let (q2, a2) = pair(&c, "loop-2");
    assert_eq!(
        store
            .start_turn(&q2, &a2, later_by_an_hour(now()))
            .await
            .unwrap(),
        TurnStart::Busy,
        "the call is approved, not run"
    );
    // The call ends with its result; the next step does not exist yet.
    let ended = ToolExecution {
        status: ExecutionStatus::Succeeded,
        output: Some(serde_json::json!({"result": "2"})),
        expires_at: None,
        updated_at: now(),
        ..approved.clone()
    };
    let result = Message {
        tool_call_id: Some("call_1".into()),
        ..message(&c, Role::Tool, r#"{"result":"2"}"#, now())
    };
    assert!(
        store
            .transition_execution(&ended, ExecutionStatus::Approved, Some(&result), None)
            .await
            .unwrap()
    );
    assert_eq!(
        store
            .start_turn(&q2, &a2, later_by_an_hour(now()))
            .await
            .unwrap(),
        TurnStart::Busy,
        "the loop has not gone on yet"
    );
    // Only past its deadline is the step stalled (its continuation lost).
    assert!(
        store
            .stalled_steps(plus_micros(deadline, -1), 10)
            .await
            .unwrap()
            .is_empty()
    );
    let stalled = store
        .stalled_steps(plus_micros(deadline, 1), 10)
        .await
        .unwrap();
    assert_eq!(
        stalled.iter().map(|m| m.id).collect::<Vec<_>>(),
        vec![step.id]
    );
    // The next step: the step is no longer waiting on anything; the new answer is.
    let next = Message {
        id: MessageId::generate(),
        reply_to: Some(step.id),
        status: MessageStatus::Pending,
        content: String::new(),
        tool_calls: Vec::new(),
        finish_reason: None,
        created_at: now(),
        updated_at: now(),
        ..answer.clone()
    };
    assert!(
        store
            .continue_step(alice, step.id, &next, later_by_an_hour(now()))
            .await
            .unwrap()
    );
    assert!(
        store
            .stalled_steps(later_by_an_hour(now()), 10)
            .await
            .unwrap()
            .is_empty()
    );
    assert_eq!(
        store
            .start_turn(&q2, &a2, later_by_an_hour(now()))
            .await
            .unwrap(),
        TurnStart::Busy,
        "the next step is pending"
    );
    end_answer(store, &next, MessageStatus::Complete).await;
    assert!(matches!(
        store
            .start_turn(&q2, &a2, later_by_an_hour(now()))
            .await
            .unwrap(),
        TurnStart::Started { .. }
    ));
}

async fn only_a_failed_last_answer_is_retried(store: &dyn Store) {
    let alice = user(store, "alice").await;
    let bob = user(store, "bob").await;
    let c = conversation(alice, "retry", now());
    store.create_conversation(&c).await.unwrap();
    let (q1, a1) = pair(&c, "one");
    store
        .start_turn(&q1, &a1, later_by_an_hour(now()))
        .await
        .unwrap();
    let claim_by = later_by_an_hour(now());
    // Not while it runs, and not a complete answer.
    assert_eq!(
        store
            .retry_turn(alice, a1.id, now(), claim_by)
            .await
            .unwrap(),
        None
    );
    end_answer(store, &a1, MessageStatus::Error).await;
    // Not someone else's, and not the question.
    assert_eq!(
        store.retry_turn(bob, a1.id, now(), claim_by).await.unwrap(),
        None
    );
    assert_eq!(
        store
            .retry_turn(alice, q1.id, now(), claim_by)
            .await
            .unwrap(),
        None
    );
    let retried = store
        .retry_turn(alice, a1.id, now(), claim_by)
        .await
        .unwrap()
        .expect("a failed last answer is retried");
    assert_eq!(retried.id, a1.id);
    assert_eq!(retried.status, MessageStatus::Pending);
    assert_eq!(retried.error, None);
    assert_eq!(retried.reply_to, Some(q1.id));
    // Pending again: a turn claims it as a new one, and a second retry does nothing.
    assert_eq!(
        store
            .retry_turn(alice, a1.id, now(), claim_by)
            .await
            .unwrap(),
        None
    );
    end_answer(store, &a1, MessageStatus::Complete).await;
    assert_eq!(
        store
            .retry_turn(alice, a1.id, now(), claim_by)
            .await
            .unwrap(),
        None
    );
    // A failed answer with a later turn after it is history, not retried.
    let (q2, a2) = pair(&c, "two");
    store
        .start_turn(&q2, &a2, later_by_an_hour(now()))
        .await
        .unwrap();
    end_answer(store, &a2, MessageStatus::Error).await;
    let (q3, a3) = pair(&c, "three");
    store
        .start_turn(&q3, &a3, later_by_an_hour(now()))
        .await
        .unwrap();
    end_answer(store, &a3, MessageStatus::Complete).await;
    assert_eq!(
        store
            .retry_turn(alice, a2.id, now(), claim_by)
            .await
            .unwrap(),
        None
    );
    let messages = store
        .list_messages(alice, c.id, &PageRequest::default())
        .await
        .unwrap()
        .items;
    assert_eq!(messages.len(), 6, "a retry adds no message");
}

/// The usage record of one provider call for `answer`.
fn usage_log(answer: &Message) -> UsageLog {
    UsageLog {
        id: uuid::Uuid::now_v7(),
        user_id: answer.user_id,
        conversation_id: answer.conversation_id,
        message_id: answer.id,
        provider: ProviderId::parse("openai").unwrap(),
        model: ModelId::parse("gpt-4o-mini").unwrap(),
        input_tokens: 12,
        output_tokens: 4,
        cached_tokens: 2,
        cost_micros: Some(5),
        latency_ms: 900,
        ttft_ms: Some(120),
        status: MessageStatus::Complete,
        attempts: serde_json::json!([{"provider": "openai", "outcome": "ok"}]),
        created_at: now(),
    }
}

async fn a_turn_is_claimed_once_and_finished_with_its_usage(store: &dyn Store) {
    let alice = user(store, "alice").await;
    let c = conversation(alice, "sky", now());
    store.create_conversation(&c).await.unwrap();
    let (question, answer) = pair(&c, "client-2");
    store
        .start_turn(&question, &answer, later_by_an_hour(now()))
        .await
        .unwrap();
    let lease = LeaseId::generate();
    let expires = later_by_an_hour(now());
    assert!(
        store
            .claim_turn(alice, answer.id, lease, now(), expires)
            .await
            .unwrap()
    );
    assert!(
        !store
            .claim_turn(alice, answer.id, LeaseId::generate(), now(), expires)
            .await
            .unwrap(),
        "claimed once"
    );
    let bob = user(store, "bob").await;
    assert!(
        !store
            .claim_turn(bob, answer.id, LeaseId::generate(), now(), expires)
            .await
            .unwrap()
    );
    assert_eq!(
        store
            .get_message(alice, answer.id)
            .await
            .unwrap()
            .unwrap()
            .status,
        MessageStatus::Streaming
    );

    let done = Message {
        content: "Rayleigh scattering.".into(),
        status: MessageStatus::Complete,
        provider: Some(ProviderId::parse("openai").unwrap()),
        model: Some(ModelId::parse("gpt-4o-mini").unwrap()),
        token_count: 4,
        usage: Some(Usage {
            input_tokens: 12,
            output_tokens: 4,
            cached_tokens: 2,
            cost_micros: Some(5),
        }),
        finish_reason: Some(FinishReason::Stop),
        updated_at: plus_micros(answer.created_at, 900),
        ..answer.clone()
    };
    let log = usage_log(&answer);
    assert!(
        !store
            .finish_turn(
                &done,
                Some(&log),
                Finisher::Lease(LeaseId::generate()),
                &StepRecords::default()
            )
            .await
            .unwrap(),
        "another lease writes nothing"
    );
    assert!(
        store
            .finish_turn(
                &done,
                Some(&log),
                Finisher::Lease(lease),
                &StepRecords::default()
            )
            .await
            .unwrap()
    );
    assert_eq!(
        store.get_message(alice, answer.id).await.unwrap().unwrap(),
        done
    );
    // Written once: the same lease cannot write again, and nothing (usage included) doubles.
    let again = Message {
        content: "again".into(),
        ..done.clone()
    };
    assert!(
        !store
            .finish_turn(
                &again,
                Some(&usage_log(&answer)),
                Finisher::Lease(lease),
                &StepRecords::default()
            )
            .await
            .unwrap()
    );
    assert_eq!(
        store.get_message(alice, answer.id).await.unwrap().unwrap(),
        done
    );
    // A usage row with an id already stored is refused, and the answer's write with it.
    let (q2, a2) = pair(&c, "client-2b");
    store
        .start_turn(&q2, &a2, later_by_an_hour(now()))
        .await
        .unwrap();
    let lease2 = LeaseId::generate();
    store
        .claim_turn(alice, a2.id, lease2, now(), expires)
        .await
        .unwrap();
    let finished2 = Message {
        content: "x".into(),
        status: MessageStatus::Complete,
        ..a2.clone()
    };
    assert!(
        store
            .finish_turn(
                &finished2,
                Some(&log),
                Finisher::Lease(lease2),
                &StepRecords::default()
            )
            .await
            .is_err()
    );
    assert_eq!(
        store
            .get_message(alice, a2.id)
            .await
            .unwrap()
            .unwrap()
            .status,
        MessageStatus::Streaming,
        "all or nothing"
    );
}

async fn optimizations_are_recorded_and_the_latest_summary_found(store: &dyn Store) {
    let alice = user(store, "alice").await;
    let c = conversation(alice, "long", now());
    store.create_conversation(&c).await.unwrap();
    let (question, answer) = pair(&c, "client-3");
    store
        .start_turn(&question, &answer, later_by_an_hour(now()))
        .await
        .unwrap();
    assert_eq!(store.latest_summary(alice, c.id).await.unwrap(), None);
    let at = now();
    let row = |strategy, message_id, summary: Option<&str>, micros| ContextOptimization {
        id: uuid::Uuid::now_v7(),
        user_id: alice,
        conversation_id: c.id,
        message_id,
        strategy,
        tokens_before: 5_000,
        tokens_after: 1_200,
        range_start: Some(question.id),
        range_end: Some(answer.id),
        messages_affected: 2,
        summary: summary.map(str::to_owned),
        summary_model: summary.map(|_| "openai/gpt-4o-mini".to_owned()),
        created_at: plus_micros(at, micros),
    };
    let older = row(Strategy::Summarization, None, Some("older summary"), 0);
    let newer = row(Strategy::Summarization, None, Some("newer summary"), 10);
    let usage = usage_log(&answer);
    store
        .record_optimizations(&[older], std::slice::from_ref(&usage))
        .await
        .unwrap();
    store
        .record_optimizations(std::slice::from_ref(&newer), &[])
        .await
        .unwrap();
    // What a turn did: its rows name the answer and are not summaries of their own.
    let used = row(
        Strategy::Summarization,
        Some(answer.id),
        Some("older summary"),
        20,
    );
    let truncated = row(Strategy::Truncation, Some(answer.id), None, 20);
    store
        .record_optimizations(&[used, truncated], &[])
        .await
        .unwrap();
    assert_eq!(
        store.latest_summary(alice, c.id).await.unwrap(),
        Some(newer.clone())
    );
    // The usage record went in with its rows: a second insert of it is refused, and with it
    // the rows of that call, all or nothing.
    let again = row(Strategy::Summarization, None, Some("lost"), 30);
    assert!(
        store
            .record_optimizations(&[again], &[usage])
            .await
            .is_err()
    );
    assert_eq!(
        store.latest_summary(alice, c.id).await.unwrap(),
        Some(newer)
    );
    // A summary without its text is refused by the schema.
    let empty = row(Strategy::Summarization, None, None, 40);
    assert!(store.record_optimizations(&[empty], &[]).await.is_err());
    let bob = user(store, "bob").await;
    assert_eq!(store.latest_summary(bob, c.id).await.unwrap(), None);
    assert!(
        store
            .delete_conversation(alice, c.id, &deletion(alice, c.id))
            .await
            .unwrap()
    );
    assert_eq!(store.latest_summary(alice, c.id).await.unwrap(), None);
}

async fn leases_decide_who_ends_an_answer(store: &dyn Store) {
    let alice = user(store, "alice").await;
    let c = conversation(alice, "crash", now());
    store.create_conversation(&c).await.unwrap();
    let start = now();
    let claim_by = plus_micros(start, 10_000_000);
    let (question, answer) = pair(&c, "client-4");
    store
        .start_turn(&question, &answer, claim_by)
        .await
        .unwrap();
    // Another conversation's: one conversation has one open turn at a time.
    let c2 = conversation(alice, "crash 2", now());
    store.create_conversation(&c2).await.unwrap();
    let (other_question, other) = pair(&c2, "client-5");
    store
        .start_turn(&other_question, &other, plus_micros(claim_by, 1))
        .await
        .unwrap();
    let before = plus_micros(claim_by, -1);
    let after = plus_micros(claim_by, 1_000);
    assert!(
        store.lapsed_turns(before, 0, 10).await.unwrap().is_empty(),
        "a pending answer within its claim time is left alone"
    );
    let found = store.lapsed_turns(after, 0, 10).await.unwrap();
    assert_eq!(
        found.iter().map(|m| m.id).collect::<Vec<_>>(),
        vec![answer.id, other.id],
        "unclaimed answers, the longest lapsed first"
    );
    assert_eq!(store.lapsed_turns(after, 0, 1).await.unwrap().len(), 1);
    assert_eq!(
        store.lapsed_turns(after, 1, 10).await.unwrap()[0].id,
        other.id,
        "skip passes over answers that could not be ended"
    );

    // A claimed answer is the lease holder's until the lease lapses.
    let lease = LeaseId::generate();
    let expires = plus_micros(after, 5_000_000);
    assert!(
        store
            .claim_turn(alice, answer.id, lease, start, expires)
            .await
            .unwrap()
    );
    let found = store.lapsed_turns(after, 0, 10).await.unwrap();
    assert_eq!(
        found.iter().map(|m| m.id).collect::<Vec<_>>(),
        vec![other.id]
    );
    let lost = Message {
        content: "partial".into(),
        status: MessageStatus::Incomplete,
        error: Some(MessageError::of(ErrorCode::TurnLost)),
        ..answer.clone()
    };
    assert!(
        !store
            .finish_turn(
                &lost,
                None,
                Finisher::Lapsed(after),
                &StepRecords::default()
            )
            .await
            .unwrap(),
        "a live lease cannot be taken"
    );
    // Renewed, it lapses later still.
    let renewed = plus_micros(expires, 5_000_000);
    assert!(store.renew_lease(answer.id, lease, renewed).await.unwrap());
    assert!(
        !store
            .renew_lease(answer.id, LeaseId::generate(), renewed)
            .await
            .unwrap(),
        "only the holder renews"
    );
    let past_first_expiry = plus_micros(expires, 1);
    assert!(
        !store
            .lapsed_turns(past_first_expiry, 0, 10)
            .await
            .unwrap()
            .iter()
            .any(|m| m.id == answer.id)
    );
    // Once it lapses, the janitor ends it, once; then the turn can neither renew nor write.
    let lapsed = plus_micros(renewed, 1);
    assert!(
        store
            .finish_turn(
                &lost,
                None,
                Finisher::Lapsed(lapsed),
                &StepRecords::default()
            )
            .await
            .unwrap()
    );
    assert!(
        !store
            .finish_turn(
                &lost,
                None,
                Finisher::Lapsed(lapsed),
                &StepRecords::default()
            )
            .await
            .unwrap(),
        "once"
    );
    assert!(!store.renew_lease(answer.id, lease, lapsed).await.unwrap());
    let late = Message {
        content: "overwritten".into(),
        status: MessageStatus::Complete,
        ..answer.clone()
    };
    assert!(
        !store
            .finish_turn(&late, None, Finisher::Lease(lease), &StepRecords::default())
            .await
            .unwrap(),
        "the status never flips back"
    );
    assert_eq!(
        store.get_message(alice, answer.id).await.unwrap().unwrap(),
        lost
    );
    // A finished answer is never lapsed.
    assert!(
        store
            .finish_turn(
                &Message {
                    status: MessageStatus::Error,
                    ..other.clone()
                },
                None,
                Finisher::Lapsed(after),
                &StepRecords::default()
            )
            .await
            .unwrap()
    );
    assert!(store.lapsed_turns(lapsed, 0, 10).await.unwrap().is_empty());
}

async fn the_sender_ends_only_an_unclaimed_answer(store: &dyn Store) {
    let alice = user(store, "alice").await;
    let c = conversation(alice, "start", now());
    store.create_conversation(&c).await.unwrap();
    let (question, answer) = pair(&c, "client-6");
    store
        .start_turn(&question, &answer, later_by_an_hour(now()))
        .await
        .unwrap();
    let failed = Message {
        status: MessageStatus::Error,
        error: Some(MessageError::of(ErrorCode::Unavailable)),
        ..answer.clone()
    };
    // A second conversation: the first's turn is still open.
    let c2 = conversation(alice, "start 2", now());
    store.create_conversation(&c2).await.unwrap();
    let (q2, a2) = pair(&c2, "client-7");
    store
        .start_turn(&q2, &a2, later_by_an_hour(now()))
        .await
        .unwrap();
    // A turn claimed the second answer after all: the sender's write must not touch it.
    store
        .claim_turn(
            alice,
            a2.id,
            LeaseId::generate(),
            now(),
            later_by_an_hour(now()),
        )
        .await
        .unwrap();
    let failed2 = Message {
        status: MessageStatus::Error,
        ..a2.clone()
    };
    assert!(
        store
            .finish_turn(&failed, None, Finisher::Unclaimed, &StepRecords::default())
            .await
            .unwrap()
    );
    assert!(
        !store
            .finish_turn(&failed2, None, Finisher::Unclaimed, &StepRecords::default())
            .await
            .unwrap()
    );
    assert_eq!(
        store
            .get_message(alice, a2.id)
            .await
            .unwrap()
            .unwrap()
            .status,
        MessageStatus::Streaming
    );
    assert_eq!(
        store.get_message(alice, answer.id).await.unwrap().unwrap(),
        failed
    );
}

fn user_tool(user: UserId, name: &str, at: Timestamp) -> UserTool {
    let sha = format!("{:064x}", name.len());
    UserTool {
        id: ToolId::generate(),
        user_id: user,
        name: name.into(),
        description: format!("{name} does things"),
        manifest: serde_json::json!({"name": name, "parameters": {"type": "object"}, "risk": "read"}),
        risk: "read".into(),
        module_key: module_key(&sha),
        module_sha256: sha,
        created_at: at,
    }
}

fn deletion(user: UserId, conversation: ConversationId) -> AuditEntry {
    AuditEntry::of(
        user,
        "conversation.delete",
        ("conversation", &conversation.to_string()),
        serde_json::json!({}),
        bestchat_domain::time::now(),
    )
}

fn tool_audit(user: UserId, action: &str, at: Timestamp) -> AuditEntry {
    AuditEntry {
        id: uuid::Uuid::now_v7(),
        user_id: user,
        action: action.into(),
        target_type: Some("tool".into()),
        target_id: None,
        details: serde_json::json!({}),
        created_at: at,
    }
}

async fn tools_are_the_users_own_and_unique_by_name(store: &dyn Store) {
    let (ana, bo) = (user(store, "ana").await, user(store, "bo").await);
    let at = now();
    let weather = user_tool(ana, "weather", at);
    store
        .create_tool(&weather, 50, &tool_audit(ana, "tool.register", at))
        .await
        .unwrap();
    store
        .create_tool(
            &user_tool(ana, "atlas", at),
            50,
            &tool_audit(ana, "tool.register", at),
        )
        .await
        .unwrap();
    // Another user may use the same name; the same user may not.
    store
        .create_tool(
            &user_tool(bo, "weather", at),
            50,
            &tool_audit(bo, "tool.register", at),
        )
        .await
        .unwrap();
    let again = store
        .create_tool(
            &user_tool(ana, "weather", at),
            50,
            &tool_audit(ana, "tool.register", at),
        )
        .await;
    assert!(matches!(again, Err(StoreError::Conflict(_))), "{again:?}");
    // At the cap nothing is written, however many try at once.
    let tries = (0..8).map(|i| {
        let tool = user_tool(bo, &format!("extra{i}"), at);
        async move {
            store
                .create_tool(&tool, 4, &tool_audit(bo, "tool.register", at))
                .await
                .unwrap()
        }
    });
    let written = futures_util::future::join_all(tries).await;
    assert_eq!(written.iter().filter(|w| **w).count(), 3, "{written:?}");
    assert_eq!(store.list_tools(bo).await.unwrap().len(), 4);
    let shas = vec![weather.module_sha256.clone(), "0".repeat(64)];
    assert_eq!(store.modules_in_use(&shas).await.unwrap(), shas[..1]);

    let listed = store.list_tools(ana).await.unwrap();
    assert_eq!(
        listed.iter().map(|t| t.name.as_str()).collect::<Vec<_>>(),
        ["atlas", "weather"]
    );
    let read = store.get_tool(ana, weather.id).await.unwrap().unwrap();
    assert_eq!(read, weather);
    assert!(store.get_tool(bo, weather.id).await.unwrap().is_none());
    assert!(
        !store
            .delete_tool(bo, weather.id, &tool_audit(bo, "tool.delete", at))
            .await
            .unwrap()
    );
    assert!(
        store
            .delete_tool(ana, weather.id, &tool_audit(ana, "tool.delete", at))
            .await
            .unwrap()
    );
    assert!(store.get_tool(ana, weather.id).await.unwrap().is_none());
    assert_eq!(store.list_tools(bo).await.unwrap().len(), 4, "bo's stay");
}

async fn auto_approval_settings_are_kept_per_user(store: &dyn Store) {
    let (ana, bo) = (user(store, "ana").await, user(store, "bo").await);
    assert!(store.get_auto_approval(ana).await.unwrap().is_none());
    let at = now();
    let mut record = AutoApprovalRecord {
        user_id: ana,
        by_risk: serde_json::json!({"read": "auto", "write": "ask"}),
        by_tool: serde_json::json!({"calculator": "deny"}),
        max_per_turn: 3,
        updated_at: at,
    };
    store
        .put_auto_approval(&record, &tool_audit(ana, "settings.auto_approval.put", at))
        .await
        .unwrap();
    assert_eq!(
        store.get_auto_approval(ana).await.unwrap(),
        Some(record.clone())
    );
    record.max_per_turn = 0;
    record.by_tool = serde_json::json!({});
    store
        .put_auto_approval(&record, &tool_audit(ana, "settings.auto_approval.put", at))
        .await
        .unwrap();
    assert_eq!(store.get_auto_approval(ana).await.unwrap(), Some(record));
    assert!(store.get_auto_approval(bo).await.unwrap().is_none());
}

fn execution(step: &Message, call: &str, status: ExecutionStatus, at: Timestamp) -> ToolExecution {
    ToolExecution {
        id: ToolExecutionId::generate(),
        user_id: step.user_id,
        conversation_id: step.conversation_id,
        message_id: step.id,
        tool_call_id: call.to_owned(),
        tool: "calculator".into(),
        risk: "read".into(),
        arguments: serde_json::json!({"expression": "1 + 1"}),
        status,
        decision: None,
        output: None,
        error: None,
        usage: None,
        request: serde_json::json!({"module": {"builtin": "calculator"}}),
        expires_at: Some(plus_micros(at, 1_000_000)),
        created_at: at,
        updated_at: at,
    }
}

async fn a_steps_calls_are_stored_with_it_and_move_by_compare_and_set(store: &dyn Store) {
    let alice = user(store, "alice").await;
    let bob = user(store, "bob").await;
    let c = conversation(alice, "tools", now());
    store.create_conversation(&c).await.unwrap();
    let (question, answer) = pair(&c, "client-tools");
    store
        .start_turn(&question, &answer, later_by_an_hour(now()))
        .await
        .unwrap();
    let lease = LeaseId::generate();
    store
        .claim_turn(alice, answer.id, lease, now(), later_by_an_hour(now()))
        .await
        .unwrap();
    let at = now();
    let waiting = execution(&answer, "call_1", ExecutionStatus::Pending, at);
    let refused = ExecutionDecision {
        by: DecidedBy::Policy,
        verdict: Verdict::Deny,
        rule: "tool:calculator".into(),
        at,
        connection_id: None,
    };
    let denied = ToolExecution {
        decision: Some(refused),
        error: Some(ExecutionError {
            code: "denied".into(),
            message: "denied by the user's settings".into(),
        }),
        expires_at: None,
        ..execution(&answer, "call_2", ExecutionStatus::Denied, at)
    };
    let denial = Message {
        tool_call_id: Some("call_2".into()),
        ..message(&c, Role::Tool, r#"{"error":{"code":"denied"}}"#, at)
    };
    let step = Message {
        status: MessageStatus::AwaitingApproval,
        finish_reason: Some(FinishReason::ToolCalls),
        tool_calls: vec![
            ToolCall {
                id: "call_1".into(),
                name: "calculator".into(),
                arguments: serde_json::json!({"expression": "1 + 1"}),
                signature: None,
            },
            ToolCall {
                id: "call_2".into(),
                name: "calculator".into(),
                arguments: serde_json::json!({}),
                signature: Some("opaque".into()),
            },
        ],
        ..answer.clone()
    };
    let records = StepRecords {
        executions: &[waiting.clone(), denied.clone()],
        results: std::slice::from_ref(&denial),
        audit: &[],
        continue_by: None,
    };
    assert!(
        store
            .finish_turn(&step, None, Finisher::Lease(lease), &records)
            .await
            .unwrap()
    );
    let stored = store.executions_of(alice, answer.id).await.unwrap();
    assert_eq!(
        stored,
        vec![waiting.clone(), denied.clone()],
        "every field round-trips"
    );
    assert!(
        store
            .executions_of(bob, answer.id)
            .await
            .unwrap()
            .is_empty()
    );
    assert_eq!(store.get_execution(bob, waiting.id).await.unwrap(), None);
    let read_back = store.get_message(alice, answer.id).await.unwrap().unwrap();
    assert_eq!(read_back.status, MessageStatus::AwaitingApproval);
    assert_eq!(read_back.tool_calls[1].signature.as_deref(), Some("opaque"));

    // The next step cannot start while a call waits.
    let next = Message {
        id: MessageId::generate(),
        status: MessageStatus::Pending,
        reply_to: Some(answer.id),
        ..message(&c, Role::Assistant, "", now())
    };
    assert!(
        !store
            .continue_step(alice, answer.id, &next, later_by_an_hour(now()))
            .await
            .unwrap()
    );

    assert!(
        !store
            .end_waiting_step(alice, answer.id, MessageStatus::Cancelled, now())
            .await
            .unwrap(),
        "a waiting call keeps the step open"
    );
    assert!(
        !store
            .end_waiting_step(bob, answer.id, MessageStatus::Cancelled, now())
            .await
            .unwrap()
    );
    // Decided once: the second decision finds it moved and writes nothing.
    let approved = ToolExecution {
        status: ExecutionStatus::Approved,
        decision: Some(ExecutionDecision {
            by: DecidedBy::User,
            verdict: Verdict::Approve,
            rule: "user".into(),
            at: now(),
            connection_id: Some("conn-1".into()),
        }),
        ..waiting.clone()
    };
    let entry = AuditEntry {
        id: uuid::Uuid::now_v7(),
        user_id: alice,
        action: "tool_execution.approve".into(),
        target_type: Some("tool_execution".into()),
        target_id: Some(waiting.id.to_string()),
        details: serde_json::json!({}),
        created_at: now(),
    };
    assert!(
        store
            .transition_execution(&approved, ExecutionStatus::Pending, None, Some(&entry))
            .await
            .unwrap()
    );
    let bob_tries = ToolExecution {
        user_id: bob,
        status: ExecutionStatus::Denied,
        ..waiting.clone()
    };
    assert!(
        !store
            .transition_execution(&bob_tries, ExecutionStatus::Approved, None, None)
            .await
            .unwrap(),
        "another user's execution cannot be moved"
    );
    assert!(
        !store
            .transition_execution(&approved, ExecutionStatus::Pending, None, Some(&entry))
            .await
            .unwrap(),
        "no longer pending"
    );
    // Overdue: the approved call nobody started, once its time has passed.
    let overdue = store
        .overdue_executions(plus_micros(at, 2_000_000), 10)
        .await
        .unwrap();
    assert_eq!(
        overdue.iter().map(|e| e.id).collect::<Vec<_>>(),
        [waiting.id]
    );
    assert!(store.overdue_executions(at, 10).await.unwrap().is_empty());

    // Run and ended with its tool message; then the next step starts exactly once.
    let ran = ToolExecution {
        status: ExecutionStatus::Succeeded,
        output: Some(serde_json::json!({"result": "2"})),
        usage: Some(ExecutionUsage {
            wall_ms: 3,
            fuel: 1000,
            memory_bytes: 65536,
        }),
        expires_at: None,
        ..approved.clone()
    };
    let result = Message {
        tool_call_id: Some("call_1".into()),
        ..message(&c, Role::Tool, r#"{"result":"2"}"#, now())
    };
    assert!(
        !store
            .transition_execution(&ran, ExecutionStatus::Running, Some(&result), None)
            .await
            .unwrap(),
        "it is approved, not running: nothing written"
    );
    assert!(
        store
            .transition_execution(&ran, ExecutionStatus::Approved, Some(&result), None)
            .await
            .unwrap()
    );
    let at_last = now();
    let next = Message {
        id: MessageId::generate(),
        created_at: at_last,
        updated_at: at_last,
        ..next.clone()
    };
    assert!(
        store
            .continue_step(alice, answer.id, &next, later_by_an_hour(now()))
            .await
            .unwrap()
    );
    let again = Message {
        id: MessageId::generate(),
        ..next.clone()
    };
    assert!(
        !store
            .continue_step(alice, answer.id, &again, later_by_an_hour(now()))
            .await
            .unwrap(),
        "the next step exists once"
    );
    assert!(
        !store
            .end_waiting_step(alice, answer.id, MessageStatus::Cancelled, now())
            .await
            .unwrap(),
        "no longer waiting"
    );
    let all = store
        .list_messages(alice, c.id, &PageRequest::parse(None, None).unwrap())
        .await
        .unwrap();
    let roles: Vec<(Role, MessageStatus)> = all.items.iter().map(|m| (m.role, m.status)).collect();
    assert_eq!(
        roles,
        [
            (Role::User, MessageStatus::Complete),
            (Role::Assistant, MessageStatus::Complete),
            (Role::Tool, MessageStatus::Complete),
            (Role::Tool, MessageStatus::Complete),
            (Role::Assistant, MessageStatus::Pending),
        ],
        "the waiting step is complete once its calls ended"
    );

    // Listed newest first, filtered, paged.
    let page = PageRequest::parse(Some("1"), None).unwrap();
    let first = store
        .list_executions(alice, &ExecutionFilter::default(), &page)
        .await
        .unwrap();
    assert_eq!(first.items.len(), 1);
    let cursor = first.next_cursor.clone().unwrap();
    let second = store
        .list_executions(
            alice,
            &ExecutionFilter::default(),
            &PageRequest::parse(Some("5"), Some(&cursor)).unwrap(),
        )
        .await
        .unwrap();
    assert_eq!(second.items.len(), 1);
    assert_ne!(first.items[0].id, second.items[0].id);
    let only_denied = store
        .list_executions(
            alice,
            &ExecutionFilter {
                status: Some(ExecutionStatus::Denied),
                conversation: Some(c.id),
            },
            &PageRequest::parse(None, None).unwrap(),
        )
        .await
        .unwrap();
    assert_eq!(only_denied.items, vec![denied]);
    let elsewhere = store
        .list_executions(
            alice,
            &ExecutionFilter {
                status: None,
                conversation: Some(ConversationId::generate()),
            },
            &PageRequest::parse(None, None).unwrap(),
        )
        .await
        .unwrap();
    assert!(elsewhere.items.is_empty());
    assert!(
        store
            .list_executions(
                bob,
                &ExecutionFilter::default(),
                &PageRequest::parse(None, None).unwrap()
            )
            .await
            .unwrap()
            .items
            .is_empty()
    );
}

async fn mcp_servers_are_the_users_own_with_their_sealed_headers(store: &dyn Store) {
    use bestchat_domain::mcp::{McpServer, McpServerId};
    use bestchat_domain::provider::SealedKey;
    let alice = user(store, "alice").await;
    let bob = user(store, "bob").await;
    let id = McpServerId::parse("github").unwrap();
    let at = now();
    let server = McpServer {
        user_id: alice,
        id: id.clone(),
        url: "https://mcp.example.com/mcp".into(),
        header_names: vec!["authorization".into()],
        headers: Some(SealedKey {
            ciphertext: vec![1, 2, 3],
            nonce: vec![4; 12],
            wrapped_data_key: vec![5, 6],
            vault_key_id: "local".into(),
            last4: String::new(),
        }),
        trusted: false,
        enabled: true,
        protocol: Some("2026-07-28".into()),
        tools: serde_json::json!([{"name": "search", "description": "d", "inputSchema": {"type": "object"}}]),
        tools_fetched_at: Some(at),
        created_at: at,
        updated_at: at,
    };
    let entry = |action: &str| AuditEntry {
        id: uuid::Uuid::now_v7(),
        user_id: alice,
        action: action.into(),
        target_type: Some("mcp_server".into()),
        target_id: Some("github".into()),
        details: serde_json::json!({}),
        created_at: now(),
    };
    store
        .put_mcp_server(&server, 1, &entry("mcp_server.put"))
        .await
        .unwrap();
    assert_eq!(
        store.get_mcp_server(alice, &id).await.unwrap(),
        Some(server.clone())
    );
    assert_eq!(store.get_mcp_server(bob, &id).await.unwrap(), None);
    assert!(store.list_mcp_servers(bob).await.unwrap().is_empty());
    // Bob's server of the same id is his own.
    let his = McpServer {
        user_id: bob,
        headers: None,
        header_names: Vec::new(),
        ..server.clone()
    };
    store
        .put_mcp_server(
            &his,
            1,
            &AuditEntry {
                user_id: bob,
                ..entry("mcp_server.put")
            },
        )
        .await
        .unwrap();
    let trusted = McpServer {
        trusted: true,
        updated_at: plus_micros(at, 1),
        ..server.clone()
    };
    // Replacing a server is no new one: the cap of one allows it, and refuses a second.
    assert!(
        store
            .put_mcp_server(&trusted, 1, &entry("mcp_server.put"))
            .await
            .unwrap()
    );
    let second = McpServer {
        id: McpServerId::parse("second").unwrap(),
        ..trusted.clone()
    };
    assert!(
        !store
            .put_mcp_server(&second, 1, &entry("mcp_server.put"))
            .await
            .unwrap()
    );
    assert_eq!(store.list_mcp_servers(alice).await.unwrap(), vec![trusted]);
    assert_eq!(store.list_mcp_servers(bob).await.unwrap(), vec![his]);
    assert!(
        !store
            .delete_mcp_server(bob, &McpServerId::parse("other").unwrap(), &entry("x"))
            .await
            .unwrap()
    );
    assert!(
        store
            .delete_mcp_server(alice, &id, &entry("mcp_server.delete"))
            .await
            .unwrap()
    );
    assert!(store.list_mcp_servers(alice).await.unwrap().is_empty());
    assert_eq!(
        store.list_mcp_servers(bob).await.unwrap().len(),
        1,
        "his stays"
    );
}

/// Runs one turn of `c` to its end with a usage row for `provider/model` at `at`.
async fn turn_with_usage(
    store: &dyn Store,
    c: &Conversation,
    client_id: &str,
    model: (&str, &str),
    cost: Option<i64>,
    at: Timestamp,
) {
    let (question, answer) = pair(c, client_id);
    store
        .start_turn(&question, &answer, later_by_an_hour(now()))
        .await
        .unwrap();
    let lease = LeaseId::generate();
    assert!(
        store
            .claim_turn(c.user_id, answer.id, lease, now(), later_by_an_hour(now()))
            .await
            .unwrap()
    );
    let done = Message {
        status: MessageStatus::Complete,
        finish_reason: Some(FinishReason::Stop),
        ..answer.clone()
    };
    let log = UsageLog {
        provider: ProviderId::parse(model.0).unwrap(),
        model: ModelId::parse(model.1).unwrap(),
        cost_micros: cost,
        created_at: at,
        ..usage_log(&answer)
    };
    assert!(
        store
            .finish_turn(
                &done,
                Some(&log),
                Finisher::Lease(lease),
                &StepRecords::default()
            )
            .await
            .unwrap()
    );
}

async fn usage_is_summed_per_group_and_range(store: &dyn Store) {
    let alice = user(store, "alice").await;
    let bob = user(store, "bob").await;
    // Noon UTC on 2026-11-0d.
    let day = |d: i64| {
        bestchat_domain::time::from_micros((1_793_534_400 + (d - 1) * 86_400) * 1_000_000).unwrap()
    };
    let sky = conversation(alice, "sky", now());
    let sea = conversation(alice, "sea", now());
    let other = conversation(bob, "bob's", now());
    for c in [&sky, &sea, &other] {
        store.create_conversation(c).await.unwrap();
    }
    turn_with_usage(
        store,
        &sky,
        "u-1",
        ("openai", "gpt-4o-mini"),
        Some(5),
        day(1),
    )
    .await;
    turn_with_usage(store, &sky, "u-2", ("openai", "gpt-4o"), Some(40), day(2)).await;
    turn_with_usage(store, &sea, "u-3", ("anthropic", "claude"), None, day(2)).await;
    turn_with_usage(
        store,
        &other,
        "u-4",
        ("openai", "gpt-4o"),
        Some(1000),
        day(2),
    )
    .await;
    let query = |group_by| UsageQuery {
        from: None,
        to: None,
        group_by,
    };
    // Every usage_log row of the helper has 12 input, 4 output and 2 cached tokens.
    let sums = |turns: i64, cost_micros| UsageSums {
        turns,
        input_tokens: 12 * turns,
        output_tokens: 4 * turns,
        cached_tokens: 2 * turns,
        cost_micros,
    };
    let keys = |r: &bestchat_domain::usage::UsageReport| {
        r.items
            .iter()
            .map(|i| (i.key.clone(), i.sums.clone()))
            .collect::<Vec<_>>()
    };

    let by_provider = store
        .usage(Some(alice), &query(UsageGroup::Provider), 100)
        .await
        .unwrap();
    assert_eq!(
        keys(&by_provider),
        vec![
            ("openai".to_owned(), sums(2, 45)),
            ("anthropic".to_owned(), sums(1, 0))
        ],
        "costliest first; an unknown price counts 0; bob's row is not alice's"
    );
    assert_eq!(by_provider.total, sums(3, 45));

    let by_model = store
        .usage(Some(alice), &query(UsageGroup::Model), 100)
        .await
        .unwrap();
    assert_eq!(
        keys(&by_model),
        vec![
            ("openai/gpt-4o".to_owned(), sums(1, 40)),
            ("openai/gpt-4o-mini".to_owned(), sums(1, 5)),
            ("anthropic/claude".to_owned(), sums(1, 0)),
        ]
    );
    let by_conversation = store
        .usage(Some(alice), &query(UsageGroup::Conversation), 100)
        .await
        .unwrap();
    assert_eq!(
        keys(&by_conversation),
        vec![
            (sky.id.to_string(), sums(2, 45)),
            (sea.id.to_string(), sums(1, 0))
        ]
    );
    let by_day = store
        .usage(Some(alice), &query(UsageGroup::Day), 100)
        .await
        .unwrap();
    assert_eq!(
        keys(&by_day),
        vec![
            ("2026-11-01".to_owned(), sums(1, 5)),
            ("2026-11-02".to_owned(), sums(2, 40))
        ],
        "oldest day first"
    );
    let latest = store
        .usage(Some(alice), &query(UsageGroup::Day), 1)
        .await
        .unwrap();
    assert_eq!(
        keys(&latest),
        vec![("2026-11-02".to_owned(), sums(2, 40))],
        "the limit keeps the latest days"
    );
    assert_eq!(latest.total, sums(3, 45));

    // The range is [from, to); the total covers the range, not only the groups listed.
    let second = UsageQuery {
        from: Some(day(2)),
        to: Some(day(3)),
        group_by: UsageGroup::Model,
    };
    let report = store.usage(Some(alice), &second, 1).await.unwrap();
    assert_eq!(
        keys(&report),
        vec![("openai/gpt-4o".to_owned(), sums(1, 40))]
    );
    assert_eq!(report.total, sums(2, 40));
    let before = UsageQuery {
        to: Some(day(1)),
        ..second
    };
    let empty = store.usage(Some(alice), &before, 100).await.unwrap();
    assert!(empty.items.is_empty());
    assert_eq!(empty.total, UsageSums::default());

    // A deleted conversation's spending stays, under `deleted`.
    assert!(
        store
            .delete_conversation(alice, sky.id, &deletion(alice, sky.id))
            .await
            .unwrap()
    );
    let after = store
        .usage(Some(alice), &query(UsageGroup::Conversation), 100)
        .await
        .unwrap();
    assert_eq!(
        keys(&after),
        vec![
            ("deleted".to_owned(), sums(2, 45)),
            (sea.id.to_string(), sums(1, 0))
        ]
    );
    assert_eq!(after.total, sums(3, 45));
}

async fn roles_follow_the_token(store: &dyn Store) {
    let subject = Subject::parse("dev:carol").unwrap();
    let carol = UserId::from_subject(&subject);
    assert_eq!(store.roles(carol).await.unwrap(), None, "never seen");
    let staff = vec!["staff".to_owned()];
    store.ensure_user(carol, &subject, &staff).await.unwrap();
    assert_eq!(store.roles(carol).await.unwrap(), Some(staff));
    let admin = vec!["admin".to_owned(), "staff".to_owned()];
    store.ensure_user(carol, &subject, &admin).await.unwrap();
    assert_eq!(store.roles(carol).await.unwrap(), Some(admin));
    store.ensure_user(carol, &subject, &[]).await.unwrap();
    assert_eq!(store.roles(carol).await.unwrap(), Some(Vec::new()));
}

async fn budgets_keep_the_operators_part_and_the_users_cap_apart(store: &dyn Store) {
    use bestchat_domain::budget::Period;
    use bestchat_domain::ports::store::{BudgetRecord, PeriodStarts};
    let alice = user(store, "alice").await;
    let admin = user(store, "root").await;
    assert_eq!(store.budget(alice).await.unwrap(), None);
    // What was stored, and when it last changed.
    let read = || async {
        let record = store.budget(alice).await.unwrap().unwrap();
        (
            BudgetRecord {
                updated_at: None,
                ..record
            },
            record.updated_at.unwrap(),
        )
    };
    let first = plus_micros(now(), -1_000_000);
    store
        .put_personal_limit(alice, Some(300), first)
        .await
        .unwrap();
    let (record, changed) = read().await;
    assert_eq!(
        record,
        BudgetRecord {
            operator_set: false,
            limit_micros: None,
            period: Period::Month,
            personal_limit_micros: Some(300),
            updated_at: None,
        }
    );
    let entry = AuditEntry::of(
        admin,
        "admin.budget.put",
        ("user", &alice.to_string()),
        serde_json::json!({"limit_micros": 1000}),
        now(),
    );
    store
        .put_operator_budget(alice, Some(1000), Period::Day, now(), &entry)
        .await
        .unwrap();
    let (record, changed_again) = read().await;
    assert_eq!(
        record,
        BudgetRecord {
            operator_set: true,
            limit_micros: Some(1000),
            period: Period::Day,
            personal_limit_micros: Some(300),
            updated_at: None,
        },
        "the admin's change leaves the user's cap"
    );
    assert!(changed_again > changed, "a change moves updated_at");

    // Spending: yesterday's 5 and today's 40 count for the day; everything counts ever.
    let c = conversation(alice, "c", now());
    store.create_conversation(&c).await.unwrap();
    let today = Period::Day.start(now());
    let yesterday = plus_micros(today, -3_600_000_000);
    turn_with_usage(store, &c, "s-1", ("openai", "gpt-4o"), Some(5), yesterday).await;
    turn_with_usage(store, &c, "s-2", ("openai", "gpt-4o"), Some(40), now()).await;
    turn_with_usage(store, &c, "s-3", ("openai", "gpt-4o"), None, now()).await;
    assert_eq!(store.spent_since(alice, Some(today)).await.unwrap(), 40);
    assert_eq!(store.spent_since(alice, None).await.unwrap(), 45);

    let starts = PeriodStarts {
        day: today,
        month: Period::Month.start(now()),
    };
    let first = store
        .users_page(None, 1, Period::Month, starts)
        .await
        .unwrap();
    let second = store
        .users_page(Some(first[0].id), 10, Period::Month, starts)
        .await
        .unwrap();
    let all: Vec<_> = first.iter().chain(second.iter()).collect();
    assert_eq!(all.len(), 2, "two users, paged by id");
    assert!(first[0].id < second[0].id);
    let listed = all.iter().find(|u| u.id == alice).unwrap();
    assert_eq!(listed.subject, "alice");
    assert_eq!(
        listed.spent_micros, 40,
        "her period is the day the admin set"
    );
    assert_eq!(listed.budget.unwrap().limit_micros, Some(1000));
    let root = all.iter().find(|u| u.id == admin).unwrap();
    assert_eq!((root.budget, root.spent_micros), (None, 0));

    // An admin's report covers every user and groups by user.
    let bob = user(store, "bob").await;
    let b = conversation(bob, "b", now());
    store.create_conversation(&b).await.unwrap();
    turn_with_usage(store, &b, "b-1", ("openai", "gpt-4o"), Some(7), now()).await;
    let everyone = store
        .usage(
            None,
            &UsageQuery {
                from: None,
                to: None,
                group_by: UsageGroup::User,
            },
            100,
        )
        .await
        .unwrap();
    let keys: Vec<_> = everyone
        .items
        .iter()
        .map(|i| (i.key.clone(), i.sums.cost_micros))
        .collect();
    assert_eq!(keys, vec![(alice.to_string(), 45), (bob.to_string(), 7)]);
    assert_eq!(everyone.total.turns, 4);
    let by_day = store
        .usage(
            None,
            &UsageQuery {
                from: Some(today),
                to: None,
                group_by: UsageGroup::Day,
            },
            100,
        )
        .await
        .unwrap();
    assert_eq!(by_day.total.cost_micros, 47);
}

async fn a_payment_is_credited_once(store: &dyn Store) {
    use bestchat_domain::ports::store::{Credits, Payment, PaymentStatus};
    let alice = user(store, "alice").await;
    let payment = |id: &str, amount| Payment {
        id: id.to_owned(),
        user_id: alice,
        amount_micros: amount,
        status: PaymentStatus::Pending,
        created_at: now(),
    };
    store
        .add_payment(&payment("cs_1", 5_000_000))
        .await
        .unwrap();
    store
        .add_payment(&payment("cs_2", 7_000_000))
        .await
        .unwrap();
    assert!(matches!(
        store.add_payment(&payment("cs_1", 1)).await,
        Err(StoreError::Conflict(_))
    ));
    assert_eq!(
        store.credits(alice).await.unwrap(),
        Credits::default(),
        "pending is not credit"
    );
    let paid = store.mark_paid("cs_1", now()).await.unwrap().unwrap();
    assert_eq!((paid.user_id, paid.amount_micros), (alice, 5_000_000));
    assert_eq!(paid.status, PaymentStatus::Paid);
    assert_eq!(store.mark_paid("cs_1", now()).await.unwrap(), None);
    assert_eq!(store.mark_paid("cs_unknown", now()).await.unwrap(), None);
    let credits = store.credits(alice).await.unwrap();
    assert_eq!(credits.total_micros, 5_000_000);
    assert!(credits.since.is_some(), "the first payment's time");
    assert!(
        store
            .record_event("evt_1", "checkout.session.completed", now())
            .await
            .unwrap()
    );
    assert!(
        !store
            .record_event("evt_1", "checkout.session.completed", now())
            .await
            .unwrap()
    );
    let listed = store.payments(alice, 10).await.unwrap();
    assert_eq!(listed.len(), 2);
    assert!(
        listed
            .iter()
            .any(|p| p.id == "cs_1" && p.status == PaymentStatus::Paid)
    );
    assert!(
        listed
            .iter()
            .any(|p| p.id == "cs_2" && p.status == PaymentStatus::Pending)
    );
}

fn file(user: UserId, name: &str, sha: char, size: i64, at: Timestamp) -> FileRecord {
    FileRecord {
        id: FileId::generate(),
        user_id: user,
        name: name.to_owned(),
        content_type: "application/pdf".into(),
        size_bytes: size,
        sha256: sha.to_string().repeat(64),
        kind: FileKind::Document,
        status: FileStatus::Uploading,
        pages: None,
        text_chars: None,
        width: None,
        height: None,
        error: None,
        created_at: at,
        updated_at: at,
    }
}

async fn files_share_bytes_per_user_and_move_together(store: &dyn Store) {
    let (ana, bo) = (user(store, "ana").await, user(store, "bo").await);
    let at = now();
    let first = file(ana, "report.pdf", 'a', 1_000, at);
    let again = file(ana, "copy.pdf", 'a', 1_000, plus_micros(at, 1));
    let other = file(ana, "notes.txt", 'b', 500, plus_micros(at, 2));
    let bos = file(bo, "report.pdf", 'a', 1_000, at);
    for f in [&first, &again, &other, &bos] {
        store.create_file(f).await.unwrap();
    }
    // Each content once, uploads not completed included.
    assert_eq!(store.storage_bytes(ana).await.unwrap(), 1_500);
    assert_eq!(store.storage_bytes(bo).await.unwrap(), 1_000);
    assert_eq!(store.get_file(bo, first.id).await.unwrap(), None);
    assert_eq!(store.get_file(ana, first.id).await.unwrap().unwrap(), first);
    assert_eq!(
        store.file_with_bytes(ana, &first.sha256).await.unwrap(),
        None
    );

    let page = store
        .list_files(
            ana,
            &PageRequest {
                limit: 2,
                after: None,
            },
        )
        .await
        .unwrap();
    let names: Vec<_> = page.items.iter().map(|f| f.name.as_str()).collect();
    assert_eq!(names, ["notes.txt", "copy.pdf"]);
    let cursor = bestchat_domain::page::CursorKey::decode(page.next_cursor.as_deref().unwrap());
    let rest = store
        .list_files(
            ana,
            &PageRequest {
                limit: 2,
                after: Some(cursor.unwrap()),
            },
        )
        .await
        .unwrap();
    assert_eq!(rest.items, vec![first.clone()]);
    assert_eq!(rest.next_cursor, None);

    let mut by_ids = store
        .files_by_ids(ana, &[first.id, other.id, bos.id, FileId::generate()])
        .await
        .unwrap();
    by_ids.sort_by_key(|f| f.name.clone());
    assert_eq!(by_ids, vec![other.clone(), first.clone()]);

    // Completing one upload moves every row of the same bytes, and only the user's.
    let later = plus_micros(at, 10);
    let started = store
        .start_processing(ana, first.id, FileKind::Spreadsheet, "text/csv", later)
        .await
        .unwrap()
        .unwrap();
    assert_eq!(
        (started.status, started.kind, started.content_type.as_str()),
        (FileStatus::Processing, FileKind::Spreadsheet, "text/csv")
    );
    assert_eq!(
        store.get_file(ana, again.id).await.unwrap().unwrap().status,
        FileStatus::Processing
    );
    assert_eq!(
        store.get_file(bo, bos.id).await.unwrap().unwrap().status,
        FileStatus::Uploading
    );
    assert_eq!(
        store
            .start_processing(bo, first.id, FileKind::Text, "text/plain", later)
            .await
            .unwrap(),
        None
    );

    let processed = Processed {
        kind: Some(FileKind::Spreadsheet),
        content_type: None,
        pages: Some(2),
        text_chars: Some(1_234),
        width: None,
        height: None,
    };
    let mut done = store
        .finish_processing(ana, &first.sha256, &Ok(processed), plus_micros(at, 20))
        .await
        .unwrap();
    done.sort_by_key(|f| f.name.clone());
    assert_eq!(done.len(), 2);
    for f in &done {
        assert_eq!(
            (f.status, f.pages, f.text_chars, f.content_type.as_str()),
            (FileStatus::Ready, Some(2), Some(1_234), "text/csv")
        );
    }
    assert_eq!(
        store
            .file_with_bytes(ana, &first.sha256)
            .await
            .unwrap()
            .unwrap()
            .id,
        again.id
    );
    // A finished result is not overwritten by a late second outcome.
    let late = store
        .finish_processing(
            ana,
            &first.sha256,
            &Err(MessageError::of(ErrorCode::Internal)),
            plus_micros(at, 30),
        )
        .await
        .unwrap();
    assert!(late.is_empty());

    store
        .start_processing(ana, other.id, FileKind::Text, "text/plain", later)
        .await
        .unwrap();
    let failed = store
        .finish_processing(
            ana,
            &other.sha256,
            &Err(MessageError {
                code: ErrorCode::UnsupportedFileType,
                message: "the archive expands past 64 MiB".into(),
            }),
            later,
        )
        .await
        .unwrap();
    assert_eq!(failed[0].status, FileStatus::Failed);
    assert_eq!(
        failed[0].error.as_ref().map(|e| e.message.as_str()),
        Some("the archive expands past 64 MiB")
    );

    // Deleting one row keeps the bytes while another row of the user holds them.
    assert_eq!(store.delete_file(bo, first.id).await.unwrap(), None);
    assert!(store.delete_file(ana, first.id).await.unwrap().is_some());
    assert!(store.bytes_in_use(ana, &first.sha256).await.unwrap());
    store.delete_file(ana, again.id).await.unwrap().unwrap();
    assert!(!store.bytes_in_use(ana, &first.sha256).await.unwrap());
    assert!(store.bytes_in_use(bo, &first.sha256).await.unwrap());
}

async fn files_go_with_their_conversation_and_orphans_expire(store: &dyn Store) {
    let ana = user(store, "ana").await;
    let at = now();
    let chat = conversation(ana, "with files", at);
    let other_chat = conversation(ana, "other", at);
    store.create_conversation(&chat).await.unwrap();
    store.create_conversation(&other_chat).await.unwrap();
    let kept = file(ana, "a.pdf", 'a', 10, at);
    let attached = file(ana, "b.pdf", 'b', 10, at);
    let stale = file(ana, "c.pdf", 'c', 10, plus_micros(at, -3_600_000_000));
    for f in [&kept, &attached, &stale] {
        store.create_file(f).await.unwrap();
    }
    store
        .attach_files(ana, &[attached.id], chat.id)
        .await
        .unwrap();
    // A file keeps the conversation it was first attached in.
    store
        .attach_files(ana, &[attached.id], other_chat.id)
        .await
        .unwrap();
    let of_chat = store.files_of_conversation(ana, chat.id).await.unwrap();
    assert_eq!(of_chat, vec![attached.clone()]);
    assert!(
        store
            .files_of_conversation(ana, other_chat.id)
            .await
            .unwrap()
            .is_empty()
    );

    assert!(
        store
            .delete_conversation(ana, chat.id, &deletion(ana, chat.id))
            .await
            .unwrap()
    );
    assert_eq!(store.get_file(ana, attached.id).await.unwrap(), None);
    assert!(store.get_file(ana, kept.id).await.unwrap().is_some());

    let expired = store
        .expire_uploads(plus_micros(at, -60_000_000), 10)
        .await
        .unwrap();
    assert_eq!(expired, vec![stale.clone()]);
    assert_eq!(store.get_file(ana, stale.id).await.unwrap(), None);
    assert!(
        store
            .expire_uploads(plus_micros(at, 1), 10)
            .await
            .unwrap()
            .len()
            == 1
    );
}
