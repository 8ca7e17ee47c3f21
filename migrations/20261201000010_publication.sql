-- Figures finer than a district (the map's demand cells, H3 cells, breakdowns by answer, sums,
-- time series) are published as snapshots: a submission enters them at the first publication
-- instant (a multiple of the campaign's interval) after it was published at its place, so that
-- someone polling them never sees a single arrival. District totals stay live.
ALTER TABLE campaigns ADD COLUMN publish_interval_minutes smallint NOT NULL DEFAULT 5
    CHECK (publish_interval_minutes BETWEEN 1 AND 1440);
-- The publication instant in force (NULL: nothing published yet). It moves to a later
-- multiple of the interval only once at least k submissions arrived since it, so that two
-- successive publications never differ by fewer than k arrivals.
ALTER TABLE campaigns ADD COLUMN published_until timestamptz;

-- When the submission was last published at its current place: on insert (equal to
-- created_at), then at each approval, restore or correction.
ALTER TABLE submissions ADD COLUMN published_at timestamptz;
UPDATE submissions SET published_at = created_at;
ALTER TABLE submissions ALTER COLUMN published_at SET DEFAULT now(),
                        ALTER COLUMN published_at SET NOT NULL;
-- The submissions published again after their creation: the only ones besides the newest
-- (found by submissions_campaign_created_idx) that a publication leaves out. New rows are not
-- in it, so storing a submission maintains no extra index.
CREATE INDEX submissions_republished_idx ON submissions (campaign_id, published_at)
    WHERE published_at > created_at;
