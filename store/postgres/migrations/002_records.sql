-- Records beside the ledger: keys, secrets, settings, links and their
-- scans, widgets, idempotent answers, webhooks, console users, sessions
-- and the admin audit log.
--
-- Each record is kept as the JSON the bbolt file keeps (bytea: byte for
-- byte what was written, NUL escapes included); a column that a query
-- filters or sorts on is copied out of it into a column of its own.
-- Keys are compared byte-wise (COLLATE "C"), as bbolt compares them, so
-- pages and orders match the bbolt backend on any cluster locale.

-- Counters kept in the writing transaction, so a rolled-back write gives
-- its number back, as bbolt's bucket sequences do: 'link_serial',
-- 'delivery_num' (webhook deliveries), 'audit_seq' and 'scan_mark'.
CREATE TABLE counters (
    name  text COLLATE "C" PRIMARY KEY,
    value bigint NOT NULL
);
INSERT INTO counters (name, value) VALUES ('link_serial', 0), ('delivery_num', 0), ('audit_seq', 0), ('scan_mark', 0);

CREATE TABLE api_keys (
    id     text COLLATE "C" PRIMARY KEY,
    record bytea NOT NULL
);

CREATE TABLE secrets (
    name  text COLLATE "C" PRIMARY KEY,
    value bytea NOT NULL
);

CREATE TABLE settings (
    name  text COLLATE "C" PRIMARY KEY,
    value bytea NOT NULL
);

-- Links page in id order (ids sort in creation order), optionally within
-- one source, one campaign or both: each filter has an index ending in the
-- id, so a page reads its own rows in order.
CREATE TABLE links (
    id       text COLLATE "C" PRIMARY KEY,
    source   text COLLATE "C" NOT NULL,
    campaign text COLLATE "C" NOT NULL,
    record   bytea NOT NULL
);
CREATE INDEX links_by_source ON links (source, id);
CREATE INDEX links_by_campaign ON links (campaign, id) WHERE campaign <> '';
CREATE INDEX links_by_campaign_source ON links (campaign, source, id) WHERE campaign <> '';

-- Scan counts apart from the records: a counted scan rewrites a narrow
-- row, not the link's JSON.
CREATE TABLE link_scans (
    id    text COLLATE "C" PRIMARY KEY,
    scans bigint NOT NULL
);

CREATE TABLE link_refs (
    ref bytea PRIMARY KEY,
    id  text COLLATE "C" NOT NULL
);

-- Scans per UTC day: kind is 'a' (all), 's' (source), 'c' (campaign) or
-- 'l' (link); value is the source, campaign or link id ('' for all).
CREATE TABLE scan_days (
    day   date NOT NULL,
    kind  text COLLATE "C" NOT NULL,
    value text COLLATE "C" NOT NULL,
    scans bigint NOT NULL,
    PRIMARY KEY (day, kind, value)
);

CREATE TABLE widgets (
    id     text COLLATE "C" PRIMARY KEY,
    record bytea NOT NULL
);

CREATE TABLE idempotent_answers (
    key    bytea PRIMARY KEY,
    at     timestamptz NOT NULL,
    record bytea NOT NULL
);
CREATE INDEX idempotent_answers_by_at ON idempotent_answers (at);

CREATE TABLE webhook_subscriptions (
    id     text COLLATE "C" PRIMARY KEY,
    record bytea NOT NULL
);

-- Every delivery of a subscription by number; the pending ones are the
-- outbox (a partial index in queue order).
CREATE TABLE webhook_deliveries (
    subscription_id text COLLATE "C" NOT NULL,
    num             bigint NOT NULL,
    pending         boolean NOT NULL,
    record          bytea NOT NULL,
    PRIMARY KEY (subscription_id, num)
);
CREATE INDEX webhook_outbox ON webhook_deliveries (subscription_id, num) WHERE pending;

CREATE TABLE console_users (
    email  text COLLATE "C" PRIMARY KEY,
    record bytea NOT NULL
);

CREATE TABLE console_sessions (
    token_hash bytea PRIMARY KEY,
    record     bytea NOT NULL
);

CREATE TABLE admin_audit (
    seq    bigint PRIMARY KEY,
    record bytea NOT NULL
);
