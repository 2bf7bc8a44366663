-- BestChat schema: the whole data model. Keys are UUIDs (v7 for rows, v5 of the token subject
-- for users), money is integer micro-dollars, every table hangs off users with ON DELETE CASCADE
-- so erasing a user erases everything they own.

CREATE TABLE users (
    id          uuid PRIMARY KEY,
    subject     text NOT NULL UNIQUE CHECK (length(subject) BETWEEN 1 AND 255),
    created_at  timestamptz NOT NULL DEFAULT now()
);

CREATE TABLE conversations (
    id             uuid PRIMARY KEY,
    user_id        uuid NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    title          text NOT NULL CHECK (length(title) BETWEEN 1 AND 200),
    provider       text NOT NULL,
    model          text NOT NULL,
    system_prompt  text,
    settings       jsonb NOT NULL DEFAULT '{}'::jsonb CHECK (jsonb_typeof(settings) = 'object'),
    created_at     timestamptz NOT NULL,
    updated_at     timestamptz NOT NULL
);
-- GET /api/conversations: newest-updated first, keyset on (updated_at, id).
CREATE INDEX conversations_user_updated ON conversations (user_id, updated_at DESC, id DESC);

CREATE TABLE messages (
    id                 uuid PRIMARY KEY,
    conversation_id    uuid NOT NULL REFERENCES conversations (id) ON DELETE CASCADE,
    user_id            uuid NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    role               text NOT NULL CHECK (role IN ('user', 'assistant', 'tool')),
    content            text NOT NULL,
    status             text NOT NULL CHECK (status IN
                           ('pending', 'streaming', 'complete', 'cancelled', 'error', 'incomplete')),
    client_message_id  text CHECK (length(client_message_id) BETWEEN 1 AND 128),
    reply_to           uuid REFERENCES messages (id) ON DELETE CASCADE,
    provider           text,
    model              text,
    tool_calls         jsonb NOT NULL DEFAULT '[]'::jsonb CHECK (jsonb_typeof(tool_calls) = 'array'),
    tool_call_id       text,
    attachments        jsonb NOT NULL DEFAULT '[]'::jsonb CHECK (jsonb_typeof(attachments) = 'array'),
    token_count        integer NOT NULL DEFAULT 0 CHECK (token_count >= 0),
    input_tokens       integer CHECK (input_tokens >= 0),
    output_tokens      integer CHECK (output_tokens >= 0),
    cached_tokens      integer CHECK (cached_tokens >= 0),
    cost_micros        bigint CHECK (cost_micros >= 0),
    finish_reason      text CHECK (finish_reason IN
                           ('stop', 'length', 'tool_calls', 'content_filter', 'error')),
    error_code         text,
    error_message      text,
    created_at         timestamptz NOT NULL,
    updated_at         timestamptz NOT NULL,
    CHECK ((error_code IS NULL) = (error_message IS NULL))
);
-- GET /api/conversations/{id}/messages: oldest first, keyset on (created_at, id).
CREATE INDEX messages_conversation_created ON messages (conversation_id, created_at, id);
-- A repeated send returns the original message instead of starting a second turn.
CREATE UNIQUE INDEX messages_client_id ON messages (conversation_id, client_message_id)
    WHERE client_message_id IS NOT NULL;
-- One assistant answer per user message.
CREATE UNIQUE INDEX messages_reply_to ON messages (reply_to) WHERE reply_to IS NOT NULL;
CREATE INDEX messages_user ON messages (user_id);

-- User-registered WASM tools (built-in tools live in code).
CREATE TABLE tools (
    id           uuid PRIMARY KEY,
    user_id      uuid NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    name         text NOT NULL CHECK (name ~ '^[a-z][a-z0-9_]{0,63}$'),
    description  text NOT NULL,
    manifest     jsonb NOT NULL CHECK (jsonb_typeof(manifest) = 'object'),
    risk         text NOT NULL CHECK (risk IN ('read', 'write', 'network', 'exec', 'destructive')),
    module_key   text NOT NULL,
    module_sha256 text NOT NULL,
    created_at   timestamptz NOT NULL,
    UNIQUE (user_id, name)
);

CREATE TABLE tool_executions (
    id               uuid PRIMARY KEY,
    user_id          uuid NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    conversation_id  uuid NOT NULL REFERENCES conversations (id) ON DELETE CASCADE,
    message_id       uuid NOT NULL REFERENCES messages (id) ON DELETE CASCADE,
    tool_call_id     text NOT NULL,
    tool_name        text NOT NULL,
    arguments        jsonb NOT NULL,
    risk             text NOT NULL CHECK (risk IN ('read', 'write', 'network', 'exec', 'destructive')),
    status           text NOT NULL CHECK (status IN
                         ('pending', 'approved', 'denied', 'running', 'succeeded', 'failed', 'expired')),
    decision         text CHECK (decision IN ('auto', 'user', 'policy')),
    decided_at       timestamptz,
    result           jsonb,
    error            text,
    duration_ms      integer CHECK (duration_ms >= 0),
    created_at       timestamptz NOT NULL,
    updated_at       timestamptz NOT NULL,
    UNIQUE (message_id, tool_call_id)
);
-- GET /api/tool-executions (newest first, optionally by status).
CREATE INDEX tool_executions_user_created ON tool_executions (user_id, created_at DESC, id DESC);
CREATE INDEX tool_executions_user_pending ON tool_executions (user_id, created_at)
    WHERE status = 'pending';
