-- Figures finer than a district (the map's hexagons, splits by answer, sums, the time series)
-- are released with differential privacy (src/figures): each submission is counted once, by
-- one release, with noise; what the public reads is the running sum of the releases' noisy
-- figures. This replaces the publications of k arrivals (migration 10), whose differences
-- could be read one household at a time.
ALTER TABLE campaigns
    DROP COLUMN publish_interval_minutes,
    DROP COLUMN published_until,
    -- ε: what each contribution's finer figures may cost over the campaign's life.
    ADD COLUMN privacy_budget double precision NOT NULL DEFAULT 2
        CHECK (privacy_budget >= 0.1 AND privacy_budget <= 10),
    ADD COLUMN release_every text NOT NULL DEFAULT 'week' CHECK (release_every IN ('day', 'week')),
    ADD COLUMN map_resolution smallint NOT NULL DEFAULT 8 CHECK (map_resolution BETWEEN 6 AND 10);

-- The release that counted the submission; NULL until one does. Set once, never reset: a
-- correction, a restore or a new district import does not count it again.
ALTER TABLE submissions ADD COLUMN release_id bigint;

CREATE TABLE releases (
    id           bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    campaign_id  bigint NOT NULL REFERENCES campaigns (id),
    -- It counted the submissions published before period_end and not counted yet.
    period_start timestamptz NOT NULL,
    period_end   timestamptz NOT NULL,
    released_at  timestamptz NOT NULL DEFAULT now(),
    -- What each submission it counted spent, and how (src/figures/budget.rs, `Plan`).
    epsilon      double precision NOT NULL,
    plan         jsonb NOT NULL,
    -- The noisy number of submissions it counted: the time series.
    series       bigint NOT NULL,
    -- The exact district totals when it was made, `[[code, count, contributors], ...]` in the
    -- districts' order ('' for outside every district, last): what the map's estimates are
    -- made to add up to. Never published as such (the districts layer publishes the live ones).
    totals       jsonb NOT NULL,
    -- Submissions counted (staff only).
    counted      integer NOT NULL,
    UNIQUE (campaign_id, period_end),
    CHECK (period_start < period_end)
);

-- The running sum, over a campaign's releases, of each noisy figure.
CREATE TABLE release_figures (
    campaign_id bigint NOT NULL REFERENCES campaigns (id),
    -- 'map', 'split:{field}' or 'sum:{field}'.
    family      text NOT NULL,
    -- District code; '' for outside every district.
    district    text NOT NULL,
    -- map: the H3 cell (hexadecimal); split: the answer ('' for none); sum: ''.
    key         text NOT NULL,
    value       bigint NOT NULL,
    PRIMARY KEY (campaign_id, family, district, key)
);

-- Publications read the submissions published again through this index; releases read every
-- submission of the campaign not counted yet, once per period.
DROP INDEX submissions_republished_idx;

-- The counters of H3 cells: the public's hexagons are released estimates now, and staff's exact
-- ones are counted from `submissions.h3`; storing a submission no longer writes them.
DROP TABLE h3_counts;
