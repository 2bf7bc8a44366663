-- The tool loop (issue 10). An answer whose tool calls wait for the user is `awaiting_approval`;
-- a later step of the loop is a new assistant message whose reply_to is the step before it
-- (the unique index on reply_to makes "the next step" exist at most once).
ALTER TABLE messages DROP CONSTRAINT messages_status_check;
ALTER TABLE messages ADD CONSTRAINT messages_status_check CHECK (status IN
    ('pending', 'streaming', 'complete', 'cancelled', 'error', 'incomplete', 'awaiting_approval'));

-- Every call on record: who decided it, by which rule, from which connection; what the executor
-- was asked and what it used; when a pending call expires (or a running one is presumed lost).
ALTER TABLE tool_executions
    ADD COLUMN decision_verdict text CHECK (decision_verdict IN ('approve', 'deny')),
    ADD COLUMN decision_rule text,
    ADD COLUMN decision_connection text,
    ADD COLUMN error_code text,
    ADD COLUMN usage jsonb CHECK (usage IS NULL OR jsonb_typeof(usage) = 'object'),
    ADD COLUMN request jsonb,
    ADD COLUMN expires_at timestamptz;
ALTER TABLE tool_executions
    ADD CONSTRAINT tool_executions_decided CHECK ((decision IS NULL) = (decision_verdict IS NULL));
-- The janitor's query: approvals nobody gave, approved calls nobody ran, runs whose invocation died.
CREATE INDEX tool_executions_overdue ON tool_executions (expires_at)
    WHERE status IN ('pending', 'approved', 'running');
