-- A campaign's story (src/story): the milestones and updates staff post for the public, shown
-- as a timeline under the map and as an Atom feed. Public text only, written by staff: nothing
-- here comes from or tells about a contributor.
--
-- Every write bumps the campaign's `config_version` in the same transaction, so that the
-- cached story (src/http/cache.rs, keyed by that version) and every instance (the
-- `campaigns_versions_changed` trigger notifies them) see it at once.
CREATE TABLE story_entries (
    id           uuid        PRIMARY KEY DEFAULT gen_random_uuid(),
    campaign_id  bigint      NOT NULL REFERENCES campaigns (id),
    kind         text        NOT NULL CHECK (kind IN ('milestone', 'update')),
    -- The day the milestone happened (or is planned), as staff give it.
    happened_on  date        NOT NULL,
    title_fr     text        NOT NULL,
    title_en     text        NOT NULL,
    text_fr      text        NOT NULL,
    text_en      text        NOT NULL,
    -- An optional http(s) link (the council's decision, a press release).
    link         text,
    -- Drafts are seen by staff only.
    published    boolean     NOT NULL DEFAULT true,
    created_at   timestamptz NOT NULL DEFAULT now(),
    updated_at   timestamptz NOT NULL DEFAULT now()
);

CREATE INDEX story_entries_campaign_idx ON story_entries (campaign_id, happened_on, created_at);
