-- The decision trail (issue 14, item 1): per pushed tag and subscriber,
-- what matching decided and why (delivered, not newer than …, other stage,
-- api-version, unverified, moved tag), written in the transaction that
-- records the event's deliveries. `decision` is a spec DecisionKind wire
-- name; `reason` is for a person. Numbered 0012: 0010 and 0011 are kept
-- for the sealed-secrets work on another branch.
CREATE TABLE decisions (
    event_id    TEXT NOT NULL REFERENCES inbound_events (id) ON DELETE CASCADE,
    service_id  TEXT NOT NULL REFERENCES services (id) ON DELETE CASCADE,
    repository  TEXT NOT NULL,
    tag         TEXT NOT NULL,
    decision    TEXT NOT NULL,
    reason      TEXT NOT NULL,
    delivery_id TEXT,
    decided_at  BIGINT NOT NULL,
    PRIMARY KEY (event_id, service_id)
);
-- The subscription status reads the latest decision per image.
CREATE INDEX decisions_subscriber ON decisions (service_id, repository, decided_at);
