-- See migrations/0008_open_turns.sql.
CREATE INDEX messages_open_turns ON messages (conversation_id)
    WHERE status IN ('pending', 'streaming', 'awaiting_approval')
       OR (status = 'complete' AND lease_expires_at IS NOT NULL);
CREATE INDEX tool_executions_open ON tool_executions (conversation_id)
    WHERE status IN ('pending', 'approved', 'running');
CREATE INDEX messages_step_deadline ON messages (lease_expires_at)
    WHERE status IN ('complete', 'awaiting_approval') AND lease_expires_at IS NOT NULL;
