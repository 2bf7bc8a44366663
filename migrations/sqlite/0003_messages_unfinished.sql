-- The janitor's query: answers whose turn never finished.
CREATE INDEX messages_unfinished ON messages (updated_at) WHERE status IN ('pending', 'streaming');
