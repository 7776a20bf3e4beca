-- DeviceHub schema, version 1: the durable records of docs/product.md §2–§3.
--
-- Everything lives in the schema `devicehub`, so the hub can share a database with Supabase's
-- `auth` and `public` schemas. User ids are Supabase `auth.users` ids (the JWT `sub`), kept as
-- plain uuids without a foreign key: `auth` may not exist (plain PostgreSQL, tests) and the hub
-- never writes there.
--
-- States and kinds are text with CHECK constraints rather than enum types: adding a state is
-- one ALTER ... CHECK in a transaction, and the SQLite variant can say the same thing.
-- Secrets, codes and keys are stored only as hashes (bytea); comparisons happen in the hub in
-- constant time. Run by the migration runner inside one transaction: no BEGIN/COMMIT here.

CREATE SCHEMA IF NOT EXISTS devicehub;

-- Customer accounts.
CREATE TABLE devicehub.orgs (
    id                       uuid PRIMARY KEY DEFAULT gen_random_uuid(),
    name                     text NOT NULL CHECK (length(name) BETWEEN 1 AND 200),
    slug                     text NOT NULL UNIQUE CHECK (slug ~ '^[a-z0-9][a-z0-9-]{0,62}$'),
    -- Four eyes: a session or command must be approved by someone other than its requester.
    require_distinct_approver boolean NOT NULL DEFAULT true,
    -- Command kinds that run inside an approved session without their own approval.
    auto_approved_kinds      text[] NOT NULL DEFAULT '{}',
    created_at               timestamptz NOT NULL DEFAULT now(),
    updated_at               timestamptz NOT NULL DEFAULT now()
);

-- Membership and role; viewer < operator < approver < admin (role_rank orders them).
CREATE TABLE devicehub.org_members (
    org_id     uuid NOT NULL REFERENCES devicehub.orgs (id) ON DELETE CASCADE,
    user_id    uuid NOT NULL,
    role       text NOT NULL CHECK (role IN ('viewer', 'operator', 'approver', 'admin')),
    role_rank  smallint GENERATED ALWAYS AS (
                   CASE role WHEN 'viewer' THEN 0 WHEN 'operator' THEN 1 WHEN 'approver' THEN 2 ELSE 3 END) STORED,
    created_at timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (org_id, user_id)
);
-- "Which orgs does this user belong to" runs on every customer request.
CREATE INDEX org_members_user_idx ON devicehub.org_members (user_id);

CREATE TABLE devicehub.devices (
    id            uuid PRIMARY KEY DEFAULT gen_random_uuid(),
    org_id        uuid NOT NULL REFERENCES devicehub.orgs (id) ON DELETE CASCADE,
    name          text NOT NULL CHECK (length(name) BETWEEN 1 AND 200),
    state         text NOT NULL DEFAULT 'provisioned' CHECK (state IN ('provisioned', 'active', 'disabled')),
    -- Hash of the 256-bit device secret; set when the device registers.
    secret_hash   bytea,
    last_seen_at  timestamptz,
    agent_version text,
    metadata      jsonb NOT NULL DEFAULT '{}'::jsonb CHECK (jsonb_typeof(metadata) = 'object'),
    created_at    timestamptz NOT NULL DEFAULT now(),
    updated_at    timestamptz NOT NULL DEFAULT now(),
    -- An active device has a secret; a provisioned one not yet.
    CONSTRAINT devices_active_has_secret CHECK (state <> 'active' OR secret_hash IS NOT NULL)
);
CREATE INDEX devices_org_idx ON devicehub.devices (org_id, name);

-- Single-use codes a device presents to register. Stored hashed; attempts are counted.
CREATE TABLE devicehub.activation_codes (
    id           uuid PRIMARY KEY DEFAULT gen_random_uuid(),
    org_id       uuid NOT NULL REFERENCES devicehub.orgs (id) ON DELETE CASCADE,
    device_id    uuid NOT NULL REFERENCES devicehub.devices (id) ON DELETE CASCADE,
    code_hash    bytea NOT NULL UNIQUE,
    expires_at   timestamptz NOT NULL,
    attempts     integer NOT NULL DEFAULT 0 CHECK (attempts >= 0),
    max_attempts integer NOT NULL DEFAULT 5 CHECK (max_attempts > 0),
    used_at      timestamptz,
    created_by   uuid,
    created_at   timestamptz NOT NULL DEFAULT now(),
    CHECK (expires_at > created_at)
);
-- One live (unused) code per device.
CREATE UNIQUE INDEX activation_codes_device_live_idx ON devicehub.activation_codes (device_id) WHERE used_at IS NULL;
-- Purge of expired codes.
CREATE INDEX activation_codes_expiry_idx ON devicehub.activation_codes (expires_at) WHERE used_at IS NULL;

