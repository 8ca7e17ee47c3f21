-- The map's demand layer now draws the published H3 cells (h3_counts), the same figures as the
-- H3 downloads, instead of squares of the public grid: two families of places that do not nest
-- could be compared with each other (issue 10). The grid's counters are no longer read.
-- campaigns.grid_size stays: retention moves the positions it coarsens to its cells' centres.
DROP TABLE demand_cells;
