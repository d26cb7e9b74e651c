-- A committed reservation can be RETURNED: a confirmed order canceled before it
-- ships puts its sold stock back on sale (RestoreStock, the saga's reversal of
-- CommitReservation).
ALTER TABLE inventory_reservations DROP CONSTRAINT inventory_reservations_status_check;
ALTER TABLE inventory_reservations ADD CONSTRAINT inventory_reservations_status_check
    CHECK (status IN ('RESERVED', 'COMMITTED', 'RELEASED', 'EXPIRED', 'RETURNED'));
