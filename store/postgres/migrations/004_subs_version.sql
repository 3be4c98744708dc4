-- The version of the webhook subscriptions, on the row every write group
-- locks first. A change of a subscription bumps it in its own transaction
-- (locking the row), so a write group reads, with its lock, the exact
-- version of the subscriptions its events must be delivered to, and a
-- process reloads its cached list only when the version moved.
ALTER TABLE chain_head ADD COLUMN subs_version bigint NOT NULL DEFAULT 0;