-- Keys of service integrations: shown once, stored hashed, found by their visible prefix.
CREATE TABLE devicehub.api_keys (
    id           uuid PRIMARY KEY DEFAULT gen_random_uuid(),
    org_id       uuid REFERENCES devicehub.orgs (id) ON DELETE CASCADE, -- NULL: hub-wide admin key
    name         text NOT NULL CHECK (length(name) BETWEEN 1 AND 200),
    prefix       text NOT NULL UNIQUE CHECK (length(prefix) BETWEEN 6 AND 32),
    key_hash     bytea NOT NULL,
    scopes       text[] NOT NULL DEFAULT '{}',
    expires_at   timestamptz,
    revoked_at   timestamptz,
    last_used_at timestamptz,
    created_by   uuid,
    created_at   timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX api_keys_org_idx ON devicehub.api_keys (org_id) WHERE revoked_at IS NULL;

-- An operator's diagnostic session on one device, approved by someone else (four eyes).
CREATE TABLE devicehub.diagnostic_sessions (
    id             uuid PRIMARY KEY DEFAULT gen_random_uuid(),
    org_id         uuid NOT NULL REFERENCES devicehub.orgs (id) ON DELETE CASCADE,
    device_id      uuid NOT NULL REFERENCES devicehub.devices (id) ON DELETE CASCADE,
    requested_by   uuid NOT NULL,
    reason         text NOT NULL CHECK (length(reason) BETWEEN 1 AND 2000),
    state          text NOT NULL DEFAULT 'pending_approval'
                   CHECK (state IN ('pending_approval', 'active', 'closed', 'rejected', 'expired')),
    decided_by     uuid,
    decided_at     timestamptz,
    decision_note  text,
    expires_at     timestamptz,
    closed_at      timestamptz,
    created_at     timestamptz NOT NULL DEFAULT now(),
    updated_at     timestamptz NOT NULL DEFAULT now(),
    -- Approved or rejected sessions say who decided.
    CHECK (state NOT IN ('active', 'rejected') OR decided_by IS NOT NULL)
);
CREATE INDEX diagnostic_sessions_device_idx ON devicehub.diagnostic_sessions (device_id, state);
-- The approval feed: pending sessions of an org, oldest first.
CREATE INDEX diagnostic_sessions_org_pending_idx ON devicehub.diagnostic_sessions (org_id, created_at) WHERE state = 'pending_approval';

-- The command queue's durable record (Redis holds the hot queue; this table rebuilds it).
CREATE TABLE devicehub.commands (
    id                  uuid PRIMARY KEY DEFAULT gen_random_uuid(),
    -- FIFO order within a device and priority class.
    seq                 bigint GENERATED ALWAYS AS IDENTITY UNIQUE,
    org_id              uuid NOT NULL REFERENCES devicehub.orgs (id) ON DELETE CASCADE,
    session_id          uuid NOT NULL REFERENCES devicehub.diagnostic_sessions (id) ON DELETE CASCADE,
    device_id           uuid NOT NULL REFERENCES devicehub.devices (id) ON DELETE CASCADE,
    kind                text NOT NULL CHECK (length(kind) BETWEEN 1 AND 100),
    arguments           jsonb NOT NULL DEFAULT '{}'::jsonb,
    priority            text NOT NULL DEFAULT 'default' CHECK (priority IN ('critical', 'default', 'bulk')),
    priority_rank       smallint GENERATED ALWAYS AS (
                            CASE priority WHEN 'critical' THEN 0 WHEN 'default' THEN 1 ELSE 2 END) STORED,
    state               text NOT NULL DEFAULT 'pending_approval'
                        CHECK (state IN ('pending_approval', 'queued', 'claimed', 'succeeded', 'failed',
                                         'rejected', 'canceled', 'expired', 'dead_lettered')),
    needs_approval      boolean NOT NULL DEFAULT true,
    proposed_by         text NOT NULL,                -- user id or api key id
    decided_by          uuid,
    decided_at          timestamptz,
    ttl_seconds         integer NOT NULL DEFAULT 3600 CHECK (ttl_seconds > 0),
    expires_at          timestamptz NOT NULL,
    max_attempts        integer NOT NULL DEFAULT 3 CHECK (max_attempts BETWEEN 1 AND 100),
    visibility_timeout_seconds integer NOT NULL DEFAULT 60 CHECK (visibility_timeout_seconds BETWEEN 1 AND 43200),
    attempts            integer NOT NULL DEFAULT 0 CHECK (attempts >= 0),
    -- The current delivery: its lease token, deadline, and when the first claim of this
    -- delivery happened (extensions are capped relative to it).
    lease_token         uuid,
    lease_expires_at    timestamptz,
    leased_at           timestamptz,
    exit_code           integer,
    output_summary      text CHECK (output_summary IS NULL OR length(output_summary) <= 65536),
    result              jsonb,
    finished_at         timestamptz,
    created_at          timestamptz NOT NULL DEFAULT now(),
    updated_at          timestamptz NOT NULL DEFAULT now(),
    CHECK (state <> 'claimed' OR (lease_token IS NOT NULL AND lease_expires_at IS NOT NULL)),
    CHECK (attempts <= max_attempts)
);
-- Claim: the next queued command of a device, by class then FIFO.
CREATE INDEX commands_claim_idx ON devicehub.commands (device_id, priority_rank, seq) WHERE state = 'queued';
-- Lease sweep: claimed commands whose lease lapsed go back in line (or are dead-lettered).
CREATE INDEX commands_lease_idx ON devicehub.commands (lease_expires_at) WHERE state = 'claimed';
-- TTL sweep: commands not yet finished whose TTL lapsed end as expired.
CREATE INDEX commands_ttl_idx ON devicehub.commands (expires_at) WHERE state IN ('pending_approval', 'queued', 'claimed');
-- Listing a session's commands; the approval feed of an org.
CREATE INDEX commands_session_idx ON devicehub.commands (session_id, seq);
CREATE INDEX commands_org_pending_idx ON devicehub.commands (org_id, created_at) WHERE state = 'pending_approval';

-- Every state change and delivery of a command (queued, claimed, extended, lease_lapsed,
-- dead_lettered, result ...), in order.
CREATE TABLE devicehub.command_events (
    id          bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    command_id  uuid NOT NULL REFERENCES devicehub.commands (id) ON DELETE CASCADE,
    event       text NOT NULL CHECK (length(event) BETWEEN 1 AND 64),
    from_state  text,
    to_state    text,
    actor       text,
    detail      jsonb NOT NULL DEFAULT '{}'::jsonb,
    at          timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX command_events_command_idx ON devicehub.command_events (command_id, id);

-- Lines a device streams while running a command (bounded by the hub; the live room history
-- lives in Redis).
CREATE TABLE devicehub.execution_logs (
    command_id uuid NOT NULL REFERENCES devicehub.commands (id) ON DELETE CASCADE,
    seq        bigint NOT NULL CHECK (seq >= 0),
    stream     text NOT NULL CHECK (stream IN ('stdout', 'stderr')),
    line       text NOT NULL,
    at         timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (command_id, seq)
);

-- Who approved, rejected, provisioned, revoked; failed auth attempts. Append-only.
CREATE TABLE devicehub.audit_log (
    id          bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    at          timestamptz NOT NULL DEFAULT now(),
    org_id      uuid REFERENCES devicehub.orgs (id) ON DELETE SET NULL,
    actor_type  text NOT NULL CHECK (actor_type IN ('user', 'device', 'api_key', 'system', 'anonymous')),
    actor_id    text,
    action      text NOT NULL CHECK (length(action) BETWEEN 1 AND 100),
    target_type text,
    target_id   text,
    outcome     text NOT NULL DEFAULT 'success' CHECK (outcome IN ('success', 'denied', 'failure')),
    request_id  text,
    ip          inet,
    detail      jsonb NOT NULL DEFAULT '{}'::jsonb
);
CREATE INDEX audit_log_org_idx ON devicehub.audit_log (org_id, at);
CREATE INDEX audit_log_action_idx ON devicehub.audit_log (action, at);
