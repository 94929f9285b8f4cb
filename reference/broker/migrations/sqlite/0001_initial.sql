-- tagcast-broker schema, SQLite. Times are milliseconds since the Unix epoch.
-- Keep in step with ../postgres/0001_initial.sql: both stores run the same queries.

CREATE TABLE settings (
    key   TEXT PRIMARY KEY,
    value TEXT NOT NULL
);

-- A registered service: the GA4GH document as reads show it (no secret, no hooks).
CREATE TABLE services (
    id         TEXT PRIMARY KEY,
    document   TEXT NOT NULL,
    created_at BIGINT NOT NULL,
    updated_at BIGINT NOT NULL
);

-- The `subscription` extension of a service (DESIGN.md §4).
CREATE TABLE subscriptions (
    service_id        TEXT PRIMARY KEY REFERENCES services (id) ON DELETE CASCADE,
    stage             TEXT NOT NULL,
    api_requirement   TEXT NOT NULL,
    callback_url      TEXT NOT NULL,
    secret            TEXT NOT NULL,
    enabled           BIGINT NOT NULL DEFAULT 1,
    disabled_reason   TEXT,
    updated_at        BIGINT NOT NULL
);

-- Matching is indexed by repository: its cost does not grow with the
-- subscriptions on other images. A channel is (repository, stage), so the
-- last delivered tag is kept per image.
CREATE TABLE subscription_images (
    service_id        TEXT NOT NULL REFERENCES subscriptions (service_id) ON DELETE CASCADE,
    repository        TEXT NOT NULL,
    last_tag          TEXT,
    last_digest       TEXT,
    last_delivered_at BIGINT,
    PRIMARY KEY (service_id, repository)
);
CREATE INDEX subscription_images_repository ON subscription_images (repository);

-- One inbound URL per (kind, registry), shared by every subscription whose
-- images live there.
CREATE TABLE hook_sources (
    token      TEXT PRIMARY KEY,
    kind       TEXT NOT NULL,
    registry   TEXT NOT NULL,
    secret     TEXT,
    created_at BIGINT NOT NULL,
    UNIQUE (kind, registry)
);

-- The event log: every event of an authentic hook, accepted or ignored with a reason.
CREATE TABLE inbound_events (
    id              TEXT PRIMARY KEY,
    kind            TEXT NOT NULL,
    registry        TEXT NOT NULL,
    source_event_id TEXT,
    repository      TEXT,
    tag             TEXT,
    digest          TEXT,
    media_type      TEXT,
    is_index        BIGINT NOT NULL DEFAULT 0,
    status          TEXT NOT NULL,
    reason          TEXT,
    received_at     BIGINT NOT NULL,
    matched_at      BIGINT,
    matched         BIGINT,
    claimed_until   BIGINT,
    source_key      TEXT UNIQUE,
    dedup_key       TEXT UNIQUE
);
CREATE INDEX inbound_events_pending ON inbound_events (status, matched_at, received_at);
CREATE INDEX inbound_events_channel ON inbound_events (registry, repository, tag);

-- The durable outbox: one row per (event, subscriber).
CREATE TABLE deliveries (
    id              TEXT PRIMARY KEY,
    event_id        TEXT NOT NULL REFERENCES inbound_events (id),
    service_id      TEXT NOT NULL REFERENCES services (id) ON DELETE CASCADE,
    repository      TEXT NOT NULL,
    tag             TEXT NOT NULL,
    digest          TEXT NOT NULL,
    payload         TEXT NOT NULL,
    state           TEXT NOT NULL,
    attempts        BIGINT NOT NULL DEFAULT 0,
    next_attempt_at BIGINT,
    claimed_by      TEXT,
    claimed_until   BIGINT,
    last_status     BIGINT,
    last_error      TEXT,
    manual          BIGINT NOT NULL DEFAULT 0,
    schedule_offset BIGINT NOT NULL DEFAULT 0,
    created_at      BIGINT NOT NULL,
    updated_at      BIGINT NOT NULL,
    UNIQUE (event_id, service_id)
);
CREATE INDEX deliveries_due ON deliveries (state, next_attempt_at);
CREATE INDEX deliveries_service ON deliveries (service_id, created_at);

CREATE TABLE delivery_attempts (
    delivery_id TEXT NOT NULL REFERENCES deliveries (id) ON DELETE CASCADE,
    attempt     BIGINT NOT NULL,
    started_at  BIGINT NOT NULL,
    duration_ms BIGINT NOT NULL,
    status      BIGINT,
    error       TEXT,
    PRIMARY KEY (delivery_id, attempt)
);
