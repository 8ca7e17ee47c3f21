-- Every instance keeps each campaign's (config_version, data_version) in memory instead of
-- reading them for every tile (src/aggregates/watch.rs); it learns of a change by LISTENing on
-- `civicmap_versions`. A statement that changes the counters, or a campaign's settings,
-- notifies that channel with the campaign's id: once per statement and campaign (statement-level
-- triggers over the transition table, not a row trigger), delivered at commit, and identical
-- notifications of one transaction are folded into one by PostgreSQL.
CREATE FUNCTION notify_versions_changed() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    PERFORM pg_notify('civicmap_versions', c.campaign_id::text)
    FROM (SELECT DISTINCT campaign_id FROM changed) c;
    RETURN NULL;
END $$;

-- A trigger with a transition table has one event: three triggers, one function.
CREATE TRIGGER district_counts_inserted AFTER INSERT ON district_counts
    REFERENCING NEW TABLE AS changed FOR EACH STATEMENT EXECUTE FUNCTION notify_versions_changed();
CREATE TRIGGER district_counts_updated AFTER UPDATE ON district_counts
    REFERENCING NEW TABLE AS changed FOR EACH STATEMENT EXECUTE FUNCTION notify_versions_changed();
CREATE TRIGGER district_counts_deleted AFTER DELETE ON district_counts
    REFERENCING OLD TABLE AS changed FOR EACH STATEMENT EXECUTE FUNCTION notify_versions_changed();

-- Settings: rare, one row at a time.
CREATE FUNCTION notify_campaign_changed() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    PERFORM pg_notify('civicmap_versions', OLD.id::text);
    RETURN NULL;
END $$;

CREATE TRIGGER campaigns_versions_changed AFTER UPDATE ON campaigns FOR EACH ROW
    WHEN (OLD.config_version IS DISTINCT FROM NEW.config_version)
    EXECUTE FUNCTION notify_campaign_changed();
