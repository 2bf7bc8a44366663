-- GET /api/usage sums a user's rows over a range: the index carries every column the sums and
-- groups read, so a month of a heavy user's calls is an index-only scan. It replaces the plain
-- (user_id, created_at) index, which it covers.
CREATE INDEX usage_logs_user_created_sums ON usage_logs (user_id, created_at)
    INCLUDE (provider, model, conversation_id, input_tokens, output_tokens, cached_tokens, cost_micros);
DROP INDEX usage_logs_user_created;
