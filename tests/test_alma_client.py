"""The Alma client's promises to its callers: every failure becomes an exception they can act
on — including answers no sandbox knob produces — over real loopback HTTP."""

import asyncio
from decimal import Decimal

import pytest
from support.alma import canned_alma, error_body

from proxy.alma import (
    AlmaClient,
    AlmaConfigError,
    AlmaFeeNotFound,
    AlmaOutcomeUnknown,
    AlmaUnavailable,
    AlmaUserNotFound,
)


def call(url: str, method: str):
    async def run():
        client = AlmaClient(url + "/almaws/v1", "key")
        try:
            if method == "pay":
                return await client.pay_fee("p", "1", Decimal("1.00"), method="ONLINE",
                                            external_transaction_id="9")
            return await client.list_fees("p")
        finally:
            await client.aclose()
    return asyncio.run(run())


@pytest.mark.parametrize("shape", ["A", "B", "C"])
def test_error_shapes_all_map(shape):
    with canned_alma(400, error_body("401861", shape)) as s, pytest.raises(AlmaUserNotFound):
        call(s.url, "list")


def test_fee_not_found_and_unknown_key():
    with canned_alma(400, error_body("401665")) as s, pytest.raises(AlmaFeeNotFound):
        call(s.url, "pay")
    with canned_alma(400, b"Invalid API Key", {"content-type": "text/plain"}) as s, \
            pytest.raises(AlmaConfigError):
        call(s.url, "list")


def test_corrupt_body_is_unavailable_for_a_read_and_unknown_for_a_payment():
    headers = {"content-type": "application/json", "content-encoding": "gzip"}
    with canned_alma(200, b"this is not gzip", headers) as s:
        with pytest.raises(AlmaUnavailable):
            call(s.url, "list")
        with pytest.raises(AlmaOutcomeUnknown) as unknown:
            call(s.url, "pay")
        assert unknown.value.in_flight is True


def test_payment_answered_with_5xx_or_garbage_is_an_unknown_outcome():
    with canned_alma(502, b"bad gateway", {"content-type": "text/plain"}) as s, \
            pytest.raises(AlmaOutcomeUnknown) as caught:
        call(s.url, "pay")
    assert caught.value.in_flight is False
    with canned_alma(200, b"<html>login page</html>", {"content-type": "text/html"}) as s, \
            pytest.raises(AlmaOutcomeUnknown):
        call(s.url, "pay")


def test_nothing_listening_means_not_sent():
    with pytest.raises(AlmaUnavailable):
        call("http://127.0.0.1:9", "pay")


# --- issue 12, item 10: XML error bodies and throttling sent with HTTP 400 -------------------

SANDBOX_KEY = "sandbox-alma-key"


def with_sandbox(alma_server, action):
    """Run `action(client)` with a client of the sandbox Alma; its result."""
    async def run():
        client = AlmaClient(alma_server.url + "/almaws/v1", SANDBOX_KEY)
        try:
            return await action(client)
        finally:
            await client.aclose()
    return asyncio.run(run())


def test_xml_error_bodies_mean_what_json_ones_mean(alma_server, alma):
    alma.set_faults({"error_style": "xml"})
    with pytest.raises(AlmaUserNotFound) as caught:
        with_sandbox(alma_server, lambda c: c.get_user("nosuchpatron"))
    assert caught.value.code == "401861" and caught.value.tracking_id.startswith("E01-")
    with pytest.raises(AlmaUserNotFound):
        with_sandbox(alma_server, lambda c: c.list_fees("nosuchpatron"))
    with pytest.raises(AlmaFeeNotFound):
        with_sandbox(alma_server, lambda c: c.get_fee("mkowalski", "1234"))
    assert [r["status"] for r in alma.requests()] == [400, 400, 400]  # each asked once


def test_an_xml_body_declaring_entities_is_refused_not_expanded():
    laughs = (b'<?xml version="1.0"?><!DOCTYPE r [<!ENTITY a "aaaaaaaaaa">'
              b'<!ENTITY b "&a;&a;&a;&a;&a;&a;&a;&a;&a;&a;">]>'
              b"<web_service_result><errorList><error><errorCode>&b;</errorCode>"
              b"</error></errorList></web_service_result>")
    with (canned_alma(400, laughs, {"content-type": "application/xml"}) as s,
          pytest.raises(AlmaUnavailable, match="unexpected answer")):
        call(s.url, "list")


def test_per_second_threshold_sent_with_400_is_throttling_and_retried(alma_server, alma):
    alma.set_faults({"per_second_limit": 1, "throttle_status": 400})
    both = with_sandbox(alma_server, lambda c: asyncio.gather(
        c.list_fees("mkowalski"), c.list_fees("jsmith")))
    assert [len(fees["fee"]) for fees in both] == [3, 2]
    log = [(r["status"], r["fault"]) for r in alma.requests()]
    assert (400, "per_second_limit") in log  # refused with 400, then asked again
    assert log.count((200, None)) == 2


def test_a_payment_throttled_with_400_is_an_unknown_outcome_never_an_error(alma_server, alma):
    alma.set_faults({"rules": [{"match": {"method": "POST", "path": "*/fees/*"},
                                "mode": "alma_error", "code": "PER_SECOND_THRESHOLD",
                                "status": 400}]})
    with pytest.raises(AlmaOutcomeUnknown) as caught:
        with_sandbox(alma_server, lambda c: c.pay_fee(
            "mkowalski", "7730012450004146", Decimal("1.00"), method="ONLINE",
            external_transaction_id="9"))
    assert (caught.value.in_flight, caught.value.status) == (False, 400)
