-- Shipments (one per order), their status history, and the orders canceled before
-- a shipment was scheduled. The schema enforces what must never be violated even
-- by a buggy release: one shipment per order, unique tracking codes, known
-- statuses, delivered_at set exactly when delivered.

CREATE TABLE shipments (
    shipment_id uuid PRIMARY KEY,
    order_id uuid NOT NULL,
    -- Owner of the order (from orders.confirmed), for "customers see their own".
    user_id uuid NOT NULL,
    tracking_code varchar(40) NOT NULL CHECK (tracking_code ~ '^[A-Z0-9-]{8,40}$'),
    status varchar(16) NOT NULL
        CHECK (status IN ('SCHEDULED', 'IN_TRANSIT', 'DELIVERED', 'CANCELED')),
    destination_city varchar(100) NOT NULL,
    destination_state char(2) NOT NULL,
    estimated_delivery_date date NOT NULL,
    delivered_at timestamptz,
    -- Correlation id of the order's saga, carried on by timer-driven updates.
    correlation_id varchar(128),
    created_at timestamptz NOT NULL DEFAULT now(),
    -- When the status last changed: the progression job advances a shipment once
    -- its status is SHIPPING_STEP_SECONDS old.
    updated_at timestamptz NOT NULL DEFAULT now(),
    CONSTRAINT shipments_order_id_key UNIQUE (order_id),
    CONSTRAINT shipments_tracking_code_key UNIQUE (tracking_code),
    CONSTRAINT shipments_delivered_at_check
        CHECK ((status = 'DELIVERED') = (delivered_at IS NOT NULL))
);

-- The progression job scans only shipments that can still move.
CREATE INDEX shipments_due_idx ON shipments (updated_at)
    WHERE status IN ('SCHEDULED', 'IN_TRANSIT');

-- Append-only; the identity gives a total order even for equal timestamps.
CREATE TABLE shipment_status_history (
    id bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    shipment_id uuid NOT NULL REFERENCES shipments (shipment_id) ON DELETE CASCADE,
    status varchar(16) NOT NULL
        CHECK (status IN ('SCHEDULED', 'IN_TRANSIT', 'DELIVERED', 'CANCELED')),
    location varchar(255),
    occurred_at timestamptz NOT NULL
);

CREATE INDEX shipment_status_history_shipment_idx
    ON shipment_status_history (shipment_id, id);

-- orders.canceled seen before any orders.confirmed of the order (the two topics are
-- not ordered with each other): a later confirm must not ship the order.
CREATE TABLE canceled_orders (
    order_id uuid PRIMARY KEY,
    reason varchar(32) NOT NULL,
    recorded_at timestamptz NOT NULL
);
