-- Event store: an append-only log of domain events per aggregate, plus snapshots.
--
-- UNIQUE (aggregate_id, sequence_number) is the optimistic-concurrency guard: two
-- writers that loaded the same version both try to insert the same next sequence
-- number and exactly one of them wins. Its index also serves every lookup by
-- aggregate_id (leading column), so no separate aggregate_id index is kept.
CREATE TABLE events (
    id bigserial PRIMARY KEY,
    aggregate_id uuid NOT NULL,
    aggregate_type varchar(50) NOT NULL,
    sequence_number integer NOT NULL CHECK (sequence_number > 0),
    event_type varchar(100) NOT NULL,
    event_data jsonb NOT NULL,
    -- event_id, correlation_id, causation_id, traceparent, schema_version, occurred_at
    metadata jsonb NOT NULL,
    occurred_at timestamptz NOT NULL DEFAULT now(),
    CONSTRAINT events_aggregate_sequence_unique UNIQUE (aggregate_id, sequence_number)
);

CREATE INDEX events_occurred_at ON events (occurred_at);

-- One snapshot per aggregate (the latest). snapshot_version is the format of
-- `state`: a reader whose format differs replays the events instead of misreading it.
CREATE TABLE snapshots (
    aggregate_id uuid PRIMARY KEY,
    aggregate_type varchar(50) NOT NULL,
    snapshot_version integer NOT NULL,
    state jsonb NOT NULL,
    last_sequence_number integer NOT NULL CHECK (last_sequence_number > 0),
    created_at timestamptz NOT NULL DEFAULT now()
);
