-- The schema of ../0001_init.sql for the embedded SQLite store, with the same rules:
-- uuids as text, timestamps as integer microseconds since the Unix epoch (UTC), json as text,
-- booleans as 0/1. Foreign keys are enforced (the adapter turns them on per connection).

CREATE TABLE users (
    id          TEXT PRIMARY KEY,
    subject     TEXT NOT NULL UNIQUE CHECK (length(subject) BETWEEN 1 AND 255),
    created_at  INTEGER NOT NULL
);

CREATE TABLE conversations (
    id             TEXT PRIMARY KEY,
    user_id        TEXT NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    title          TEXT NOT NULL CHECK (length(title) BETWEEN 1 AND 200),
    provider       TEXT NOT NULL,
    model          TEXT NOT NULL,
    system_prompt  TEXT,
    settings       TEXT NOT NULL DEFAULT '{}' CHECK (json_type(settings) = 'object'),
    created_at     INTEGER NOT NULL,
    updated_at     INTEGER NOT NULL
);
CREATE INDEX conversations_user_updated ON conversations (user_id, updated_at DESC, id DESC);

CREATE TABLE messages (
    id                 TEXT PRIMARY KEY,
    conversation_id    TEXT NOT NULL REFERENCES conversations (id) ON DELETE CASCADE,
    user_id            TEXT NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    role               TEXT NOT NULL CHECK (role IN ('user', 'assistant', 'tool')),
    content            TEXT NOT NULL,
    status             TEXT NOT NULL CHECK (status IN
                           ('pending', 'streaming', 'complete', 'cancelled', 'error', 'incomplete')),
    client_message_id  TEXT CHECK (length(client_message_id) BETWEEN 1 AND 128),
    reply_to           TEXT REFERENCES messages (id) ON DELETE CASCADE,
    provider           TEXT,
    model              TEXT,
    tool_calls         TEXT NOT NULL DEFAULT '[]' CHECK (json_type(tool_calls) = 'array'),
    tool_call_id       TEXT,
    attachments        TEXT NOT NULL DEFAULT '[]' CHECK (json_type(attachments) = 'array'),
    token_count        INTEGER NOT NULL DEFAULT 0 CHECK (token_count >= 0),
    input_tokens       INTEGER CHECK (input_tokens >= 0),
    output_tokens      INTEGER CHECK (output_tokens >= 0),
    cached_tokens      INTEGER CHECK (cached_tokens >= 0),
    cost_micros        INTEGER CHECK (cost_micros >= 0),
    finish_reason      TEXT CHECK (finish_reason IN
                           ('stop', 'length', 'tool_calls', 'content_filter', 'error')),
    error_code         TEXT,
    error_message      TEXT,
    created_at         INTEGER NOT NULL,
    updated_at         INTEGER NOT NULL,
    CHECK ((error_code IS NULL) = (error_message IS NULL))
);
CREATE INDEX messages_conversation_created ON messages (conversation_id, created_at, id);
CREATE UNIQUE INDEX messages_client_id ON messages (conversation_id, client_message_id)
    WHERE client_message_id IS NOT NULL;
CREATE UNIQUE INDEX messages_reply_to ON messages (reply_to) WHERE reply_to IS NOT NULL;
CREATE INDEX messages_user ON messages (user_id);

CREATE TABLE tools (
    id            TEXT PRIMARY KEY,
    user_id       TEXT NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    name          TEXT NOT NULL CHECK (length(name) BETWEEN 1 AND 64 AND name GLOB '[a-z]*'
                                       AND name NOT GLOB '*[^a-z0-9_]*'),
    description   TEXT NOT NULL,
    manifest      TEXT NOT NULL CHECK (json_type(manifest) = 'object'),
    risk          TEXT NOT NULL CHECK (risk IN ('read', 'write', 'network', 'exec', 'destructive')),
    module_key    TEXT NOT NULL,
    module_sha256 TEXT NOT NULL,
    created_at    INTEGER NOT NULL,
    UNIQUE (user_id, name)
);

CREATE TABLE tool_executions (
    id               TEXT PRIMARY KEY,
    user_id          TEXT NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    conversation_id  TEXT NOT NULL REFERENCES conversations (id) ON DELETE CASCADE,
    message_id       TEXT NOT NULL REFERENCES messages (id) ON DELETE CASCADE,
    tool_call_id     TEXT NOT NULL,
    tool_name        TEXT NOT NULL,
    arguments        TEXT NOT NULL CHECK (json_valid(arguments)),
    risk             TEXT NOT NULL CHECK (risk IN ('read', 'write', 'network', 'exec', 'destructive')),
    status           TEXT NOT NULL CHECK (status IN
                         ('pending', 'approved', 'denied', 'running', 'succeeded', 'failed', 'expired')),
    decision         TEXT CHECK (decision IN ('auto', 'user', 'policy')),
    decided_at       INTEGER,
    result           TEXT CHECK (result IS NULL OR json_valid(result)),
    error            TEXT,
    duration_ms      INTEGER CHECK (duration_ms >= 0),
    created_at       INTEGER NOT NULL,
    updated_at       INTEGER NOT NULL,
    UNIQUE (message_id, tool_call_id)
);
CREATE INDEX tool_executions_user_created ON tool_executions (user_id, created_at DESC, id DESC);
CREATE INDEX tool_executions_user_pending ON tool_executions (user_id, created_at)
    WHERE status = 'pending';
