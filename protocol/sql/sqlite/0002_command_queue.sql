-- DeviceHub embedded schema, version 2: protocol/sql/0002_command_queue.sql for SQLite.
-- Run by the migration runner inside one transaction: no BEGIN/COMMIT here.
--
-- Not here: the PostgreSQL file's new default of visibility_timeout_seconds (30). SQLite
-- cannot change a column's default in place; the only way is rebuilding the table, and with
-- foreign keys on (the hub always has them on, and the runner's transaction cannot turn them
-- off) dropping the old commands table would cascade-delete every command's events and
-- logs. The hub always writes the column itself, so the default is never used.

-- A proposer's idempotency key, unique per session (see the PostgreSQL file).
ALTER TABLE commands ADD COLUMN idempotency_key TEXT
    CHECK (idempotency_key IS NULL OR length(idempotency_key) BETWEEN 1 AND 128);
CREATE UNIQUE INDEX commands_idempotency_idx ON commands (session_id, idempotency_key)
    WHERE idempotency_key IS NOT NULL;

-- The per-device queue cap counts a device's unfinished commands on every proposal.
CREATE INDEX commands_device_unfinished_idx ON commands (device_id)
    WHERE state IN ('pending_approval', 'queued', 'claimed');

-- The reaper expires pending sessions whose approval window lapsed.
CREATE INDEX diagnostic_sessions_pending_expiry_idx ON diagnostic_sessions (expires_at)
    WHERE state = 'pending_approval';

-- Listing an org's sessions, newest first, page by page (keyset on created_at, id).
CREATE INDEX diagnostic_sessions_org_created_idx ON diagnostic_sessions (org_id, created_at DESC, id DESC);
