-- A running turn holds a lease on its answer and renews it while alive; the janitor ends only
-- answers whose lease lapsed, and the final write checks the lease (DESIGN.md §5.9). A pending
-- answer's lease is the time by which a turn must claim it. Times are microseconds since 1970.
ALTER TABLE messages ADD COLUMN lease_owner TEXT;
ALTER TABLE messages ADD COLUMN lease_expires_at INTEGER;
UPDATE messages SET lease_expires_at = updated_at WHERE status IN ('pending', 'streaming');
DROP INDEX messages_unfinished;
CREATE INDEX messages_lease ON messages (lease_expires_at) WHERE status IN ('pending', 'streaming');
