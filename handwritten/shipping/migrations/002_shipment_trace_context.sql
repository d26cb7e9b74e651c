-- W3C traceparent of the span that scheduled the shipment (the orders.confirmed
-- consumer): the timer-driven status changes (IN_TRANSIT, DELIVERED) continue the
-- order's trace from it. NULL when tracing was off when the shipment was scheduled.
ALTER TABLE shipments ADD COLUMN IF NOT EXISTS traceparent text;
