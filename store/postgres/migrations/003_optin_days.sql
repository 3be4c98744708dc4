-- Confirmed opt-ins per day, counted as they are written (as scan_days
-- counts scans). The backfill's progress and the first day with daily scan
-- counts live in counters under day_counts_upto, day_counts_done and
-- scan_days_began, absent until set.
CREATE TABLE optin_days (
    day    date NOT NULL,
    kind   text COLLATE "C" NOT NULL,
    value  text COLLATE "C" NOT NULL,
    optins bigint NOT NULL,
    PRIMARY KEY (day, kind, value)
);
