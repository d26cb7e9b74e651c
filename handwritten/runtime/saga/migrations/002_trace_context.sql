-- W3C traceparent of the span that started the saga (the request that created the
-- order). Every later transition — steps, compensations, timeouts, the recovery of
-- an instance after a crash — is a span whose parent is this one, so one order is
-- ONE trace however long its saga runs and whichever worker or replica runs it.
-- NULL when tracing was off when the saga started.
ALTER TABLE saga_instances ADD COLUMN IF NOT EXISTS traceparent text;