CREATE INDEX tool_executions_message ON tool_executions (message_id);
CREATE INDEX tool_executions_conversation ON tool_executions (conversation_id);

CREATE TABLE context_optimizations (
    id                uuid PRIMARY KEY,
    user_id           uuid NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    conversation_id   uuid NOT NULL REFERENCES conversations (id) ON DELETE CASCADE,
    message_id        uuid REFERENCES messages (id) ON DELETE CASCADE,
    strategy          text NOT NULL CHECK (strategy IN ('compression', 'summarization', 'truncation')),
    tokens_before     integer NOT NULL CHECK (tokens_before >= 0),
    tokens_after      integer NOT NULL CHECK (tokens_after >= 0),
    range_start_id    uuid,
    range_end_id      uuid,
    messages_affected integer NOT NULL DEFAULT 0 CHECK (messages_affected >= 0),
    summary           text,
    summary_model     text,
    created_at        timestamptz NOT NULL,
    CHECK (strategy <> 'summarization' OR summary IS NOT NULL)
);
-- The latest summary of a conversation, and the history of what was done to it.
CREATE INDEX context_optimizations_conversation ON context_optimizations (conversation_id, created_at DESC);
CREATE INDEX context_optimizations_user ON context_optimizations (user_id);

CREATE TABLE file_uploads (
    id               uuid PRIMARY KEY,
    user_id          uuid NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    conversation_id  uuid REFERENCES conversations (id) ON DELETE SET NULL,
    filename         text NOT NULL CHECK (length(filename) BETWEEN 1 AND 255),
    content_type     text NOT NULL,
    size_bytes       bigint NOT NULL CHECK (size_bytes >= 0),
    storage_key      text NOT NULL UNIQUE,
    sha256           text,
    status           text NOT NULL CHECK (status IN ('pending', 'uploaded', 'failed')),
    created_at       timestamptz NOT NULL,
    updated_at       timestamptz NOT NULL
);
-- GET /api/files: newest first.
CREATE INDEX file_uploads_user_created ON file_uploads (user_id, created_at DESC, id DESC);

CREATE TABLE provider_configs (
    user_id           uuid NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    provider          text NOT NULL,
    protocol          text NOT NULL CHECK (protocol IN ('openai', 'openai-responses', 'anthropic', 'gemini', 'bedrock', 'echo')),
    base_url          text,
    enabled           boolean NOT NULL DEFAULT true,
    default_model     text,
    models            jsonb NOT NULL DEFAULT '[]'::jsonb CHECK (jsonb_typeof(models) = 'array'),
    -- AES-256-GCM ciphertext of the API key under a per-record data key that the key vault wraps.
    key_ciphertext    bytea,
    key_nonce         bytea,
    wrapped_data_key  bytea,
    key_vault_id      text,
    key_last4         text,
    created_at        timestamptz NOT NULL,
    updated_at        timestamptz NOT NULL,
    PRIMARY KEY (user_id, provider),
    CHECK ((key_ciphertext IS NULL) = (wrapped_data_key IS NULL))
);

CREATE TABLE usage_logs (
    id               uuid PRIMARY KEY,
    user_id          uuid NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    conversation_id  uuid REFERENCES conversations (id) ON DELETE SET NULL,
    message_id       uuid REFERENCES messages (id) ON DELETE SET NULL,
    provider         text NOT NULL,
    model            text NOT NULL,
    input_tokens     integer NOT NULL CHECK (input_tokens >= 0),
    output_tokens    integer NOT NULL CHECK (output_tokens >= 0),
    cached_tokens    integer NOT NULL DEFAULT 0 CHECK (cached_tokens >= 0),
    -- NULL when the price is unknown; never a made-up zero.
    cost_micros      bigint CHECK (cost_micros >= 0),
    latency_ms       integer NOT NULL CHECK (latency_ms >= 0),
    ttft_ms          integer CHECK (ttft_ms >= 0),
    status           text NOT NULL CHECK (status IN ('complete', 'cancelled', 'error', 'incomplete')),
    attempts         jsonb NOT NULL DEFAULT '[]'::jsonb CHECK (jsonb_typeof(attempts) = 'array'),
    created_at       timestamptz NOT NULL
);
-- GET /api/usage and budget checks: a user's spend over a period.
CREATE INDEX usage_logs_user_created ON usage_logs (user_id, created_at DESC);

CREATE TABLE auto_approval_settings (
    user_id        uuid PRIMARY KEY REFERENCES users (id) ON DELETE CASCADE,
    -- risk class -> true/false, e.g. {"read": true, "write": false}
    by_risk        jsonb NOT NULL DEFAULT '{}'::jsonb CHECK (jsonb_typeof(by_risk) = 'object'),
    -- tool name -> true/false; overrides by_risk
    by_tool        jsonb NOT NULL DEFAULT '{}'::jsonb CHECK (jsonb_typeof(by_tool) = 'object'),
    max_per_turn   integer NOT NULL DEFAULT 5 CHECK (max_per_turn BETWEEN 0 AND 100),
    updated_at     timestamptz NOT NULL
);

CREATE TABLE audit_log (
    id           uuid PRIMARY KEY,
    user_id      uuid NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    action       text NOT NULL,
    target_type  text,
    target_id    text,
    details      jsonb NOT NULL DEFAULT '{}'::jsonb CHECK (jsonb_typeof(details) = 'object'),
    created_at   timestamptz NOT NULL
);
CREATE INDEX audit_log_user_created ON audit_log (user_id, created_at DESC);
