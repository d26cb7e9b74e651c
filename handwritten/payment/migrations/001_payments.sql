-- Payments of orders (one per order) for the payment service.
--
-- The seed's `payments` table plus what the saga replies need (saga_id, failure
-- reason, the command's event and correlation ids) and `closed_at` (the saga's
-- compensation was handled; see handwritten/payment/domain/payments.py). The seed's
-- `processed_payments` table is the runtime inbox (`processed_events`), filled in
-- the same transaction as these rows.

CREATE TABLE payments (
    payment_id uuid PRIMARY KEY,
    -- At most one payment, hence at most one successful charge, per order.
    order_id uuid NOT NULL UNIQUE,
    saga_id uuid NOT NULL,
    -- NULL only for an order closed (refund requested) before any charge request.
    user_id uuid,
    amount numeric(10, 2) NOT NULL CHECK (amount >= 0),
    currency char(3) NOT NULL DEFAULT 'BRL' CHECK (currency = 'BRL'),
    status varchar(20) NOT NULL
        CHECK (status IN ('PENDING', 'SUCCEEDED', 'FAILED', 'REFUNDED', 'VOIDED')),
    payment_method varchar(128),
    gateway_transaction_id varchar(255),
    failure_reason varchar(50)
        CHECK (failure_reason IN ('DECLINED', 'GATEWAY_ERROR', 'INVALID_PAYMENT_METHOD')),
    failure_message varchar(500),
    requested_at timestamptz,
    processed_at timestamptz,
    closed_at timestamptz,
    request_event_id uuid,
    correlation_id varchar(128),
    created_at timestamptz NOT NULL DEFAULT now(),
    updated_at timestamptz NOT NULL DEFAULT now(),
    -- Money taken (now or before a refund) always has the gateway's transaction.
    CONSTRAINT payments_charge_has_transaction CHECK (
        status NOT IN ('SUCCEEDED', 'REFUNDED') OR gateway_transaction_id IS NOT NULL
    ),
    CONSTRAINT payments_failure_has_reason CHECK (
        (status = 'FAILED') = (failure_reason IS NOT NULL)
    ),
    -- Refunded and voided payments are closed; pending and succeeded ones are not.
    CONSTRAINT payments_closed_states CHECK (
        CASE status
            WHEN 'REFUNDED' THEN closed_at IS NOT NULL
            WHEN 'VOIDED' THEN closed_at IS NOT NULL
            WHEN 'FAILED' THEN true
            ELSE closed_at IS NULL
        END
    ),
    CONSTRAINT payments_requested_has_user CHECK (
        (requested_at IS NULL) = (user_id IS NULL)
    )
);

CREATE INDEX payments_status_idx ON payments (status);
-- The reconciliation job's scan: only the (few) pending payments, oldest first.
CREATE INDEX payments_pending_idx ON payments (created_at) WHERE status = 'PENDING';
