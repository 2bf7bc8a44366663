-- A new message waits until its conversation's previous turn has ended, so the transcript stays
-- in turn order. A turn is open while an answer is unfinished, a tool call has not ended, or a
-- tool step's loop has not yet gone on: such a step keeps a deadline for its next step in
-- lease_expires_at until that step exists (the janitor continues it once the deadline passes).
-- These find both without reading the conversation's history.
CREATE INDEX messages_open_turns ON messages (conversation_id)
    WHERE status IN ('pending', 'streaming', 'awaiting_approval')
       OR (status = 'complete' AND lease_expires_at IS NOT NULL);
CREATE INDEX tool_executions_open ON tool_executions (conversation_id)
    WHERE status IN ('pending', 'approved', 'running');
-- The janitor's query: tool steps whose continuation is overdue.
CREATE INDEX messages_step_deadline ON messages (lease_expires_at)
    WHERE status IN ('complete', 'awaiting_approval') AND lease_expires_at IS NOT NULL;
