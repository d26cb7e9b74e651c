-- Idempotent consumers: one row per (consumer, event-id) handled. The row is
-- inserted in the handler's transaction, so the effects and the dedupe mark commit
-- (or roll back) together.
CREATE TABLE processed_events (
    consumer text NOT NULL,
    event_id uuid NOT NULL,
    processed_at timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (consumer, event_id)
);

-- For purging marks older than any possible redelivery.
CREATE INDEX processed_events_processed_at ON processed_events (processed_at);
