-- Idempotency keys: one row per (scope, key) — the scope is the calling user — with
-- the fingerprint of the request that claimed it and, once done, its response.
--
-- The PRIMARY KEY is what makes claiming atomic: of N concurrent requests with the
-- same key exactly one INSERT wins; the others see the row (in flight, or completed
-- with a response to replay). claim_token identifies the winner, so only it can
-- complete or release the claim, even after a stale claim was taken over.
CREATE TABLE idempotency_keys (
    scope text NOT NULL,
    key text NOT NULL,
    -- sha256 (hex) of the request: method, path and canonical JSON body.
    fingerprint text NOT NULL,
    claim_token uuid NOT NULL,
    state text NOT NULL CHECK (state IN ('in_flight', 'completed')),
    response_status integer,
    -- [[name, value], ...] of the response headers worth replaying.
    response_headers jsonb,
    response_body bytea,
    created_at timestamptz NOT NULL DEFAULT now(),
    claimed_at timestamptz NOT NULL DEFAULT now(),
    completed_at timestamptz,
    -- Kept at least until then; afterwards purged, and the key may be used afresh.
    expires_at timestamptz NOT NULL,
    PRIMARY KEY (scope, key),
    CHECK (state = 'in_flight' OR (response_status IS NOT NULL AND response_body IS NOT NULL))
);

CREATE INDEX idempotency_keys_expires_at ON idempotency_keys (expires_at);
