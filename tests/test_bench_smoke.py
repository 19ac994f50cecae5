"""The benchmarks run end to end: `python -m bench` with the smallest configuration (the hidden
`--profile smoke`) starts the real processes, prints its tables and writes JSON with every
figure it promises. Only the shape is checked here, never a timing
(docs/architecture.md#how-we-test)."""

import json
import subprocess
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parent.parent
SUMMARY = {"n", "p50_ms", "p99_ms", "mean_ms", "max_ms"}
LOAD = {"concurrency", "window_s", "requests", "non_2xx", "errors", "rps",
        "load_generator_cpu_s", "server_cpu_ms_per_request", "server_rss_mib"} | SUMMARY


# The benchmarks that need Chromium run in the browser test below.
WITHOUT_BROWSER = "fees,roundtrip,calls,throughput,startup,posting_load,notify_rate"
IN_BROWSER = "kiosk,page"


def run_bench(tmp_path: Path, names: str) -> tuple[str, dict]:
    """`python -m bench --profile smoke --only NAMES`: its printed tables and its JSON."""
    out = tmp_path / "bench.json"
    done = subprocess.run([sys.executable, "-m", "bench", "--profile", "smoke", "--only", names,
                           "--json", str(out)],
                          cwd=REPO, capture_output=True, text=True, timeout=180)
    assert done.returncode == 0, done.stderr[-3000:]
    return done.stdout, json.loads(out.read_text())


def test_every_benchmark_runs_and_reports_its_figures(tmp_path):
    stdout, report = run_bench(tmp_path, WITHOUT_BROWSER)
    for title in ("### 1. Fees page", "### 2. Payment round trip", "### 3. Alma calls",
                  "### 4. End-to-end payments", "### 5. Start-up", "### 6. Posting while",
                  "### 9. The notification"):
        assert title in stdout
    assert report["errors"] == {}
    assert set(report) == {"profile", "machine", "results", "errors",
                           "seconds"}
    assert report["profile"] == "smoke"
    assert {"cpus", "cpu_model", "python", "system", "load_before", "load_after"} <= set(report["machine"])
    results = report["results"]
    assert list(results) == WITHOUT_BROWSER.split(",")

    fees = results["fees"]
    assert [(r["alma_latency_ms"], r["concurrency"]) for r in fees["rows"]] == [(0, 2)]
    row = fees["rows"][0]
    assert set(row) == {"alma_latency_ms", "concurrency", "baseline", "proxy", "proxy_capped",
                        "ratios"}
    for target in ("baseline", "proxy", "proxy_capped"):
        assert set(row[target]) == LOAD
        assert row[target]["errors"] == 0 and row[target]["non_2xx"] == 0
    assert set(row["ratios"]) == {"rps", "p50", "p99", "cpu_per_request"}

    roundtrip = results["roundtrip"]
    assert set(roundtrip["cases"]) == {"one_fee", "five_fees"}
    for case in roundtrip["cases"].values():
        assert set(case) == {"fees", "payments", "notification_to_posted", "handler_response"}
        assert set(case["notification_to_posted"]) == SUMMARY
        assert case["notification_to_posted"]["n"] == case["handler_response"]["n"] == 1

    calls = results["calls"]["cases"]
    assert list(calls) == ["one_fee", "five_fees", "partial", "retry_after_5xx", "applied_then_5xx"]
    for case in calls.values():
        assert set(case) == {"fees_paid", "total", "floor", "by_phase", "by_kind",
                             "phases", "posting_seconds"}
        assert list(case["by_phase"]) == ["sign_in", "fees_page", "reload", "create_payment",
                                          "posting"]
        assert sum(case["by_phase"].values()) == case["total"] == sum(case["by_kind"].values())
        assert case["floor"] == 3 + case["fees_paid"]
    assert [calls[c]["fees_paid"] for c in calls] == [1, 5, 2, 1, 1]

    throughput = results["throughput"]["rows"]
    assert [(r["proxy"], r["alma_latency_ms"]) for r in throughput] == [("uncapped", 0), ("capped", 0)]
    for row in throughput:
        assert set(row) == {"proxy", "alma_latency_ms", "proxy_rss_mib_idle", "concurrency",
                            "payments", "payments_per_s", "create_to_posted", "stages",
                            "ledger_paid_to_posted", "handler_from_access_log",
                            "proxy_cpu_utilisation", "sandbox_cpu_utilisation",
                            "load_generator_cpu_utilisation", "proxy_rss_mib"}
        assert set(row["stages"]) == {"create_payment", "hand_off", "notification_delivery",
                                      "notified_to_posted_seen"}
        assert set(row["proxy_rss_mib"]) == {"max_sampled", "after", "peak_vmhwm"}

    startup = results["startup"]
    assert set(startup) == {"runs", "to_ready", "import_only", "idle_rss_mib"}
    assert startup["runs"] == 1 and startup["to_ready"]["n"] == 1

    posting = results["posting_load"]
    assert {"quiet", "under_load", "pages_under_load", "patrons_reloading"} <= set(posting)
    assert posting["quiet"]["n"] == posting["under_load"]["n"] == 1

    notify = results["notify_rate"]["rows"]
    assert [row["proxy"] for row in notify] == ["uncapped", "capped"]
    for row in notify:
        assert set(row) == {"proxy", "rate_per_s", "notifications", "sent_over_s",
                            "answer_from_schedule", "handler_from_access_log",
                            "proxy_cpu_utilisation", "posted_by_end", "posted"}
        assert row["notifications"] == row["answer_from_schedule"]["n"] == 4


@pytest.mark.browser
def test_the_browser_benchmarks_run_and_report_their_figures(tmp_path):
    stdout, report = run_bench(tmp_path, IN_BROWSER)
    assert "### 7. The kiosk" in stdout and "### 8. The patron's fees page" in stdout
    assert report["errors"] == {}
    results = report["results"]
    assert list(results) == IN_BROWSER.split(",")

    kiosk = results["kiosk"]["rows"]
    assert [row["alma_latency_ms"] for row in kiosk] == [0]
    assert set(kiosk[0]) == {"alma_latency_ms", "scans", "scan_to_fees_shown",
                             "scan_to_fees_in_page", "alma_calls_per_scan", "target_ms"}
    assert kiosk[0]["scan_to_fees_shown"]["n"] == 1
    assert set(kiosk[0]["scan_to_fees_shown"]) == SUMMARY

    page = results["page"]["rows"]
    assert [row["alma_latency_ms"] for row in page] == [0]
    for visit in ("first", "reload"):
        figures = page[0][visit]
        assert set(figures) == {"to_fees_shown", "bytes_max", "bytes_min", "body_bytes_max",
                                "requests", "failed_requests", "third_party_requests",
                                "third_party_hosts"}
        assert figures["to_fees_shown"]["n"] == 1 and figures["bytes_max"] > 0

