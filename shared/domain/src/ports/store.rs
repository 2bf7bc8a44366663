//! Storage ports, implemented on PostgreSQL and SQLite with the same behaviour.

use async_trait::async_trait;

use crate::budget::Period;
use crate::context::ContextOptimization;
use crate::conversation::{Conversation, ConversationPatch};
use crate::file::{FileKind, FileRecord, Processed};
use crate::ids::{ConversationId, FileId, MessageId, Subject, ToolExecutionId, ToolId, UserId};
use crate::mcp::{McpServer, McpServerId};
use crate::message::{Message, MessageError, MessageStatus};
use crate::model_ref::ProviderId;
use crate::page::{CursorKey, Page, PageRequest};
use crate::provider::ProviderConfig;
use crate::time::Timestamp;
use crate::tool::{ExecutionStatus, ToolExecution, UserTool};
use crate::usage::{UsageLog, UsageQuery, UsageReport};

#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    /// The database cannot be reached or is overloaded; worth retrying later.
    #[error("store unavailable: {0}")]
    Unavailable(String),
    /// A uniqueness rule was broken.
    #[error("conflict: {0}")]
    Conflict(String),
    /// A row could not be read back into its type, or another unexpected failure.
    #[error("store failure: {0}")]
    Internal(String),
}

#[async_trait]
pub trait UserStore: Send + Sync {
    /// Records the user on first sight, with the roles their token names; later calls change
    /// only the roles, and only when they differ.
    async fn ensure_user(
        &self,
        id: UserId,
        subject: &Subject,
        roles: &[String],
    ) -> Result<(), StoreError>;

    /// The roles the user's token last named; `None` for a user never seen.
    async fn roles(&self, id: UserId) -> Result<Option<Vec<String>>, StoreError>;
}

/// A user's budget as stored: the operator's part (when an admin set it) and the user's cap.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct BudgetRecord {
    /// Whether an admin set `limit_micros` and `period` (else the deployment's defaults apply).
    pub operator_set: bool,
    pub limit_micros: Option<i64>,
    pub period: Period,
    pub personal_limit_micros: Option<i64>,
    /// When the row last changed (a ledger kept before that is read again from the usage rows).
    pub updated_at: Option<Timestamp>,
}

/// A user's paid credit, and when the first of it was paid (spending counts against it from
/// then on).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Credits {
    pub total_micros: i64,
    pub since: Option<Timestamp>,
}

/// One user as an admin lists them, with their budget row and what they spent this period.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct UserSummary {
    pub id: UserId,
    pub subject: String,
    pub roles: Vec<String>,
    pub created_at: Timestamp,
    pub budget: Option<BudgetRecord>,
    /// Micro-dollars spent since the start of the user's period.
    pub spent_micros: i64,
}

/// Budgets, and what was spent against them.
#[async_trait]
pub trait BudgetStore: Send + Sync {
    async fn budget(&self, user: UserId) -> Result<Option<BudgetRecord>, StoreError>;

    /// An admin sets the user's limit and period; the entry records who and what.
    async fn put_operator_budget(
        &self,
        user: UserId,
        limit_micros: Option<i64>,
        period: Period,
        at: Timestamp,
        entry: &AuditEntry,
    ) -> Result<(), StoreError>;

    /// The user sets (or clears) their own cap.
    async fn put_personal_limit(
        &self,
        user: UserId,
        limit_micros: Option<i64>,
        at: Timestamp,
    ) -> Result<(), StoreError>;

    /// Micro-dollars the user's usage rows cost at or after `since` (ever, when `None`).
    async fn spent_since(&self, user: UserId, since: Option<Timestamp>) -> Result<i64, StoreError>;

    /// Users in id order after `after`, each with what they spent since the start of their
    /// period (`default_period` for those without a budget row; the periods' starts given).
    async fn users_page(
        &self,
        after: Option<UserId>,
        limit: u32,
        default_period: Period,
        starts: PeriodStarts,
    ) -> Result<Vec<UserSummary>, StoreError>;
}

/// When the current day and month began.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct PeriodStarts {
    pub day: Timestamp,
    pub month: Timestamp,
}

/// A purchase of prepaid credit.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, schemars::JsonSchema)]
pub struct Payment {
    /// The Stripe Checkout Session's id.
    pub id: String,
    #[serde(skip)]
    pub user_id: UserId,
    pub amount_micros: i64,
    /// `pending` until Stripe reports it paid.
    pub status: PaymentStatus,
    pub created_at: Timestamp,
}

