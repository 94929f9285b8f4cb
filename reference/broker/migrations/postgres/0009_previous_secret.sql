-- A subscription whose secret is replaced keeps the previous one for a
-- grace period (spec/callbacks.md CB-5: the broker signs with every active
-- secret), so that a CD endpoint can be given the new secret after the
-- broker without a window of 401s (issue 13, item 4). Numbered 0009:
-- 0007 and 0008 are taken by work on other branches.
ALTER TABLE subscriptions ADD COLUMN previous_secret TEXT;
ALTER TABLE subscriptions ADD COLUMN previous_secret_until BIGINT;
