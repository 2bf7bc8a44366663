-- The tool loop (issue 10): see migrations/0006_tool_loop.sql. SQLite cannot change a CHECK
-- constraint in place, so messages is rebuilt (the runner turns foreign keys off around every
-- migration and checks them before each commit, as SQLite's ALTER TABLE procedure asks).
CREATE TABLE messages_rebuilt (
    id                 TEXT PRIMARY KEY,
    conversation_id    TEXT NOT NULL REFERENCES conversations (id) ON DELETE CASCADE,
    user_id            TEXT NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    role               TEXT NOT NULL CHECK (role IN ('user', 'assistant', 'tool')),
    content            TEXT NOT NULL,
    status             TEXT NOT NULL CHECK (status IN
                           ('pending', 'streaming', 'complete', 'cancelled', 'error', 'incomplete',
                            'awaiting_approval')),
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
    lease_owner        TEXT,
    lease_expires_at   INTEGER,
    CHECK ((error_code IS NULL) = (error_message IS NULL))
);
INSERT INTO messages_rebuilt (id, conversation_id, user_id, role, content, status, client_message_id, reply_to, provider, model, tool_calls, tool_call_id, attachments, token_count, input_tokens, output_tokens, cached_tokens, cost_micros, finish_reason, error_code, error_message, created_at, updated_at, lease_owner, lease_expires_at)
    SELECT id, conversation_id, user_id, role, content, status, client_message_id, reply_to, provider, model, tool_calls, tool_call_id, attachments, token_count, input_tokens, output_tokens, cached_tokens, cost_micros, finish_reason, error_code, error_message, created_at, updated_at, lease_owner, lease_expires_at FROM messages;
DROP TABLE messages;
ALTER TABLE messages_rebuilt RENAME TO messages;
CREATE INDEX messages_conversation_created ON messages (conversation_id, created_at, id);
CREATE UNIQUE INDEX messages_client_id ON messages (conversation_id, client_message_id)
    WHERE client_message_id IS NOT NULL;
CREATE UNIQUE INDEX messages_reply_to ON messages (reply_to) WHERE reply_to IS NOT NULL;
CREATE INDEX messages_user ON messages (user_id);
CREATE INDEX messages_lease ON messages (lease_expires_at) WHERE status IN ('pending', 'streaming');

ALTER TABLE tool_executions ADD COLUMN decision_verdict TEXT
    CHECK (decision_verdict IN ('approve', 'deny'));
ALTER TABLE tool_executions ADD COLUMN decision_rule TEXT;
ALTER TABLE tool_executions ADD COLUMN decision_connection TEXT;
ALTER TABLE tool_executions ADD COLUMN error_code TEXT;
ALTER TABLE tool_executions ADD COLUMN usage TEXT CHECK (usage IS NULL OR json_type(usage) = 'object');
ALTER TABLE tool_executions ADD COLUMN request TEXT CHECK (request IS NULL OR json_valid(request));
ALTER TABLE tool_executions ADD COLUMN expires_at INTEGER;
CREATE INDEX tool_executions_overdue ON tool_executions (expires_at)
    WHERE status IN ('pending', 'approved', 'running');
