-- The registry API base URL a subscriber named (subscription.registry.url)
-- belongs to its subscription, not to the hook source that every
-- subscriber of the same registry shares: one subscriber's URL must not
-- decide what another's deliveries are checked against (issue 11,
-- finding 3). Copied from each stored document; the shared column is
-- emptied and no longer read.
ALTER TABLE subscriptions ADD COLUMN registry_url TEXT;
UPDATE subscriptions SET registry_url = (
    SELECT json_extract(services.document, '$.subscription.registry.url')
    FROM services WHERE services.id = subscriptions.service_id
);
UPDATE hook_sources SET api_url = NULL;
