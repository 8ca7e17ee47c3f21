-- Under attack, citizens still get through (src/safety/limits.rs, src/notify/mod.rs).

-- Every door of the citizens' writes has its own buckets, per client and per network prefix
-- (`submit/client`, `submit/24`, `challenge/56`, …), beside the campaign's, the sign-in's and
-- the first-contribution reserve's: the scope is `door` or `door/network`.
ALTER TABLE rate_limits DROP CONSTRAINT rate_limits_scope_check;
ALTER TABLE rate_limits ADD CONSTRAINT rate_limits_scope_check
    CHECK (scope ~ '^[a-z]+(/[a-z0-9]+)?$');

-- Takes one cell from each bucket in order, stopping at the first that refuses (the cells
-- taken before it stay taken, as a client's did when its campaign refused): returns that
-- bucket's position (1-based) and how far ahead of now its `tat` is, or no row when every
-- bucket allowed. The same GCRA as before, one `INSERT … ON CONFLICT DO UPDATE` per bucket
-- deciding under the row's lock, in one round trip. `at_time` NULL is the database's now().
CREATE FUNCTION take_cells(at_time timestamptz, scopes text[], keys bytea[],
                           intervals_us bigint[], tolerances_us bigint[])
RETURNS TABLE (bucket integer, lead_us bigint)
LANGUAGE plpgsql AS $$
DECLARE
    instant timestamptz := coalesce(at_time, now());
    t interval;
    tau interval;
    was_refused boolean;
    new_tat timestamptz;
BEGIN
    FOR i IN 1 .. coalesce(array_length(scopes, 1), 0) LOOP
        t := make_interval(secs => intervals_us[i] / 1000000.0);
        tau := make_interval(secs => tolerances_us[i] / 1000000.0);
        INSERT INTO rate_limits AS b (scope, key, tat, refused)
        VALUES (scopes[i], keys[i], instant + t, false)
        ON CONFLICT (scope, key) DO UPDATE SET
            refused = b.tat > instant + tau,
            tat = CASE WHEN b.tat > instant + tau THEN b.tat
                       ELSE greatest(b.tat + t, instant + t) END
        RETURNING b.refused, b.tat INTO was_refused, new_tat;
        IF was_refused THEN
            bucket := i;
            lead_us := (extract(epoch FROM new_tat - instant) * 1000000)::bigint;
            RETURN NEXT;
            RETURN;
        END IF;
    END LOOP;
END
$$;

-- When a campaign's own allowance ran out and it asked for proofs of work instead of refusing
-- citizens: the console and /metrics show it. UNLOGGED like the buckets it summarises; a row
-- whose `last_seen` is more than two minutes old means the pressure has ended.
CREATE UNLOGGED TABLE campaign_pressure (
    campaign_id bigint PRIMARY KEY REFERENCES campaigns (id) ON DELETE CASCADE,
    since       timestamptz NOT NULL,
    last_seen   timestamptz NOT NULL,
    difficulty  smallint NOT NULL
);

-- Confirmations go to a mailbox, not to a spelling of it: `mailbox` is the address as its
-- provider reads it (lower case, `+tag` dropped, and for Gmail the dots too), written by
-- `notify::mailbox` for new rows; existing rows get the same rule here.
ALTER TABLE subscriptions ADD COLUMN mailbox text;
UPDATE subscriptions SET mailbox = CASE
    WHEN split_part(lower(email), '@', 2) IN ('gmail.com', 'googlemail.com')
        THEN replace(split_part(split_part(lower(email), '@', 1), '+', 1), '.', '') || '@gmail.com'
    ELSE split_part(split_part(lower(email), '@', 1), '+', 1) || '@' || split_part(lower(email), '@', 2)
END;
ALTER TABLE subscriptions ALTER COLUMN mailbox SET NOT NULL;
CREATE INDEX subscriptions_mailbox_idx ON subscriptions (campaign_id, mailbox);
-- Caps on the unconfirmed requests of the last hour, per campaign and per recipient domain.
CREATE INDEX subscriptions_unconfirmed_idx ON subscriptions (campaign_id, created_hour)
    WHERE NOT confirmed;

-- Confirmations have a lane of their own in the outbox, so that they never delay notices and
-- webhooks: each sender claims from its lane's index.
DROP INDEX outbox_due_idx;
CREATE INDEX outbox_due_idx ON outbox ((kind = 'confirm'), next_attempt_at, id)
    WHERE sent_at IS NULL AND failed_at IS NULL;
