"""Posting settings for tests: fast retries (production waits minutes between attempts)."""

FAST_POSTING = {
    "posting_backoff_cap_seconds": "0.2",
    "alma_recheck_seconds": "2.5",
    "alma_read_timeout": "2",
}