#[derive(
    Debug, Clone, Copy, PartialEq, Eq, serde::Serialize, serde::Deserialize, schemars::JsonSchema,
)]
#[serde(rename_all = "lowercase")]
pub enum PaymentStatus {
    Pending,
    Paid,
}

impl PaymentStatus {
    pub const fn as_str(self) -> &'static str {
        match self {
            Self::Pending => "pending",
            Self::Paid => "paid",
        }
    }

    pub fn parse(raw: &str) -> Option<Self> {
        match raw {
            "pending" => Some(Self::Pending),
            "paid" => Some(Self::Paid),
            _ => None,
        }
    }
}

/// The audit trail, for what is recorded on its own (most entries go with their change).
#[async_trait]
pub trait AuditStore: Send + Sync {
    async fn append_audit(&self, entry: &AuditEntry) -> Result<(), StoreError>;
}

/// Prepaid credit and the Stripe events that bought it.
#[async_trait]
pub trait BillingStore: Send + Sync {
    async fn add_payment(&self, payment: &Payment) -> Result<(), StoreError>;

    /// The user's payments, newest first, at most `limit`.
    async fn payments(&self, user: UserId, limit: u32) -> Result<Vec<Payment>, StoreError>;

    /// The user's paid payments: their sum, and when the first was made.
    async fn credits(&self, user: UserId) -> Result<Credits, StoreError>;

    /// Marks a pending payment paid; the payment when this call changed it, `None` when it was
    /// paid already or is unknown (so a redelivered event credits nothing).
    async fn mark_paid(&self, id: &str, at: Timestamp) -> Result<Option<Payment>, StoreError>;

    /// Records a Stripe event as handled; `false` when it was already.
    async fn record_event(&self, id: &str, kind: &str, at: Timestamp) -> Result<bool, StoreError>;
}

#[async_trait]
pub trait ConversationStore: Send + Sync {
    async fn create_conversation(&self, conversation: &Conversation) -> Result<(), StoreError>;

    /// `None` when it does not exist or belongs to someone else.
    async fn get_conversation(
        &self,
        user: UserId,
        id: ConversationId,
    ) -> Result<Option<Conversation>, StoreError>;

    /// Newest-updated first; with `title`, only those whose title contains it, ignoring case.
    async fn list_conversations(
        &self,
        user: UserId,
        title: Option<&str>,
        page: &PageRequest,
    ) -> Result<Page<Conversation>, StoreError>;

    /// Applies the patch atomically and returns the result; `None` when not the user's.
    async fn update_conversation(
        &self,
        user: UserId,
        id: ConversationId,
        patch: &ConversationPatch,
        now: Timestamp,
    ) -> Result<Option<Conversation>, StoreError>;

    /// Deletes the conversation and everything under it, with its audit entry; `false` (and no
    /// entry) when not the user's.
    async fn delete_conversation(
        &self,
        user: UserId,
        id: ConversationId,
        audit: &AuditEntry,
    ) -> Result<bool, StoreError>;
}

#[async_trait]
pub trait MessageStore: Send + Sync {
    async fn insert_message(&self, message: &Message) -> Result<(), StoreError>;

    /// Oldest first. The caller checks the conversation is the user's.
    async fn list_messages(
        &self,
        user: UserId,
        conversation: ConversationId,
        page: &PageRequest,
    ) -> Result<Page<Message>, StoreError>;

    /// Newest first: at most `limit` messages that sort before `before` (time, then id).
    async fn messages_before(
        &self,
        user: UserId,
        conversation: ConversationId,
        before: CursorKey,
        limit: u32,
    ) -> Result<Vec<Message>, StoreError>;
}

/// What starting a turn did.
#[derive(Debug, Clone, PartialEq)]
pub enum TurnStart {
    /// The user message and its pending answer were stored now.
    Started { user: Message, assistant: Message },
    /// The same `client_message_id` was sent before: the original pair, nothing new.
    Existing { user: Message, assistant: Message },
    /// The conversation's previous turn is still going (an answer pending, streaming or
    /// waiting for a decision, or a tool call not yet ended): nothing was stored, so the
    /// transcript stays in turn order.
    Busy,
}

