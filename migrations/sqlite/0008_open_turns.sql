-- See migrations/0008_open_turns.sql.
CREATE INDEX messages_open_turns ON messages (conversation_id)
    WHERE status IN ('pending', 'streaming', 'awaiting_approval');
CREATE INDEX tool_executions_open ON tool_executions (conversation_id)
    WHERE status IN ('pending', 'approved', 'running');
