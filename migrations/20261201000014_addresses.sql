-- Addresses for the address search: public open data (the Base Adresse Nationale, or the
-- demo's synthetic set), shared by every campaign. A campaign searches those inside its area.
-- Nothing about who searched what is stored: there is no table for queries.
CREATE EXTENSION IF NOT EXISTS pg_trgm;

-- The streets (a street name in a commune and postcode), which the search matches by trigrams:
-- some 30 times fewer rows than addresses, so a query reads a small index, and an import
-- maintains it for each street rather than for each number.
CREATE TABLE address_streets (
    id          bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    -- The commune's INSEE code: an import replaces every street of the communes in its file.
    code_insee  text NOT NULL,
    code_postal text NOT NULL,
    nom_voie    text NOT NULL,
    nom_commune text NOT NULL,
    -- The street, postcode and commune as `addresses::normalise` writes them (lowercase, no
    -- accents, abbreviations expanded), computed at import by the same function that reads
    -- each query: what the trigram index compares.
    search      text NOT NULL,
    -- The bounding box of its numbers (a point or a line when they are aligned).
    box         geometry(Geometry, 4326) NOT NULL,
    UNIQUE (code_insee, code_postal, nom_voie, nom_commune)
);
CREATE INDEX address_streets_search_idx ON address_streets USING gin (search gin_trgm_ops);
CREATE INDEX address_streets_box_idx ON address_streets USING gist (box);

CREATE TABLE addresses (
    -- The BAN's identifier (`92050_0123_00012_bis`).
    id          text PRIMARY KEY CHECK (length(id) BETWEEN 1 AND 100),
    street_id   bigint NOT NULL REFERENCES address_streets (id),
    code_insee  text NOT NULL,
    numero      integer NOT NULL CHECK (numero BETWEEN 0 AND 99999),
    -- Repetition suffix: '', 'bis', 'ter', 'a'... (lowercase).
    rep         text NOT NULL DEFAULT '',
    geom        geometry(Point, 4326) NOT NULL
);
CREATE INDEX addresses_street_idx ON addresses (street_id);
CREATE INDEX addresses_geom_idx ON addresses USING gist (geom);
CREATE INDEX addresses_code_insee_idx ON addresses (code_insee);
