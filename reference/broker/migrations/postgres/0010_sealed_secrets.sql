-- Secrets at rest (issue 11, finding 4). Hook sources are looked up by a
-- keyed hash of their token (HMAC-SHA256 under a key derived from the
-- broker's secret key); the token itself is kept only sealed
-- (ChaCha20-Poly1305), for admin reads and managed hooks. A rotated token
-- stays valid until previous_until (finding 5). Rows written before this
-- migration hold plaintext: the broker seals and hashes them at its next
-- start (src/store/sql/keys.rs), in one transaction.
ALTER TABLE hook_sources RENAME COLUMN token TO token_hash;
ALTER TABLE hook_sources ADD COLUMN token_sealed TEXT;
ALTER TABLE hook_sources ADD COLUMN previous_token_hash TEXT;
ALTER TABLE hook_sources ADD COLUMN previous_token_sealed TEXT;
ALTER TABLE hook_sources ADD COLUMN previous_until BIGINT;
CREATE UNIQUE INDEX hook_sources_previous_token ON hook_sources (previous_token_hash);
