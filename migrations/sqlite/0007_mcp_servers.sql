-- Remote MCP servers a user registered: see migrations/0007_mcp_servers.sql.
CREATE TABLE mcp_servers (
    user_id           TEXT NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    id                TEXT NOT NULL CHECK (length(id) BETWEEN 1 AND 24 AND id GLOB '[a-z]*'
                                           AND id NOT GLOB '*[^a-z0-9_]*'),
    url               TEXT NOT NULL CHECK (length(url) BETWEEN 1 AND 2048),
    header_names      TEXT NOT NULL CHECK (json_type(header_names) = 'array'),
    headers_sealed    TEXT CHECK (headers_sealed IS NULL OR json_type(headers_sealed) = 'object'),
    trusted           INTEGER NOT NULL CHECK (trusted IN (0, 1)),
    enabled           INTEGER NOT NULL CHECK (enabled IN (0, 1)),
    protocol          TEXT,
    tools             TEXT NOT NULL CHECK (json_type(tools) = 'array'),
    tools_fetched_at  INTEGER,
    created_at        INTEGER NOT NULL,
    updated_at        INTEGER NOT NULL,
    PRIMARY KEY (user_id, id)
);