/// A running turn's hold on its answer. Only the holder may write the answer's end; a holder
/// that stops renewing loses it to the janitor once it lapses.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct LeaseId(pub uuid::Uuid);

impl LeaseId {
    pub fn generate() -> Self {
        Self(uuid::Uuid::now_v7())
    }
}

impl std::fmt::Display for LeaseId {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        self.0.fmt(f)
    }
}

/// Who writes an answer's end. The store checks the condition in the same statement as the
/// write, so of two writers racing for one answer exactly one succeeds.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Finisher {
    /// The turn holding this lease, while the answer is still unfinished.
    Lease(LeaseId),
    /// Whoever finds the answer unfinished with its lease lapsed before this time (the janitor).
    Lapsed(Timestamp),
    /// The sender, while no turn has claimed the answer.
    Unclaimed,
}

/// The storage side of a chat turn.
#[async_trait]
pub trait TurnStore: Send + Sync {
    /// Stores the user message and its `pending` answer in one transaction and moves the
    /// conversation to the top of the list; a repeated `client_message_id` returns the original
    /// pair instead, and a conversation whose previous turn is still going stores nothing
    /// (`Busy`). Turn starts of one conversation are serialized, so two concurrent sends
    /// cannot both pass that check. A turn must claim the answer before `claim_by`, or the
    /// janitor ends it.
    async fn start_turn(
        &self,
        user: &Message,
        assistant: &Message,
        claim_by: Timestamp,
    ) -> Result<TurnStart, StoreError>;

    /// Runs a failed answer again, in place: `pending` once more with nothing of the failure
    /// but its usage record kept, to be claimed before `claim_by`. Only an answer that ended
    /// `error` with nothing streamed, is the last message of its conversation, and while no
    /// tool call of the conversation is open; `None` otherwise (and for another user's).
    async fn retry_turn(
        &self,
        user: UserId,
        message: MessageId,
        at: Timestamp,
        claim_by: Timestamp,
    ) -> Result<Option<Message>, StoreError>;

    /// Moves the answer from `pending` to `streaming` under `lease`, held until `expires`, once:
    /// `false` when another invocation claimed it first, or it does not exist.
    async fn claim_turn(
        &self,
        user: UserId,
        message: MessageId,
        lease: LeaseId,
        now: Timestamp,
        expires: Timestamp,
    ) -> Result<bool, StoreError>;

    /// Extends the lease to `expires`; `false` when it is no longer this lease's to extend.
    async fn renew_lease(
        &self,
        message: MessageId,
        lease: LeaseId,
        expires: Timestamp,
    ) -> Result<bool, StoreError>;

    /// Writes the final answer and, when a provider was called, its usage record, together,
    /// if `by` may still write it: `false` (and nothing written) when it may not. An answer that
    /// asked for tools is written with its calls' executions and the tool messages of the calls
    /// that ended at once (refused by policy, unfit arguments), so no call is ever unrecorded.
    async fn finish_turn(
        &self,
        message: &Message,
        usage: Option<&UsageLog>,
        by: Finisher,
        step: &StepRecords<'_>,
    ) -> Result<bool, StoreError>;

    async fn get_message(&self, user: UserId, id: MessageId)
    -> Result<Option<Message>, StoreError>;

    /// Tool steps past their `continue_by` (see [`StepRecords`]) whose calls have all ended
    /// and that no next step follows yet: loops whose continuation was lost. At most `limit`,
    /// the longest overdue first.
    async fn stalled_steps(&self, at: Timestamp, limit: u32) -> Result<Vec<Message>, StoreError>;

    /// Answers still `pending` or `streaming` whose lease lapsed before `at`, the longest
    /// lapsed first, after skipping `skip`, at most `limit`: turns that died without finishing.
    async fn lapsed_turns(
        &self,
        at: Timestamp,
        skip: u32,
        limit: u32,
    ) -> Result<Vec<Message>, StoreError>;
}

/// What an answer's tool calls leave behind when the answer is written.
#[derive(Debug, Clone, Copy, Default)]
pub struct StepRecords<'a> {
    pub executions: &'a [ToolExecution],
    /// `tool` messages, one per call that already has its result.
    pub results: &'a [Message],
    /// How each call was decided, for the audit trail.
    pub audit: &'a [AuditEntry],
    /// For a step whose loop goes on: the next step must exist by then, or the janitor
    /// creates it once the step's calls have ended (`stalled_steps`). Until the next step
    /// exists the conversation's turn counts as open.
    pub continue_by: Option<Timestamp>,
}

