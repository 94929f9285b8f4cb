-- Hooks the broker created or adopted in registries on subscribers' behalf
-- (API-18): one per registry scope. Kept so that a hook whose last
-- subscription goes away while the broker is down is still deleted later.
CREATE TABLE managed_hooks (
    registry TEXT NOT NULL,
    scope TEXT NOT NULL,
    kind TEXT NOT NULL,
    path TEXT NOT NULL,
    url TEXT NOT NULL,
    updated_at BIGINT NOT NULL,
    PRIMARY KEY (registry, scope)
);