CREATE INDEX tool_executions_message ON tool_executions (message_id);
CREATE INDEX tool_executions_conversation ON tool_executions (conversation_id);

CREATE TABLE context_optimizations (
    id                TEXT PRIMARY KEY,
    user_id           TEXT NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    conversation_id   TEXT NOT NULL REFERENCES conversations (id) ON DELETE CASCADE,
    message_id        TEXT REFERENCES messages (id) ON DELETE CASCADE,
    strategy          TEXT NOT NULL CHECK (strategy IN ('compression', 'summarization', 'truncation')),
    tokens_before     INTEGER NOT NULL CHECK (tokens_before >= 0),
    tokens_after      INTEGER NOT NULL CHECK (tokens_after >= 0),
    range_start_id    TEXT,
    range_end_id      TEXT,
    messages_affected INTEGER NOT NULL DEFAULT 0 CHECK (messages_affected >= 0),
    summary           TEXT,
    summary_model     TEXT,
    created_at        INTEGER NOT NULL,
    CHECK (strategy <> 'summarization' OR summary IS NOT NULL)
);
CREATE INDEX context_optimizations_conversation ON context_optimizations (conversation_id, created_at DESC);
CREATE INDEX context_optimizations_user ON context_optimizations (user_id);

CREATE TABLE file_uploads (
    id               TEXT PRIMARY KEY,
    user_id          TEXT NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    conversation_id  TEXT REFERENCES conversations (id) ON DELETE SET NULL,
    filename         TEXT NOT NULL CHECK (length(filename) BETWEEN 1 AND 255),
    content_type     TEXT NOT NULL,
    size_bytes       INTEGER NOT NULL CHECK (size_bytes >= 0),
    storage_key      TEXT NOT NULL UNIQUE,
    sha256           TEXT,
    status           TEXT NOT NULL CHECK (status IN ('pending', 'uploaded', 'failed')),
    created_at       INTEGER NOT NULL,
    updated_at       INTEGER NOT NULL
);
CREATE INDEX file_uploads_user_created ON file_uploads (user_id, created_at DESC, id DESC);

CREATE TABLE provider_configs (
    user_id           TEXT NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    provider          TEXT NOT NULL,
    protocol          TEXT NOT NULL CHECK (protocol IN ('openai', 'openai-responses', 'anthropic', 'gemini', 'bedrock', 'echo')),
    base_url          TEXT,
    enabled           INTEGER NOT NULL DEFAULT 1 CHECK (enabled IN (0, 1)),
    default_model     TEXT,
    models            TEXT NOT NULL DEFAULT '[]' CHECK (json_type(models) = 'array'),
    key_ciphertext    BLOB,
    key_nonce         BLOB,
    wrapped_data_key  BLOB,
    key_vault_id      TEXT,
    key_last4         TEXT,
    created_at        INTEGER NOT NULL,
    updated_at        INTEGER NOT NULL,
    PRIMARY KEY (user_id, provider),
    CHECK ((key_ciphertext IS NULL) = (wrapped_data_key IS NULL))
);

CREATE TABLE usage_logs (
    id               TEXT PRIMARY KEY,
    user_id          TEXT NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    conversation_id  TEXT REFERENCES conversations (id) ON DELETE SET NULL,
    message_id       TEXT REFERENCES messages (id) ON DELETE SET NULL,
    provider         TEXT NOT NULL,
    model            TEXT NOT NULL,
    input_tokens     INTEGER NOT NULL CHECK (input_tokens >= 0),
    output_tokens    INTEGER NOT NULL CHECK (output_tokens >= 0),
    cached_tokens    INTEGER NOT NULL DEFAULT 0 CHECK (cached_tokens >= 0),
    cost_micros      INTEGER CHECK (cost_micros >= 0),
    latency_ms       INTEGER NOT NULL CHECK (latency_ms >= 0),
    ttft_ms          INTEGER CHECK (ttft_ms >= 0),
    status           TEXT NOT NULL CHECK (status IN ('complete', 'cancelled', 'error', 'incomplete')),
    attempts         TEXT NOT NULL DEFAULT '[]' CHECK (json_type(attempts) = 'array'),
    created_at       INTEGER NOT NULL
);
CREATE INDEX usage_logs_user_created ON usage_logs (user_id, created_at DESC);

CREATE TABLE auto_approval_settings (
    user_id        TEXT PRIMARY KEY REFERENCES users (id) ON DELETE CASCADE,
    by_risk        TEXT NOT NULL DEFAULT '{}' CHECK (json_type(by_risk) = 'object'),
    by_tool        TEXT NOT NULL DEFAULT '{}' CHECK (json_type(by_tool) = 'object'),
    max_per_turn   INTEGER NOT NULL DEFAULT 5 CHECK (max_per_turn BETWEEN 0 AND 100),
    updated_at     INTEGER NOT NULL
);

CREATE TABLE audit_log (
    id           TEXT PRIMARY KEY,
    user_id      TEXT NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    action       TEXT NOT NULL,
    target_type  TEXT,
    target_id    TEXT,
    details      TEXT NOT NULL DEFAULT '{}' CHECK (json_type(details) = 'object'),
    created_at   INTEGER NOT NULL
);
CREATE INDEX audit_log_user_created ON audit_log (user_id, created_at DESC);
