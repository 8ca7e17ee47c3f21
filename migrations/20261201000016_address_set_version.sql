-- The version of the address file as a whole: every import adds one and notifies
-- `civicmap_versions` with the payload `addresses` (src/addresses/mod.rs), so that every
-- instance drops the address indexes it built in memory from the previous file
-- (src/addresses/index.rs; the version is kept by src/aggregates/watch.rs).
CREATE TABLE address_set (
    single  boolean PRIMARY KEY DEFAULT true CHECK (single),
    version bigint NOT NULL DEFAULT 0
);
INSERT INTO address_set DEFAULT VALUES;
