-- A new message waits until its conversation's previous turn has ended (so the transcript stays
-- in turn order): these find a turn still going without reading the conversation's history.
CREATE INDEX messages_open_turns ON messages (conversation_id)
    WHERE status IN ('pending', 'streaming', 'awaiting_approval');
CREATE INDEX tool_executions_open ON tool_executions (conversation_id)
    WHERE status IN ('pending', 'approved', 'running');
