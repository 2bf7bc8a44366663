-- Remote MCP servers a user registered (issue 10): the headers they are called with, sealed
-- like provider keys (only their names are shown), whether their annotations are trusted, and
-- their tool list as last fetched.
CREATE TABLE mcp_servers (
    user_id           uuid NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    id                text NOT NULL CHECK (id ~ '^[a-z][a-z0-9_]{0,23}$'),
    url               text NOT NULL CHECK (length(url) BETWEEN 1 AND 2048),
    header_names      jsonb NOT NULL CHECK (jsonb_typeof(header_names) = 'array'),
    headers_sealed    jsonb CHECK (headers_sealed IS NULL OR jsonb_typeof(headers_sealed) = 'object'),
    trusted           boolean NOT NULL,
    enabled           boolean NOT NULL,
    protocol          text,
    tools             jsonb NOT NULL CHECK (jsonb_typeof(tools) = 'array'),
    tools_fetched_at  timestamptz,
    created_at        timestamptz NOT NULL,
    updated_at        timestamptz NOT NULL,
    PRIMARY KEY (user_id, id)
);
