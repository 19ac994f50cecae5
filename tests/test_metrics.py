"""`/metrics` for Prometheus (docs/operations.md#metrics): the figures move as a payment is paid
and posted; only allowed addresses may read them; the shipped alert rules and Grafana dashboard
name only metrics that exist, and the rules parse and fire as documented (promtool)."""

from __future__ import annotations

import asyncio
import json
import os
import re
import shutil
import subprocess
import sys
import textwrap
from pathlib import Path

import httpx
import pytest
from prometheus_client.parser import text_string_to_metric_families
from support.waiting import wait_for

from proxy import metrics
from proxy.alma import RateLimiter

ROOT = Path(__file__).resolve().parent.parent
ALERTS = ROOT / "docs" / "prometheus" / "alerts.yml"
ALERT_TESTS = ROOT / "docs" / "prometheus" / "alerts.test.yml"
DASHBOARD = ROOT / "docs" / "grafana" / "patronpay.json"
PAY_PATH = "/almaws/v1/users/*/fees/*"


def scrape(url: str, **headers: str) -> dict[tuple[str, tuple], float]:
    """Every sample on /metrics: {(name, sorted labels): value}."""
    response = httpx.get(url + "/metrics", headers=headers, timeout=10)
    assert response.status_code == 200, response.text
    assert response.headers["content-type"].startswith("text/plain")
    return {(s.name, tuple(sorted(s.labels.items()))): s.value
            for family in text_string_to_metric_families(response.text)
            for s in family.samples}


def value(samples: dict, name: str, **labels: str) -> float:
    return samples[(name, tuple(sorted(labels.items())))]


def test_a_payment_moves_the_figures_as_it_is_paid_and_posted(deploy):
    d = deploy()
    before = scrape(d.url)
    assert value(before, "patronpay_payments", state="posted", channel="web") == 0
    payment_id, cid = d.checkout(amount="62.00")
    # Alma answers 503 to every payment call until the fault is lifted: the payment waits.
    d.alma.set_faults({"rules": [{"match": {"method": "POST", "path": PAY_PATH},
                                  "mode": "http_5xx", "status": 503}]})
    d.cashnet.complete(cid)

    waiting = wait_for(lambda: (s := scrape(d.url)) and value(
        s, "patronpay_alma_calls_total", operation="pay_fee", outcome="error") > value(
        before, "patronpay_alma_calls_total", operation="pay_fee", outcome="error") and s,
        "a refused payment call on /metrics")
    assert value(waiting, "patronpay_payments", state="paid", channel="web") == 1
    assert value(waiting, "patronpay_unposted_paid_payments") == 1
    assert value(waiting, "patronpay_oldest_unposted_paid_seconds") > 0
    assert value(waiting, "patronpay_notifications_total", outcome="paid") == value(
        before, "patronpay_notifications_total", outcome="paid") + 1

    d.alma.set_faults({})
    d.wait_for_state(payment_id, "posted")
    after = scrape(d.url)
    assert value(after, "patronpay_payments", state="posted", channel="web") == 1
    assert value(after, "patronpay_payments", state="paid", channel="web") == 0
    assert value(after, "patronpay_oldest_unposted_paid_seconds") == 0
    assert value(after, "patronpay_attention_payments") == 0
    assert value(after, "patronpay_paid_to_posted_seconds_count") == value(
        before, "patronpay_paid_to_posted_seconds_count") + 1
    # Two fee shares, each applied once.
    assert value(after, "patronpay_alma_calls_total", operation="pay_fee", outcome="ok") == value(
        before, "patronpay_alma_calls_total", operation="pay_fee", outcome="ok") + 2
    assert value(after, "patronpay_alma_calls_total", operation="list_fees", outcome="ok") > value(
        before, "patronpay_alma_calls_total", operation="list_fees", outcome="ok")
    assert value(after, "patronpay_ledger_readable") == 1


def test_attention_review_and_refused_notifications_show(deploy):
    d = deploy(alma_api_key="sandbox-alma-readonly")
    before = scrape(d.url)
    payment_id, cid = d.checkout(amount="62.00")
    d.cashnet.complete(cid)
    d.wait_for_state(payment_id, "attention")
    wrong = httpx.post(f"{d.url}/cashnet/postback/{'x' * 43}", data={"result": "0"})
    assert wrong.status_code == 404
    after = scrape(d.url)
    assert value(after, "patronpay_attention_payments") == 1
    assert value(after, "patronpay_payments", state="attention", channel="web") == 1
    assert value(after, "patronpay_alma_calls_total", operation="pay_fee", outcome="refused") > value(
        before, "patronpay_alma_calls_total", operation="pay_fee", outcome="refused")
    assert value(after, "patronpay_notifications_total", outcome="postback_bad_token") == value(
        before, "patronpay_notifications_total", outcome="postback_bad_token") + 1


def test_kiosk_sessions_are_counted_per_configured_kiosk(deploy):
    d = deploy(kiosk_keys=f"lobby={'k' * 40},stacks={'s' * 40}")
    samples = scrape(d.url)
    assert value(samples, "patronpay_kiosk_sessions_open", kiosk="lobby") == 0
    assert value(samples, "patronpay_kiosk_last_session_timestamp_seconds", kiosk="stacks") == 0


