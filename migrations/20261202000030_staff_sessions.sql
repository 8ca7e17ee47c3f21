-- Console sessions (src/auth/sessions.rs): a staff token exchanged, at sign-in, for a session
-- held by the browser in an HttpOnly cookie. Only the SHA-256 of the session's secret is stored
-- (a copy of this table lets nobody sign in). A session lives while its token is valid (the
-- check joins api_tokens; revoking a token also deletes its sessions), until `expires_at`
-- (absolute lifetime) and while it is used (idle timeout, from `last_seen_at`, written at most
-- once a minute). Signing out deletes the row; expired rows are deleted by every instance.
CREATE TABLE staff_sessions (
    secret_hash  bytea       PRIMARY KEY CHECK (length(secret_hash) = 32),
    token_id     bigint      NOT NULL REFERENCES api_tokens (id) ON DELETE CASCADE,
    created_at   timestamptz NOT NULL DEFAULT now(),
    last_seen_at timestamptz NOT NULL DEFAULT now(),
    expires_at   timestamptz NOT NULL
);
CREATE INDEX staff_sessions_token ON staff_sessions (token_id);
CREATE INDEX staff_sessions_expiry ON staff_sessions (expires_at);

-- Sign-in attempts are rate-limited per client with the same shared GCRA buckets as
-- submission writes (src/safety/limits.rs), in a scope of their own.
ALTER TABLE rate_limits DROP CONSTRAINT rate_limits_scope_check;
ALTER TABLE rate_limits ADD CONSTRAINT rate_limits_scope_check
    CHECK (scope IN ('client', 'campaign', 'signin'));
