-- Saga orchestration state (the seed's saga_instances / saga_step_executions,
-- extended with what durable, resumable execution needs). Written only by
-- handwritten.runtime.saga: every transition is one transaction that also writes
-- the commands it sends to the outbox.
CREATE TABLE saga_instances (
    saga_id uuid PRIMARY KEY,
    saga_type varchar(50) NOT NULL,
    -- Version of the saga definition the instance was started with.
    saga_version integer NOT NULL,
    -- Value of the definition's correlation field (e.g. the order id).
    correlation_key text NOT NULL,
    state varchar(20) NOT NULL
        CHECK (state IN ('RUNNING', 'COMPENSATING', 'COMPLETED', 'COMPENSATED', 'FAILED')),
    -- Index of the step being executed or compensated; NULL once terminal.
    current_step integer,
    -- Start data given by the orchestrator (the seed's payload).
    payload jsonb NOT NULL,
    -- Why the saga is compensating: the failed step's outcome or a cancel request.
    outcome_status varchar(20),
    outcome_reason varchar(50),
    outcome_detail text,
    -- A cancel request not yet acted upon by a worker.
    cancel_status varchar(20),
    cancel_reason varchar(50),
    -- X-Correlation-ID of the request that started the saga (header of its commands).
    trace_correlation_id text NOT NULL,
    -- When a worker must look at the instance next (a retry, a reply deadline, a
    -- recorded input); NULL when nothing can happen without an input (terminal).
    next_attempt_at timestamptz,
    -- A worker's claim while it calls a participant outside any transaction: other
    -- workers leave the instance alone until lease_until (the call's deadline plus a
    -- margin), after which a crashed worker's step is simply attempted again.
    lease_id uuid,
    lease_until timestamptz,
    -- Consecutive transitions that failed before being recorded (bugs, database).
    transition_failures integer NOT NULL DEFAULT 0,
    last_error text,
    created_at timestamptz NOT NULL DEFAULT now(),
    updated_at timestamptz NOT NULL DEFAULT now(),
    finished_at timestamptz,
    CONSTRAINT saga_instances_correlation_key UNIQUE (saga_type, correlation_key)
);

-- The workers' only hot query: due instances, oldest first.
CREATE INDEX saga_instances_due ON saga_instances (next_attempt_at)
    WHERE next_attempt_at IS NOT NULL;

CREATE TABLE saga_step_executions (
    id uuid PRIMARY KEY DEFAULT gen_random_uuid(),
    saga_id uuid NOT NULL REFERENCES saga_instances (saga_id) ON DELETE CASCADE,
    step_index integer NOT NULL CHECK (step_index >= 0),
    step_name varchar(100) NOT NULL,
    status varchar(20) NOT NULL
        CHECK (status IN ('PENDING', 'RUNNING', 'SUCCEEDED', 'FAILED', 'SKIPPED')),
    -- Attempts of the action (including one cut short by a crash).
    attempts integer NOT NULL DEFAULT 0,
    -- The action may have taken effect although no success was recorded (a
    -- timeout, a transport error, a command sent): it is compensated if the saga
    -- turns back.
    uncertain boolean NOT NULL DEFAULT false,
    -- A command was sent and its reply is awaited until then (action or compensation).
    awaiting_until timestamptz,
    -- A reply recorded by the consumer, not yet applied by a worker:
    -- {kind: success|failure, topic, eventId, data}.
    reply jsonb,
    -- What the participant answered on success (e.g. the payment).
    result jsonb,
    -- NULL: nothing to undo; PENDING → RUNNING → DONE.
    compensation varchar(20) CHECK (compensation IN ('PENDING', 'RUNNING', 'DONE')),
    compensation_attempts integer NOT NULL DEFAULT 0,
    -- The compensation keeps failing: surfaced (metric, log, saga FAILED) and
    -- still retried, never dropped.
    stuck boolean NOT NULL DEFAULT false,
    last_error text,
    started_at timestamptz,
    finished_at timestamptz,
    compensation_started_at timestamptz,
    compensated_at timestamptz,
    updated_at timestamptz NOT NULL DEFAULT now(),
    CONSTRAINT saga_step_executions_step UNIQUE (saga_id, step_index)
);
