-- See ../0010_usage_sums.sql. SQLite has no INCLUDE: the columns are the index's keys.
CREATE INDEX usage_logs_user_created_sums ON usage_logs (user_id, created_at, provider, model,
    conversation_id, input_tokens, output_tokens, cached_tokens, cost_micros);
DROP INDEX usage_logs_user_created;
