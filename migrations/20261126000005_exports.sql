-- Planner exports and analytics.

-- The H3 cell (resolution 10) of each submission, computed by civicmap when the position is
-- stored or changed. Coarser cells (resolutions 6 to 9) are its parents. NULL only for rows
-- stored before this column existed, until `civicmap` fills them in at start-up.
ALTER TABLE submissions ADD COLUMN h3 bigint;

-- Published submissions per district and H3 cell of resolution 10, maintained like
-- district_counts and demand_cells in the statements that store, erase or moderate a
-- submission. H3 aggregates at resolutions 6 to 10 are read from it: its size is bounded by
-- the area, never by the number of submissions.
CREATE TABLE h3_counts (
    campaign_id bigint NOT NULL,
    district_id bigint,
    cell        bigint NOT NULL,
    published   bigint NOT NULL,
    CONSTRAINT h3_counts_key UNIQUE NULLS NOT DISTINCT (campaign_id, district_id, cell)
);

-- A target per district, by district code (e.g. 300 households), kept across re-imports of
-- the districts.
ALTER TABLE campaigns ADD COLUMN targets jsonb NOT NULL DEFAULT '{}';

