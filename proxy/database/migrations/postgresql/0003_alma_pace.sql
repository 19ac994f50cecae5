-- The shared schedule of Alma calls (proxy/alma_budget.py): one row per Alma institution, the
-- database-clock time (epoch seconds) of its next free call slot.
CREATE TABLE alma_pace (
    name     text PRIMARY KEY,
    next_at  double precision NOT NULL
);
