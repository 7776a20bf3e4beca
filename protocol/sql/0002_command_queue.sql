-- DeviceHub schema, version 2: what the command queue with human approval (issue 9) needs.
-- Run by the migration runner inside one transaction: no BEGIN/COMMIT here.

-- A proposer's idempotency key: a retried proposal finds the command it already created
-- instead of creating a second one. Unique per session; NULL (no key) any number of times.
ALTER TABLE devicehub.commands
    ADD COLUMN idempotency_key text CHECK (idempotency_key IS NULL OR length(idempotency_key) BETWEEN 1 AND 128),
    -- The API's default lease (visibility_timeout_seconds) is 30 s.
    ALTER COLUMN visibility_timeout_seconds SET DEFAULT 30;
CREATE UNIQUE INDEX commands_idempotency_idx ON devicehub.commands (session_id, idempotency_key)
    WHERE idempotency_key IS NOT NULL;

-- The per-device queue cap counts a device's unfinished commands on every proposal.
CREATE INDEX commands_device_unfinished_idx ON devicehub.commands (device_id)
    WHERE state IN ('pending_approval', 'queued', 'claimed');

-- The reaper expires pending sessions whose approval window lapsed.
CREATE INDEX diagnostic_sessions_pending_expiry_idx ON devicehub.diagnostic_sessions (expires_at)
    WHERE state = 'pending_approval';

-- Listing an org's sessions, newest first, page by page (keyset on created_at, id).
CREATE INDEX diagnostic_sessions_org_created_idx ON devicehub.diagnostic_sessions (org_id, created_at DESC, id DESC);