/// Which executions a list shows.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ExecutionFilter {
    pub status: Option<ExecutionStatus>,
    pub conversation: Option<ConversationId>,
}

/// Tool executions: every move from one status to the next is a compare-and-set, written with
/// what it leaves behind (the call's `tool` message, its audit entry) in one transaction.
#[async_trait]
pub trait ToolExecutionStore: Send + Sync {
    /// `None` when it does not exist or belongs to someone else.
    async fn get_execution(
        &self,
        user: UserId,
        id: ToolExecutionId,
    ) -> Result<Option<ToolExecution>, StoreError>;

    /// The executions of one answer's calls, in call order.
    async fn executions_of(
        &self,
        user: UserId,
        message: MessageId,
    ) -> Result<Vec<ToolExecution>, StoreError>;

    /// Newest first.
    async fn list_executions(
        &self,
        user: UserId,
        filter: &ExecutionFilter,
        page: &PageRequest,
    ) -> Result<Page<ToolExecution>, StoreError>;

    /// Replaces the execution with `next` if it is still in `from`; inserts `result` (its
    /// `tool` message) and appends `audit` with it. `false`, and nothing written, otherwise.
    async fn transition_execution(
        &self,
        next: &ToolExecution,
        from: ExecutionStatus,
        result: Option<&Message>,
        audit: Option<&AuditEntry>,
    ) -> Result<bool, StoreError>;

    /// `pending`, `approved` or `running` executions whose `expires_at` passed before `at`,
    /// oldest first: approvals nobody gave, approved calls nobody ran, runs whose invocation
    /// died.
    async fn overdue_executions(
        &self,
        at: Timestamp,
        limit: u32,
    ) -> Result<Vec<ToolExecution>, StoreError>;

    /// Ends the answer `step` that waited for approval as `status` (the user cancelled it), once
    /// none of its calls is still pending, approved or running: `false` otherwise.
    async fn end_waiting_step(
        &self,
        user: UserId,
        step: MessageId,
        status: MessageStatus,
        at: Timestamp,
    ) -> Result<bool, StoreError>;

    /// Once every call of the answer `previous` has ended, marks it `complete` (if it waited
    /// for approval) and inserts the loop's next answer `next` (pending, to be claimed before
    /// `claim_by`; its `reply_to` is `previous`). `false` when a call has not ended or the next
    /// answer exists already: of racing continuations, exactly one goes on.
    async fn continue_step(
        &self,
        user: UserId,
        previous: MessageId,
        next: &Message,
        claim_by: Timestamp,
    ) -> Result<bool, StoreError>;
}

/// Users' MCP servers. A change is written with its audit entry.
#[async_trait]
pub trait McpServerStore: Send + Sync {
    /// By id.
    async fn list_mcp_servers(&self, user: UserId) -> Result<Vec<McpServer>, StoreError>;

    /// `None` when it does not exist or belongs to someone else.
    async fn get_mcp_server(
        &self,
        user: UserId,
        id: &McpServerId,
    ) -> Result<Option<McpServer>, StoreError>;

    /// Inserts or replaces the user's server of that id; `false` (nothing written) when it is
    /// new and the user has `max` servers already, checked and written atomically.
    async fn put_mcp_server(
        &self,
        server: &McpServer,
        max: usize,
        audit: &AuditEntry,
    ) -> Result<bool, StoreError>;

    /// `false` (and no audit entry) when it was not the user's.
    async fn delete_mcp_server(
        &self,
        user: UserId,
        id: &McpServerId,
        audit: &AuditEntry,
    ) -> Result<bool, StoreError>;
}

/// What context management did, and the summaries it wrote.
#[async_trait]
pub trait ContextStore: Send + Sync {
    /// Records optimizations and the usage of the provider calls that made them, together.
    async fn record_optimizations(
        &self,
        rows: &[ContextOptimization],
        usage: &[UsageLog],
    ) -> Result<(), StoreError>;

    /// The newest summary written for the conversation (a summarization row of no turn).
    async fn latest_summary(
        &self,
        user: UserId,
        conversation: ConversationId,
    ) -> Result<Option<ContextOptimization>, StoreError>;
}

