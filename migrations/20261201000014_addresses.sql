-- Addresses for the address search: public open data (the Base Adresse Nationale, or the
-- demo's synthetic set), shared by every campaign. A campaign searches those inside its area.
-- Nothing about who searched what is stored: there is no table for queries.
CREATE EXTENSION IF NOT EXISTS pg_trgm;

CREATE TABLE addresses (
    -- The BAN's identifier (`92050_0123_00012_bis`).
    id          text PRIMARY KEY CHECK (length(id) BETWEEN 1 AND 100),
    -- The commune's INSEE code: an import replaces every address of the communes in its file.
    code_insee  text NOT NULL,
    numero      integer NOT NULL CHECK (numero BETWEEN 0 AND 99999),
    -- Repetition suffix: '', 'bis', 'ter', 'a'... (lowercase).
    rep         text NOT NULL DEFAULT '',
    nom_voie    text NOT NULL,
    code_postal text NOT NULL,
    nom_commune text NOT NULL,
    geom        geometry(Point, 4326) NOT NULL,
    -- The street, postcode and commune as `addresses::normalise` writes them (lowercase, no
    -- accents, abbreviations expanded), computed at import by the same function that reads
    -- each query: what the trigram index compares.
    search      text NOT NULL
);
CREATE INDEX addresses_geom_idx ON addresses USING gist (geom);
CREATE INDEX addresses_search_idx ON addresses USING gin (search gin_trgm_ops);
CREATE INDEX addresses_code_insee_idx ON addresses (code_insee);
