-- Vector tiles: what they are built from, and what tells that a tile changed.

-- Every change to a campaign's published data adds to `changes` on the counter row it touches,
-- in the same statement as the change itself. The sum over a campaign is its data version:
-- it never goes back, and it moves with every committed submission, erasure or decision.
ALTER TABLE district_counts ADD COLUMN changes bigint NOT NULL DEFAULT 0;

-- District outlines in Web Mercator, kept in step with `geom`, for tiles.
ALTER TABLE districts
    ADD COLUMN geom_3857 geometry(MultiPolygon, 3857) GENERATED ALWAYS AS (ST_Transform(geom, 3857)) STORED;
CREATE INDEX districts_geom_3857_idx ON districts USING gist (geom_3857);

-- Size, in Web Mercator units, of the cells of the campaign's public grid: its public precision
-- in metres on the ground at the latitude of its area's centre. NULL until it has an area.
ALTER TABLE campaigns ADD COLUMN grid_size double precision;

-- Published submissions per cell of the public grid: cell (cx, cy) covers
-- [cx * grid_size, (cx + 1) * grid_size) in x and likewise in y. Maintained in the statement
-- that stores or erases a submission; its size is bounded by the area, never by the number of
-- submissions, and demand tiles at every zoom are aggregated from it.
CREATE TABLE demand_cells (
    campaign_id bigint NOT NULL,
    cx          bigint NOT NULL,
    cy          bigint NOT NULL,
    published   bigint NOT NULL,
    PRIMARY KEY (campaign_id, cx, cy)
);
