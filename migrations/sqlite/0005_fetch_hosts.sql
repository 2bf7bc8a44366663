-- The hosts a user lets network tools without a grant of their own (http_fetch) reach.
CREATE TABLE fetch_hosts_settings (
    user_id     TEXT PRIMARY KEY REFERENCES users (id) ON DELETE CASCADE,
    hosts       TEXT NOT NULL CHECK (json_type(hosts) = 'array'),
    updated_at  INTEGER NOT NULL
);
