-- Transactional outbox: events to publish, written in the same transaction as the
-- state change that produced them; a relay publishes them to Kafka in id order.
CREATE TABLE outbox (
    id bigserial PRIMARY KEY,
    -- The event-id header: consumers deduplicate on it, so a republished row is harmless.
    event_id uuid NOT NULL UNIQUE,
    topic text NOT NULL,
    -- The Kafka message key (the aggregate id): per-key order is what the relay keeps.
    key text NOT NULL,
    -- The record value exactly as encoded (JSON bytes), published byte for byte.
    value bytea NOT NULL,
    -- Header name -> UTF-8 value.
    headers jsonb NOT NULL,
    created_at timestamptz NOT NULL DEFAULT now(),
    published_at timestamptz
);

-- The relay's only hot query: unpublished rows in id order (and the backlog gauges).
CREATE INDEX outbox_unpublished ON outbox (id) WHERE published_at IS NULL;

-- Wake the relay as soon as rows commit (a NOTIFY is delivered at commit, and not at
-- all on rollback). The payload names the schema so that relays of other schemas in
-- the same database, which share the channel, can ignore it.
CREATE FUNCTION outbox_notify() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    PERFORM pg_notify('microcommerce_outbox', TG_TABLE_SCHEMA);
    RETURN NULL;
END;
$$;

CREATE TRIGGER outbox_notify AFTER INSERT ON outbox
    FOR EACH STATEMENT EXECUTE FUNCTION outbox_notify();
