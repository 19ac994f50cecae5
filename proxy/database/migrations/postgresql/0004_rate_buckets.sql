-- The per-session and per-patron request buckets shared by every instance
-- (proxy/shared_buckets.py): one row per bucket, its tokens at `at` (database-clock epoch
-- seconds). A missing row is a full bucket.
CREATE TABLE rate_buckets (
    name    text PRIMARY KEY,
    tokens  double precision NOT NULL,
    at      double precision NOT NULL
);
