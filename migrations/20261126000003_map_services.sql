-- Optional map services a campaign may use: a background map and an address search.
ALTER TABLE campaigns ADD COLUMN basemap jsonb, ADD COLUMN geocoder jsonb;
