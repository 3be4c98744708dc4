-- Which address scanned which link lately, shared by every process so an
-- address counts one scan per link per window behind a load balancer too.
-- addr is a keyed hash of the address, never the address. until is when
-- the address may count again; expired rows are deleted now and then.
-- UNLOGGED: no WAL for a row written on every scan; a crash or a failover
-- empties the table, which at worst counts an address twice.
CREATE UNLOGGED TABLE scan_seen (
    link_id text COLLATE "C" NOT NULL,
    addr    bytea NOT NULL,
    until   timestamptz NOT NULL,
    PRIMARY KEY (link_id, addr)
);
