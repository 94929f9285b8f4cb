-- The registry API base URL of a hook source (subscription.registry.url),
-- for re-checking tag -> digest before delivering (API-15).
ALTER TABLE hook_sources ADD COLUMN api_url TEXT;
