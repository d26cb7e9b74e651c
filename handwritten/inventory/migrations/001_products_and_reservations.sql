-- Products with their stock, and the stock reservations of orders.
-- Stock safety lives in the schema too: quantities can never go negative, whatever
-- the application does (CHECK constraints are the last line of defence).

CREATE TABLE products (
    product_id uuid PRIMARY KEY DEFAULT gen_random_uuid(),
    name varchar(200) NOT NULL CHECK (length(btrim(name)) > 0),
    description varchar(2000) NOT NULL DEFAULT '',
    price numeric(10, 2) NOT NULL CHECK (price > 0),
    available_quantity integer NOT NULL CHECK (available_quantity >= 0),
    reserved_quantity integer NOT NULL DEFAULT 0 CHECK (reserved_quantity >= 0),
    created_at timestamptz NOT NULL DEFAULT now(),
    updated_at timestamptz NOT NULL DEFAULT now()
);

-- Keyset pagination of the catalogue in creation order.
CREATE INDEX products_created_at_idx ON products (created_at, product_id);

-- One row per (order, product); all rows of an order share status and expiry.
-- product_name and unit_price are the values at reservation time, so a repeated
-- ReserveProducts returns the same lines and prices.
CREATE TABLE inventory_reservations (
    reservation_id uuid PRIMARY KEY DEFAULT gen_random_uuid(),
    order_id uuid NOT NULL,
    product_id uuid NOT NULL REFERENCES products (product_id),
    product_name varchar(200) NOT NULL,
    quantity integer NOT NULL CHECK (quantity BETWEEN 1 AND 1000),
    unit_price numeric(10, 2) NOT NULL CHECK (unit_price > 0),
    status varchar(16) NOT NULL
        CHECK (status IN ('RESERVED', 'COMMITTED', 'RELEASED', 'EXPIRED')),
    expires_at timestamptz NOT NULL,
    created_at timestamptz NOT NULL DEFAULT now(),
    updated_at timestamptz NOT NULL DEFAULT now(),
    -- Also serves lookups by order id (leading column).
    CONSTRAINT inventory_reservations_order_product_key UNIQUE (order_id, product_id)
);

-- The expiry job scans only what can still expire.
CREATE INDEX inventory_reservations_due_idx
    ON inventory_reservations (expires_at) WHERE status = 'RESERVED';
CREATE INDEX inventory_reservations_product_idx ON inventory_reservations (product_id);
