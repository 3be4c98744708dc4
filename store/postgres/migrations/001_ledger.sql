-- The ledger: the hash chain, contacts, identities and what dedupes input.
-- Byte strings are bytea and compare bytewise, as bbolt keys do, so lists
-- come back in the order the bbolt store gives them.

-- The last event of the chain. Every write transaction locks this one row
-- first, so processes append one at a time and the chain never forks.
CREATE TABLE chain_head (
	id   integer PRIMARY KEY CHECK (id = 1),
	seq  bigint  NOT NULL,
	hash bytea   NOT NULL
);
INSERT INTO chain_head (id, seq, hash) VALUES (1, 0, decode(repeat('00', 32), 'hex'));

-- canonical holds the hashed bytes (they include the previous hash);
-- sealed the encrypted personal data erasure may remove (NULL then).
CREATE TABLE events (
	seq       bigint PRIMARY KEY,
	canonical bytea  NOT NULL,
	hash      bytea  NOT NULL,
	sealed    bytea
);

-- One row per contact keyed by its subject (a keyed hash of the number).
-- key and state are NULL once erased; suppression outlives erasure. A row
-- with neither is deleted. Updated on every event of the contact: room is
-- left on each page so the update stays on it (a HOT update, no index write).
CREATE TABLE contacts (
	subject     bytea PRIMARY KEY,
	key         bytea,
	state       bytea,
	suppression bytea
) WITH (fillfactor = 80);

-- The events of each subject, for erasure and a contact's history.
CREATE TABLE contact_events (
	subject bytea  NOT NULL,
	seq     bigint NOT NULL,
	PRIMARY KEY (subject, seq)
);

CREATE TABLE notices (
	sum  bytea PRIMARY KEY,
	text text  NOT NULL
);

-- WhatsApp message ids already processed → the event they produced.
CREATE TABLE wa_messages (
	id  text   PRIMARY KEY,
	seq bigint NOT NULL
);

-- Identities other than the number (keyed hashes) → their contact, and
-- how they are tied to it (a byte: 'o' own, 'l' linked).
CREATE TABLE identities (
	id      bytea    PRIMARY KEY,
	subject bytea    NOT NULL,
	kind    smallint NOT NULL
);
CREATE INDEX identities_subject ON identities (subject, id);

-- Contacts merged into another (subject): their events belong to it.
CREATE TABLE merged (
	subject bytea NOT NULL,
	other   bytea NOT NULL,
	PRIMARY KEY (subject, other)
);

-- Hashed import refs → the event they produced, so a re-sent import
-- appends nothing twice.
CREATE TABLE import_refs (
	ref bytea  PRIMARY KEY,
	seq bigint NOT NULL
);
