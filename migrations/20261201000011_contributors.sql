-- Only distinct contributors count toward a campaign's k, so that one client posting k - 1
-- probes into a cell cannot make the others in it public (issue 10, "padding").
--
-- A contributor is a keyed hash of the client's address (its /64 for IPv6) under the server
-- secret and the campaign id: unlinkable across campaigns, never linked to a submission here
-- (no submission id), and deleted when the campaign's retention is applied.
CREATE TABLE contributors (
    campaign_id bigint NOT NULL,
    hash        bytea NOT NULL,
    PRIMARY KEY (campaign_id, hash)
);

-- True for the first submission of its contributor in its campaign (and for submissions whose
-- contributor is unknown: staff imports, the demo, rows stored before this column existed).
-- Thresholds count these; published figures count every submission.
ALTER TABLE submissions ADD COLUMN first_contribution boolean NOT NULL DEFAULT true;

-- The counters keep, beside each published count, how many of those submissions are first
-- contributions: the figure's distinct contributors, as far as civicmap can tell.
ALTER TABLE district_counts ADD COLUMN contributors bigint NOT NULL DEFAULT 0;
ALTER TABLE h3_counts ADD COLUMN contributors bigint NOT NULL DEFAULT 0;
ALTER TABLE demand_cells ADD COLUMN contributors bigint NOT NULL DEFAULT 0;
UPDATE district_counts SET contributors = published;
UPDATE h3_counts SET contributors = published;
UPDATE demand_cells SET contributors = published;
