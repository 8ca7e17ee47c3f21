-- civicmap foundation schema: campaigns, their districts, submissions and the per-district
-- counters that make reading counts cost O(districts), never O(points).
CREATE EXTENSION IF NOT EXISTS postgis;

-- Staff API tokens. The secret is never stored: only its SHA-256.
CREATE TABLE api_tokens (
    id          bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    name        text NOT NULL CHECK (length(name) BETWEEN 1 AND 200),
    role        text NOT NULL CHECK (role IN ('admin', 'moderator', 'planner')),
    secret_hash bytea NOT NULL,
    created_at  timestamptz NOT NULL DEFAULT now(),
    expires_at  timestamptz,
    revoked_at  timestamptz
);

CREATE TABLE campaigns (
    id                 bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    slug               text NOT NULL UNIQUE CHECK (slug ~ '^[a-z0-9]([a-z0-9-]{0,62}[a-z0-9])?$'),
    title_fr           text NOT NULL,
    title_en           text NOT NULL,
    description_fr     text NOT NULL DEFAULT '',
    description_en     text NOT NULL DEFAULT '',
    default_lang       text NOT NULL DEFAULT 'fr' CHECK (default_lang IN ('fr', 'en')),
    status             text NOT NULL DEFAULT 'draft' CHECK (status IN ('draft', 'open', 'closed')),
    opens_at           timestamptz,
    closes_at          timestamptz,
    -- The area given by the city, if any. NULL means "the union of the districts".
    area               geometry(MultiPolygon, 4326),
    -- What submissions are checked against: `area`, or the union of the districts. Maintained
    -- by the code that changes either, so that a submission never unions polygons.
    effective_area     geometry(MultiPolygon, 4326),
    -- [min_lon, min_lat, max_lon, max_lat] of effective_area, kept with it so that reading a
    -- campaign never has to load its polygons.
    bounds             float8[],
    form               jsonb NOT NULL DEFAULT '{"fields": []}',
    public_precision_m integer NOT NULL DEFAULT 50 CHECK (public_precision_m BETWEEN 1 AND 10000),
    min_count          integer NOT NULL DEFAULT 5 CHECK (min_count BETWEEN 1 AND 1000),
    moderation         text NOT NULL DEFAULT 'post' CHECK (moderation IN ('post', 'pre')),
    -- Bumped by every change of settings, area or districts: instances that cache a campaign
    -- check it inside each submission's statement, so a stale copy is never written through.
    config_version     bigint NOT NULL DEFAULT 1,
    created_at         timestamptz NOT NULL DEFAULT now(),
    updated_at         timestamptz NOT NULL DEFAULT now(),
    CHECK (opens_at IS NULL OR closes_at IS NULL OR opens_at < closes_at)
);

CREATE TABLE districts (
    id          bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    campaign_id bigint NOT NULL REFERENCES campaigns (id) ON DELETE CASCADE,
    -- Order in the imported file. A point on a border shared by two districts belongs to the
    -- one with the lowest position, so that every point counts exactly once.
    position    integer NOT NULL,
    code        text NOT NULL,
    name        text NOT NULL,
    geom        geometry(MultiPolygon, 4326) NOT NULL,
    UNIQUE (campaign_id, code),
    UNIQUE (campaign_id, position)
);
CREATE INDEX districts_geom_idx ON districts USING gist (geom);

-- The hot tables (submissions, district_counts, idempotency_keys) have no foreign keys to
-- campaigns and districts: a foreign-key check locks the referenced row, and with every
-- concurrent submission locking the same campaign row, that halves the insert rate (measured,
-- docs/PERFORMANCE.md). Integrity is kept by the code instead: campaigns are never deleted,
-- and a district import locks these tables, re-assigns every submission and rebuilds the
-- counts in one transaction.
CREATE TABLE submissions (
    id              uuid PRIMARY KEY,
    campaign_id     bigint NOT NULL,
    district_id     bigint,
    geom            geometry(Point, 4326) NOT NULL,
    answers         jsonb NOT NULL,
    status          text NOT NULL CHECK (status IN ('published', 'pending', 'hidden', 'rejected')),
    edit_token_hash bytea NOT NULL,
    created_at      timestamptz NOT NULL DEFAULT now(),
    updated_at      timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX submissions_campaign_created_idx ON submissions (campaign_id, created_at);
CREATE INDEX submissions_district_idx ON submissions (district_id);
CREATE INDEX submissions_geom_idx ON submissions USING gist (geom);

-- Published counts per district (district_id NULL: inside the area, outside every district).
-- Each district has a few shards so that concurrent submissions in one district do not queue
-- on a single row lock; a count is the sum of its shards. Shards may go below zero after
-- erasures; only the sum is meaningful.
CREATE TABLE district_counts (
    campaign_id bigint NOT NULL,
    district_id bigint,
    shard       smallint NOT NULL,
    published   bigint NOT NULL DEFAULT 0,
    CONSTRAINT district_counts_key UNIQUE NULLS NOT DISTINCT (campaign_id, district_id, shard)
);

-- A POST with an Idempotency-Key stores its response here, so that a retry gets the same
-- answer instead of a second submission. Rows are purged after a day.
CREATE TABLE idempotency_keys (
    campaign_id   bigint NOT NULL,
    key           text NOT NULL,
    request_hash  bytea NOT NULL,
    submission_id uuid,
    response      jsonb,
    created_at    timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (campaign_id, key)
);
CREATE INDEX idempotency_keys_created_idx ON idempotency_keys (created_at);
