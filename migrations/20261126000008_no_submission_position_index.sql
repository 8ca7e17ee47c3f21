-- No query looks submissions up by position: a submission's district is found through the
-- districts' own index, tiles and aggregates read the maintained counters, and the duplicate
-- rule finds a client's few earlier submissions through its hash index. The spatial index on
-- submissions only made every insert dearer.
DROP INDEX IF EXISTS submissions_geom_idx;
