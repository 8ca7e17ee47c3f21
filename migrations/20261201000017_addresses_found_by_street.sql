-- Addresses are found through their streets: a campaign's addresses are those of the streets
-- whose box meets its area (the GiST index on `address_streets.box`, some 30 times smaller),
-- then of those, the numbers inside the area (by `street_id`); an import replaces a commune's
-- addresses through its streets too. So two indexes of `addresses` serve nothing, and keeping
-- them was most of an import's time (benches/addresses.sh: the INSERT into `addresses` took
-- 12-14 of 20 s for 600,000 addresses, a GiST insert being the dearest per row).
DROP INDEX addresses_geom_idx;
DROP INDEX addresses_code_insee_idx;
