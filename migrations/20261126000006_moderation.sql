-- Trust and safety: when staff tokens were last used, reports on submissions for moderators,
-- and the retention of exact data after a campaign closes.

-- Written at most once a minute per token (see auth::verify), so that listing tokens shows
-- which ones are still in use without a write on every staff request.
ALTER TABLE api_tokens ADD COLUMN last_used_at timestamptz;

-- A staff member (or an automated check) flags a submission for moderators. A report is open
-- until a moderator decides on its submission; the decision resolves every open report.
CREATE TABLE submission_reports (
    id            bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    campaign_id   bigint NOT NULL,
    submission_id uuid NOT NULL,
    reason        text NOT NULL CHECK (length(reason) BETWEEN 1 AND 1000),
    -- The staff token that reported (NULL for the command line or an automated check).
    token_id      bigint,
    reporter      text NOT NULL,
    created_at    timestamptz NOT NULL DEFAULT now(),
    resolved_at   timestamptz
);
CREATE INDEX submission_reports_open_idx ON submission_reports (campaign_id, submission_id)
    WHERE resolved_at IS NULL;
CREATE INDEX submission_reports_submission_idx ON submission_reports (submission_id);

-- Retention: `retention_days` after the campaign closes (its `closes_at`, or the moment its
-- status became `closed`, whichever is first), exact positions are snapped to the centre of
-- their cell of the public grid and free-text answers are deleted. NULL: kept until erased.
ALTER TABLE campaigns
    ADD COLUMN retention_days integer CHECK (retention_days BETWEEN 0 AND 36500),
    ADD COLUMN retention_applied_at timestamptz,
    ADD COLUMN closed_at timestamptz;

-- Campaigns already closed: the best known closing time is their last change.
UPDATE campaigns SET closed_at = updated_at WHERE status = 'closed';

-- `closed_at` follows the status, whatever code changes it (API, command line, SQL by hand).
CREATE FUNCTION campaigns_track_closed_at() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    IF NEW.status = 'closed' THEN
        IF TG_OP = 'INSERT' OR OLD.status IS DISTINCT FROM 'closed' THEN
            NEW.closed_at := now();
        END IF;
    ELSE
        NEW.closed_at := NULL;
    END IF;
    RETURN NEW;
END $$;

CREATE TRIGGER campaigns_track_closed_at BEFORE INSERT OR UPDATE OF status ON campaigns
    FOR EACH ROW EXECUTE FUNCTION campaigns_track_closed_at();

-- The moderation queue reads submissions that are not published, oldest first; they are few
-- beside the published ones, so the index is partial and costs published inserts nothing.
CREATE INDEX submissions_unpublished_idx ON submissions (campaign_id, status, created_at, id)
    WHERE status <> 'published';
