-- The foreign key from `addresses.street_id` to `address_streets` cost an import of 600,000
-- addresses 5 to 20 % of its time (a trigger and an index probe per row; benches/addresses.sh,
-- A/B on the same file: 37,946-46,995 rows/s with it, 49,195-49,784 without). Only the import
-- writes either table, in one transaction, and keeps the link by construction: each address
-- gets its street from a join with the streets just inserted, and a commune's streets are
-- deleted only after every address of theirs (src/addresses/mod.rs, `import`).
ALTER TABLE addresses DROP CONSTRAINT addresses_street_id_fkey;