/// One sensitive operation, for the audit trail.
#[derive(Debug, Clone, PartialEq)]
pub struct AuditEntry {
    pub id: uuid::Uuid,
    pub user_id: UserId,
    /// What was done, e.g. `provider_config.put`.
    pub action: String,
    pub target_type: Option<String>,
    pub target_id: Option<String>,
    /// Never secrets: names and outcomes only.
    pub details: serde_json::Value,
    pub created_at: Timestamp,
}

impl AuditEntry {
    /// An entry about one target (`tool`, `mcp_server`, `tool_execution`, …) of the user's.
    pub fn of(
        user_id: UserId,
        action: &str,
        (target_type, target_id): (&str, &str),
        details: serde_json::Value,
        created_at: Timestamp,
    ) -> Self {
        Self {
            id: uuid::Uuid::now_v7(),
            user_id,
            action: action.to_owned(),
            target_type: Some(target_type.to_owned()),
            target_id: Some(target_id.to_owned()),
            details,
            created_at,
        }
    }
}

/// Provider configurations. Every change is written together with its audit entry, in one
/// transaction: the trail never misses a change, nor records one that did not happen.
#[async_trait]
pub trait ProviderConfigStore: Send + Sync {
    /// The user's configs, by provider id.
    async fn list_provider_configs(&self, user: UserId) -> Result<Vec<ProviderConfig>, StoreError>;

    async fn get_provider_config(
        &self,
        user: UserId,
        provider: &ProviderId,
    ) -> Result<Option<ProviderConfig>, StoreError>;

    /// Inserts or replaces the user's config for its provider.
    async fn put_provider_config(
        &self,
        config: &ProviderConfig,
        audit: &AuditEntry,
    ) -> Result<(), StoreError>;

    /// `false` (and no audit entry) when there was none.
    async fn delete_provider_config(
        &self,
        user: UserId,
        provider: &ProviderId,
        audit: &AuditEntry,
    ) -> Result<bool, StoreError>;
}

/// User-registered tools. Registration and deletion are written with their audit entries.
#[async_trait]
pub trait ToolStore: Send + Sync {
    /// `false` (nothing written) when the user has `max` tools already: checked and written
    /// atomically, so concurrent registrations cannot pass the cap. `Conflict` when the user
    /// already has a tool of that name.
    async fn create_tool(
        &self,
        tool: &UserTool,
        max: usize,
        audit: &AuditEntry,
    ) -> Result<bool, StoreError>;

    /// By name.
    async fn list_tools(&self, user: UserId) -> Result<Vec<UserTool>, StoreError>;

    /// Which of the module hashes some tool, of any user, still uses.
    async fn modules_in_use(&self, sha256s: &[String]) -> Result<Vec<String>, StoreError>;

    /// `None` when it does not exist or belongs to someone else.
    async fn get_tool(&self, user: UserId, id: ToolId) -> Result<Option<UserTool>, StoreError>;

    /// `false` (and no audit entry) when it was not the user's.
    async fn delete_tool(
        &self,
        user: UserId,
        id: ToolId,
        audit: &AuditEntry,
    ) -> Result<bool, StoreError>;
}

/// A user's auto-approval rules as stored; `bestchat-tools` gives them their meaning.
#[derive(Debug, Clone, PartialEq)]
pub struct AutoApprovalRecord {
    pub user_id: UserId,
    /// Risk class to rule (`"auto"`, `"ask"`, `"deny"`).
    pub by_risk: serde_json::Value,
    /// Tool name to rule; overrides `by_risk`.
    pub by_tool: serde_json::Value,
    pub max_per_turn: u32,
    pub updated_at: Timestamp,
}

/// Per-user settings. A change is written with its audit entry.
#[async_trait]
pub trait SettingsStore: Send + Sync {
    /// `None` until the user sets them.
    async fn get_auto_approval(
        &self,
        user: UserId,
    ) -> Result<Option<AutoApprovalRecord>, StoreError>;

    async fn put_auto_approval(
        &self,
        record: &AutoApprovalRecord,
        audit: &AuditEntry,
    ) -> Result<(), StoreError>;

    /// The hosts the user lets http_fetch reach; `None` until set.
    async fn get_fetch_hosts(&self, user: UserId) -> Result<Option<Vec<String>>, StoreError>;

