-- Matching reads the outbox by repository (PENDING_TAGS_SQL): its cost must
-- not grow with the deliveries of other images.
CREATE INDEX deliveries_repository ON deliveries (repository, state);
