-- The hosts a user lets network tools without a grant of their own (http_fetch) reach
-- (`GET/PUT /api/settings/fetch-hosts`). Every address is still checked by the egress guard.
CREATE TABLE fetch_hosts_settings (
    user_id     uuid PRIMARY KEY REFERENCES users (id) ON DELETE CASCADE,
    hosts       jsonb NOT NULL CHECK (jsonb_typeof(hosts) = 'array'),
    updated_at  timestamptz NOT NULL
);
