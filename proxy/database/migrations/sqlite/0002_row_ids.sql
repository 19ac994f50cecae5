-- Explicit row ids where the code named SQLite's hidden rowid, so that the same statements
-- run on PostgreSQL: a guest's counted failures (proxy/throttle.py) and the lines of a bursar
-- export, read back in the order written.
CREATE TABLE auth_failures_2 (
    id   INTEGER PRIMARY KEY,
    key  TEXT NOT NULL,
    at   REAL NOT NULL
);
INSERT INTO auth_failures_2 (id, key, at) SELECT rowid, key, at FROM auth_failures;
DROP TABLE auth_failures;
ALTER TABLE auth_failures_2 RENAME TO auth_failures;
CREATE INDEX auth_failures_by_key ON auth_failures (key, at);

CREATE TABLE bursar_export_lines_2 (
    id            INTEGER PRIMARY KEY,
    export_id     INTEGER NOT NULL REFERENCES bursar_exports (id),
    campus_id     TEXT NOT NULL,
    primary_id    TEXT NOT NULL,
    fee_id        TEXT NOT NULL,
    amount_cents  INTEGER NOT NULL
);
INSERT INTO bursar_export_lines_2 (id, export_id, campus_id, primary_id, fee_id, amount_cents)
    SELECT rowid, export_id, campus_id, primary_id, fee_id, amount_cents FROM bursar_export_lines;
DROP TABLE bursar_export_lines;
ALTER TABLE bursar_export_lines_2 RENAME TO bursar_export_lines;
CREATE INDEX bursar_export_lines_by_export ON bursar_export_lines (export_id);

PRAGMA user_version = 2;