def test_refused_to_a_caller_outside_the_allowed_networks(deploy):
    d = deploy()
    # Through a trusted web server from outside: the forwarded address decides, not the server's.
    outside = httpx.get(d.url + "/metrics", headers={"X-Forwarded-For": "203.0.113.9"})
    assert outside.status_code == 404
    assert "patronpay_" not in outside.text
    assert httpx.get(d.url + "/metrics").status_code == 200

    closed = deploy(metrics_allowed="")
    assert httpx.get(closed.url + "/metrics").status_code == 404
    elsewhere = deploy(metrics_allowed="192.0.2.0/24")
    assert httpx.get(elsewhere.url + "/metrics").status_code == 404
    assert httpx.get(elsewhere.url + "/metrics",
                     headers={"X-Forwarded-For": "192.0.2.10"}).status_code == 200


def test_alma_calls_are_named_by_operation_never_by_patron():
    assert metrics.alma_operation("GET", "/users/mkowalski", "") == "get_user"
    assert metrics.alma_operation("GET", "/users/a%2Fb/fees", "") == "list_fees"
    assert metrics.alma_operation("GET", "/users/x/fees/77300", "") == "get_fee"
    assert metrics.alma_operation("POST", "/users/x/fees/77300", "pay") == "pay_fee"
    assert metrics.alma_operation("POST", "/users/x", "auth") == "authenticate"
    assert metrics.alma_operation("GET", "/users/x/loans", "") == "other"
    assert metrics.alma_operation("GET", "/conf/general", "") == "other"
    assert [metrics.alma_outcome(s) for s in (200, 204, 400, 429, 503, None)] == [
        "ok", "ok", "refused", "throttled", "error", "unreachable"]


def test_rate_limiter_waits_are_counted():
    waits = metrics.RATE_LIMIT_WAITS._value.get()
    seconds = metrics.RATE_LIMIT_WAIT_SECONDS._value.get()
    limiter = RateLimiter(per_second=20)
    limiter.throttled()  # as after a 429: a gap between calls

    async def two_calls() -> None:
        await limiter.acquire()
        await limiter.acquire()

    asyncio.run(two_calls())
    assert metrics.RATE_LIMIT_WAITS._value.get() == waits + 1
    assert metrics.RATE_LIMIT_WAIT_SECONDS._value.get() > seconds


def test_several_processes_add_up_with_a_multiprocess_folder(tmp_path):
    """Each process counts into PROMETHEUS_MULTIPROC_DIR; a scrape of any one sums them all,
    while the ledger figures come from the ledger itself."""
    env = {**os.environ, "PROMETHEUS_MULTIPROC_DIR": str(tmp_path)}
    count = "from proxy import metrics; metrics.notification('paid')"
    for _ in range(2):
        subprocess.run([sys.executable, "-c", count], env=env, cwd=ROOT, check=True, timeout=60)
    read = textwrap.dedent("""
        from proxy import metrics
        from proxy.ledger.figures import LedgerFigures
        figures = LedgerFigures({("posted", "web"): 3}, 0, None, {}, {})
        print(metrics.exposition(metrics.LedgerCollector(lambda: figures, []))[0].decode())
    """)
    out = subprocess.run([sys.executable, "-c", read], env=env, cwd=ROOT, check=True,
                         timeout=60, capture_output=True, text=True).stdout
    samples = {(s.name, tuple(sorted(s.labels.items()))): s.value
               for family in text_string_to_metric_families(out) for s in family.samples}
    assert value(samples, "patronpay_notifications_total", outcome="paid") == 2
    assert value(samples, "patronpay_payments", state="posted", channel="web") == 3


def named_metrics(text: str) -> set[str]:
    return set(re.findall(r"\bpatronpay_[a-z0-9_]+", text))


def test_every_metric_the_alerts_and_dashboard_name_is_on_metrics(deploy):
    d = deploy(kiosk_keys=f"lobby={'k' * 40}")  # kiosk series exist once a kiosk does
    exposed = {name for name, _ in scrape(d.url)}
    for shipped in (ALERTS, ALERT_TESTS, DASHBOARD):
        named = named_metrics(shipped.read_text())
        assert named, shipped
        assert named - exposed == set(), f"{shipped.name} names metrics /metrics lacks"


def test_the_dashboard_is_grafana_json_with_a_query_in_every_panel():
    dashboard = json.loads(DASHBOARD.read_text())
    assert dashboard["title"] and dashboard["uid"]
    panels = dashboard["panels"]
    assert len(panels) >= 8
    for panel in panels:
        assert panel["targets"], panel["title"]
        for target in panel["targets"]:
            assert "patronpay_" in target["expr"], panel["title"]
            assert target["datasource"]["uid"] == "${datasource}"
    assert [v["name"] for v in dashboard["templating"]["list"]] == ["datasource"]


def promtool() -> str:
    path = shutil.which("promtool")
    if path is None:
        pytest.fail("promtool is missing: install Debian's prometheus (bash .ci/run does)")
    return path


def test_promtool_accepts_the_alert_rules():
    result = subprocess.run([promtool(), "check", "rules", str(ALERTS)],
                            capture_output=True, text=True, timeout=60)
    assert result.returncode == 0, result.stdout + result.stderr
    assert "SUCCESS" in result.stdout


def test_the_alerts_fire_when_they_should(tmp_path):
    """docs/prometheus/alerts.test.yml: attention, an old unposted payment and refused
    notifications each fire, and quiet figures fire nothing."""
    result = subprocess.run([promtool(), "test", "rules", ALERT_TESTS.name],
                            capture_output=True, text=True, timeout=60, cwd=ALERT_TESTS.parent)
    assert result.returncode == 0, result.stdout + result.stderr
