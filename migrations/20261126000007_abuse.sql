-- Trust and safety: settings that keep automated programs and floods out of a campaign, the
-- server's own secret, spent proof-of-work challenges and the keyed client hash used to spot
-- duplicates.

-- Campaign settings (see src/safety): the least time a citizen takes to fill the form, an
-- optional proof of work, an optional duplicate rule, and the sites allowed to embed the map
-- and to write to it (empty: any site).
ALTER TABLE campaigns
    ADD COLUMN min_fill_seconds smallint NOT NULL DEFAULT 3 CHECK (min_fill_seconds BETWEEN 0 AND 60),
    ADD COLUMN proof_of_work    jsonb,
    ADD COLUMN duplicates       jsonb,
    ADD COLUMN allowed_origins  text[] NOT NULL DEFAULT '{}';

-- Secrets shared by every instance over this database, generated on first use by the code
-- (from the operating system's generator): `hmac` signs proof-of-work challenges and keys the
-- client hashes.
CREATE TABLE server_secrets (
    name       text PRIMARY KEY,
    secret     bytea NOT NULL CHECK (length(secret) >= 32),
    created_at timestamptz NOT NULL DEFAULT now()
);

-- A proof-of-work challenge is usable once: its random part is kept here until it expires,
-- then purged.
CREATE TABLE spent_challenges (
    challenge  text PRIMARY KEY,
    expires_at timestamptz NOT NULL
);
CREATE INDEX spent_challenges_expires_idx ON spent_challenges (expires_at);

-- HMAC (with the `hmac` server secret) of the client's IP address, never the address itself,
-- kept only on submissions to campaigns with a duplicate rule and cleared once the rule's window
-- has passed. NULL for every other submission, so the partial index costs nothing to them.
ALTER TABLE submissions ADD COLUMN client_hash bytea;
CREATE INDEX submissions_client_idx ON submissions (campaign_id, client_hash, created_at)
    WHERE client_hash IS NOT NULL;
