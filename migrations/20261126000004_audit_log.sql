-- Who did what, when and why: moderation decisions, raw exports, token changes. Rows are only
-- ever added; admins read them through the API.
CREATE TABLE audit_log (
    id          bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    at          timestamptz NOT NULL DEFAULT now(),
    -- The staff token that acted (NULL for the command line on the server itself).
    token_id    bigint,
    actor       text NOT NULL,
    action      text NOT NULL,
    campaign_id bigint,
    -- What the action was about (a submission id, a token id), if one thing.
    subject     text,
    reason      text,
    -- Anything else worth keeping: filters of an export, rows written, previous status.
    details     jsonb NOT NULL DEFAULT '{}'
);
CREATE INDEX audit_log_at_idx ON audit_log (at);
CREATE INDEX audit_log_campaign_idx ON audit_log (campaign_id, at);
