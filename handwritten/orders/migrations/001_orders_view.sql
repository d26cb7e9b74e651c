-- orders_view: the CQRS read model of orders, one denormalised row per order.
--
-- Written only by the projector (same transaction as the order's events) and by
-- `python -m handwritten.orders rebuild-projections`, which truncates and replays
-- the event store. `version` is the sequence number of the last event folded in:
-- upserts only move a row forward.
CREATE TABLE orders_view (
    order_id uuid PRIMARY KEY,
    user_id uuid NOT NULL,
    status varchar(20) NOT NULL
        CHECK (status IN ('PENDING', 'CONFIRMED', 'SHIPPED', 'DELIVERED', 'CANCELED')),
    total_amount numeric(10, 2) NOT NULL,
    currency char(3) NOT NULL DEFAULT 'BRL',
    -- [{productId, productName, quantity, unitPrice}] in order.
    items jsonb NOT NULL,
    -- {street, city, state, zipCode}
    shipping_address jsonb NOT NULL,
    payment_status varchar(20),
    payment_id uuid,
    shipping_status varchar(20),
    tracking_code varchar(64),
    cancel_reason varchar(32),
    version integer NOT NULL CHECK (version > 0),
    created_at timestamptz NOT NULL,
    updated_at timestamptz NOT NULL,
    CHECK ((status = 'CANCELED') = (cancel_reason IS NOT NULL))
);

-- "My orders, newest first" (the list endpoints' keyset pagination).
CREATE INDEX orders_view_user_created ON orders_view (user_id, created_at DESC, order_id DESC);
-- Every user's orders (admin lists) and status filters.
CREATE INDEX orders_view_created ON orders_view (created_at DESC, order_id DESC);
CREATE INDEX orders_view_status ON orders_view (status);
