-- Notices (src/notify): citizens who follow a district by e-mail, staff's webhooks, and the
-- outbox both are sent from.

-- An e-mail address following a campaign (and one of its districts, or the whole campaign).
-- Stored apart from submissions: no submission id, no client hash, and times kept to the hour
-- only, so that a row cannot be matched with the pin its owner may have dropped.
CREATE TABLE subscriptions (
    id               uuid PRIMARY KEY,
    campaign_id      bigint NOT NULL REFERENCES campaigns (id) ON DELETE CASCADE,
    email            text NOT NULL CHECK (length(email) BETWEEN 3 AND 254),
    lang             text NOT NULL CHECK (lang IN ('fr', 'en')),
    -- A district's code; NULL: the whole campaign (updates and closing only).
    district_code    text,
    confirmed        boolean NOT NULL DEFAULT false,
    created_hour     timestamptz NOT NULL DEFAULT date_trunc('hour', now()),
    -- When the last confirmation message was asked for (one per address and hour at most).
    confirmation_hour timestamptz,
    CONSTRAINT subscriptions_key UNIQUE NULLS NOT DISTINCT (campaign_id, email, district_code)
);
CREATE INDEX subscriptions_district_idx ON subscriptions (campaign_id, district_code) WHERE confirmed;

-- Endpoints of the city's own systems, registered by admins, that receive signed POSTs.
CREATE TABLE webhooks (
    id          bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    campaign_id bigint NOT NULL REFERENCES campaigns (id) ON DELETE CASCADE,
    url         text NOT NULL CHECK (url ~ '^https?://'),
    -- The HMAC-SHA-256 key of the signatures: needed as is to sign, so not hashed.
    secret      text NOT NULL,
    -- Internal endpoints (the city's own network) receive a new submission's exact position.
    internal    boolean NOT NULL DEFAULT false,
    events      text[] NOT NULL CHECK (cardinality(events) > 0
                   AND events <@ ARRAY['submission.created', 'district.threshold', 'campaign.closed']),
    created_at  timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX webhooks_campaign_idx ON webhooks (campaign_id);

-- What was announced once and for all: a district passing a share of its target, a campaign
-- closing. The key makes each announcement happen once, whichever instance sees it first.
CREATE TABLE notice_announcements (
    campaign_id   bigint NOT NULL REFERENCES campaigns (id) ON DELETE CASCADE,
    kind          text NOT NULL CHECK (kind IN ('threshold', 'closed')),
    district_code text NOT NULL DEFAULT '',
    threshold     smallint NOT NULL DEFAULT 0,
    announced_at  timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (campaign_id, kind, district_code, threshold)
);

-- The durable outbox: one row per message to send (an e-mail to a subscription, a POST to a
-- webhook), written in the transaction of the event that causes it, sent at least once, and
-- marked sent in the transaction that claimed it (FOR UPDATE SKIP LOCKED).
CREATE TABLE outbox (
    id              bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    campaign_id     bigint NOT NULL REFERENCES campaigns (id) ON DELETE CASCADE,
    subscription_id uuid REFERENCES subscriptions (id) ON DELETE CASCADE,
    webhook_id      bigint REFERENCES webhooks (id) ON DELETE CASCADE,
    -- E-mail: confirm, threshold, update, closed; webhook: the event's type.
    kind            text NOT NULL,
    -- What the message says (district, threshold, update...), never an address.
    payload         jsonb NOT NULL DEFAULT '{}',
    -- One message, whatever retries: its Message-ID and the webhook's event id derive from it.
    key             text NOT NULL UNIQUE,
    attempts        integer NOT NULL DEFAULT 0,
    next_attempt_at timestamptz NOT NULL DEFAULT now(),
    last_error      text,
    sent_at         timestamptz,
    failed_at       timestamptz,
    created_at      timestamptz NOT NULL DEFAULT now(),
    CHECK ((subscription_id IS NULL) <> (webhook_id IS NULL))
);
CREATE INDEX outbox_due_idx ON outbox (next_attempt_at, id) WHERE sent_at IS NULL AND failed_at IS NULL;
CREATE INDEX outbox_subscription_idx ON outbox (subscription_id);
CREATE INDEX outbox_webhook_idx ON outbox (webhook_id);
