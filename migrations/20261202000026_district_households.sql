-- The number of households of each district of a campaign (src/districts/households.rs),
-- imported from a CSV, so that demand reads relative to the base: contributions per 1,000
-- households. Public figures (INSEE's, the city's), nothing about a contributor. Kept by district
-- code, like the targets, so that a new import of the districts keeps them for the codes it
-- keeps. An import replaces them all and bumps the campaign's `config_version`.
CREATE TABLE district_households (
    campaign_id bigint NOT NULL REFERENCES campaigns (id),
    code        text   NOT NULL,
    households  bigint NOT NULL CHECK (households BETWEEN 0 AND 10000000),
    PRIMARY KEY (campaign_id, code)
);
