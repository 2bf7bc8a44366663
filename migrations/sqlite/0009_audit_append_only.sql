-- The audit trail is append-only: no entry changes, and none goes while its user exists (a
-- user's erasure takes theirs with them through the users foreign key, whose cascade runs
-- after the user row is gone). Entries reference nothing but the user, so deleting a
-- conversation, a tool or a server leaves what was recorded about them.
CREATE TRIGGER audit_log_no_update BEFORE UPDATE ON audit_log
BEGIN
    SELECT RAISE(ABORT, 'audit_log is append-only (UPDATE)');
END;
CREATE TRIGGER audit_log_no_delete BEFORE DELETE ON audit_log
WHEN EXISTS (SELECT 1 FROM users WHERE id = OLD.user_id)
BEGIN
    SELECT RAISE(ABORT, 'audit_log is append-only (DELETE)');
END;
