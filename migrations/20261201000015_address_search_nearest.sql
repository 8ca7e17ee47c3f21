-- The address search takes the streets nearest the typed text by word similarity from a GiST
-- trigram index (`ORDER BY search <<-> $text LIMIT n`, a nearest-neighbour index scan) instead
-- of scoring every street whose similarity passes the threshold: with thousands of streets in a
-- campaign's box sharing the typed words, that scoring took 65 ms a query (benches/addresses.sh),
-- the index scan about 3 ms. GiST also answers `<%`, so the GIN index goes.
CREATE INDEX address_streets_search_gist ON address_streets USING gist (search gist_trgm_ops);
DROP INDEX address_streets_search_idx;
