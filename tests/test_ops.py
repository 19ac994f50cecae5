"""What campus IT watches: health endpoints, JSON-lines logs without secrets, start-up errors."""

import json
import logging
import subprocess
import sys

import httpx

from proxy.logs import JsonFormatter, redact_path


def test_health_and_readiness(deploy):
    d = deploy()
    assert httpx.get(d.url + "/healthz").json() == {"status": "ok"}
    assert httpx.get(d.url + "/readyz").json() == {"status": "ready", "ledger": "writable"}


def test_log_lines_are_json_with_the_extra_fields():
    record = logging.LogRecord("patronpay.posting", logging.INFO, __file__, 1, "allocation posted",
                               (), None)
    record.payment_id = "9c4e0d2a7b1f48e3a6d5c8b7e2f1a0d9"
    record.event = "allocation_posted"
    line = json.loads(JsonFormatter().format(record))
    assert (line["level"], line["logger"], line["message"]) == ("info", "patronpay.posting", "allocation posted")
    assert (line["payment_id"], line["event"]) == ("9c4e0d2a7b1f48e3a6d5c8b7e2f1a0d9", "allocation_posted")
    assert line["time"].endswith("Z")


def test_notification_token_is_redacted_from_paths():
    assert redact_path("/cashnet/postback/s3cr3t-token-value") == "/cashnet/postback/***"
    assert redact_path("/api/receipts/ImFiYyI.sig-nature") == "/api/receipts/***"
    assert redact_path("/api/fees") == "/api/fees"


def test_missing_setting_stops_start_up_with_one_line(tmp_path):
    result = subprocess.run([sys.executable, "-m", "patronpay", "serve"], capture_output=True,
                            text=True, timeout=60, env={"PATH": "/usr/bin:/bin", "HOME": str(tmp_path)})
    assert result.returncode == 2
    assert result.stderr.strip().splitlines() == [
        "patronpay: configuration error: PATRONPAY_PUBLIC_URL is required: The URL patrons and "
        "CashNet use, e.g. `https://pay.library.example.edu`."]


def test_sandbox_command_refuses_a_public_address():
    result = subprocess.run([sys.executable, "-m", "patronpay", "sandbox", "--host", "0.0.0.0"],  # noqa: S104
                            capture_output=True, text=True, timeout=60)
    assert result.returncode != 0
    assert "refusing to serve the sandbox on 0.0.0.0" in result.stderr