    async fn put_fetch_hosts(
        &self,
        user: UserId,
        hosts: &[String],
        at: Timestamp,
        audit: &AuditEntry,
    ) -> Result<(), StoreError>;
}

/// What the usage rows add up to, for the user.
#[async_trait]
pub trait UsageStore: Send + Sync {
    /// The user's rows (every user's, for `None`: an admin's report) in the query's range,
    /// grouped; at most `max_groups` groups.
    async fn usage(
        &self,
        user: Option<UserId>,
        query: &UsageQuery,
        max_groups: u32,
    ) -> Result<UsageReport, StoreError>;
}

/// Uploaded files. A user's rows with the same bytes (`sha256`) share one stored object and one
/// processing result.
#[async_trait]
pub trait FileStore: Send + Sync {
    async fn create_file(&self, file: &FileRecord) -> Result<(), StoreError>;

    /// `None` when it does not exist or belongs to someone else.
    async fn get_file(&self, user: UserId, id: FileId) -> Result<Option<FileRecord>, StoreError>;

    /// The user's files among `ids` (others and unknown ones are left out), in no order.
    async fn files_by_ids(
        &self,
        user: UserId,
        ids: &[FileId],
    ) -> Result<Vec<FileRecord>, StoreError>;

    /// Newest first.
    async fn list_files(
        &self,
        user: UserId,
        page: &PageRequest,
    ) -> Result<Page<FileRecord>, StoreError>;

    /// A row of the user holding these bytes that got past `uploading` (the newest), to share
    /// its stored object and result.
    async fn file_with_bytes(
        &self,
        user: UserId,
        sha256: &str,
    ) -> Result<Option<FileRecord>, StoreError>;

    /// Bytes the user stores: each distinct content once.
    async fn storage_bytes(&self, user: UserId) -> Result<i64, StoreError>;

    /// Moves every `uploading` row of the user with these bytes to `processing`, with the
    /// sniffed kind and type; the row `id` as it is after (`None` when not the user's).
    async fn start_processing(
        &self,
        user: UserId,
        id: FileId,
        kind: FileKind,
        content_type: &str,
        at: Timestamp,
    ) -> Result<Option<FileRecord>, StoreError>;

    /// Records the outcome on every `processing` row of the user with these bytes; the rows
    /// changed.
    async fn finish_processing(
        &self,
        user: UserId,
        sha256: &str,
        outcome: &Result<Processed, MessageError>,
        at: Timestamp,
    ) -> Result<Vec<FileRecord>, StoreError>;

    /// Ties the user's files to the conversation they were first attached in (deleting it
    /// deletes them); files tied already keep their conversation.
    async fn attach_files(
        &self,
        user: UserId,
        ids: &[FileId],
        conversation: ConversationId,
    ) -> Result<(), StoreError>;

    /// The files deleting the conversation deletes.
    async fn files_of_conversation(
        &self,
        user: UserId,
        conversation: ConversationId,
    ) -> Result<Vec<FileRecord>, StoreError>;

    /// Deletes the row and returns it; `None` when not the user's.
    async fn delete_file(&self, user: UserId, id: FileId)
    -> Result<Option<FileRecord>, StoreError>;

    /// Whether any row of the user still holds these bytes.
    async fn bytes_in_use(&self, user: UserId, sha256: &str) -> Result<bool, StoreError>;

    /// Deletes at most `limit` rows still `uploading` that were created before `before` (the
    /// upload was never completed) and returns them.
    async fn expire_uploads(
        &self,
        before: Timestamp,
        limit: u32,
    ) -> Result<Vec<FileRecord>, StoreError>;
}

/// Everything the storage ports offer; handlers take the narrow trait they need.
pub trait Store:
    UserStore
    + FileStore
    + UsageStore
    + BudgetStore
    + BillingStore
    + AuditStore
    + ConversationStore
    + MessageStore
    + TurnStore
    + ProviderConfigStore
    + ContextStore
    + ToolStore
    + SettingsStore
    + ToolExecutionStore
    + McpServerStore
{
}
impl<T> Store for T where
    T: UserStore
        + FileStore
        + UsageStore
        + BudgetStore
        + BillingStore
        + AuditStore
        + ConversationStore
        + MessageStore
        + TurnStore
        + ProviderConfigStore
        + ContextStore
        + ToolStore
        + SettingsStore
        + ToolExecutionStore
        + McpServerStore
{
}
