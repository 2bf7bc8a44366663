-- Uploaded files. The first schema's table was never used: it is replaced. A user's rows with
-- the same bytes share one stored object (`files/<user>/<sha256>`) and one processing result;
-- a file first attached in a conversation goes with it.
DROP TABLE file_uploads;

CREATE TABLE file_uploads (
    id               uuid PRIMARY KEY,
    user_id          uuid NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    conversation_id  uuid REFERENCES conversations (id) ON DELETE CASCADE,
    name             text NOT NULL CHECK (length(name) BETWEEN 1 AND 255),
    content_type     text NOT NULL CHECK (length(content_type) BETWEEN 1 AND 255),
    size_bytes       bigint NOT NULL CHECK (size_bytes >= 0),
    sha256           text NOT NULL CHECK (length(sha256) = 64),
    kind             text NOT NULL CHECK (kind IN ('image', 'document', 'spreadsheet', 'text', 'code')),
    status           text NOT NULL CHECK (status IN ('uploading', 'processing', 'ready', 'failed')),
    pages            integer,
    text_chars       bigint,
    width            integer,
    height           integer,
    error_code       text,
    error_message    text,
    created_at       timestamptz NOT NULL,
    updated_at       timestamptz NOT NULL
);
-- GET /api/files: newest first.
CREATE INDEX file_uploads_user_created ON file_uploads (user_id, created_at DESC, id DESC);
-- The same bytes of a user: dedupe, shared results, whether a blob is still used.
CREATE INDEX file_uploads_user_sha ON file_uploads (user_id, sha256);
CREATE INDEX file_uploads_conversation ON file_uploads (conversation_id);
-- The janitor's orphaned uploads.
CREATE INDEX file_uploads_uploading ON file_uploads (created_at) WHERE status = 'uploading';
-- What a message carries, [{file_id, name, content_type, kind}], is in messages.attachments
-- (there since the first schema).
