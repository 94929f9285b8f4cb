-- Fair delivery: the claim query counts each subscriber's deliveries in
-- flight (claimed, lease not expired); this partial index keeps that count
-- to the claimed rows of one subscriber.
CREATE INDEX deliveries_in_flight ON deliveries (service_id, claimed_until) WHERE claimed_by IS NOT NULL;
-- Claims take due deliveries in (next_attempt_at, id) order (ids are
-- time-ordered): read from this index, without sorting the backlog.
CREATE INDEX deliveries_due_order ON deliveries (state, next_attempt_at, id);
