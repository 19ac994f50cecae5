"""`/cashnet/return` is open to anyone (the browser comes back cross-site with no session), so
it writes at most one short note per payment and an address that floods it is told to wait
(docs/cashnet.md#the-browser-return), over loopback."""

from __future__ import annotations

import httpx

from proxy.web.cashnet import RETURN_BURST


def claim(d, payment_id, tx="100001", result="0", client=httpx):
    return client.post(f"{d.url}/cashnet/return", data={
        "result": result, "tx": tx, "ref1type1": "PAYMENT_ID", "ref1val1": payment_id})


def claims(d, payment_id):
    return [e for e in d.ledger.events(payment_id) if e["kind"] == "return_claims_success"]


def test_many_claims_of_success_write_one_note(deploy):
    d = deploy()
    payment_id, _ = d.checkout()
    events_before = len(d.ledger.events(payment_id))
    for number in range(10):
        assert claim(d, payment_id, tx=str(100001 + number)).status_code == 303
    assert [c["detail"] for c in claims(d, payment_id)] == [{"result": "0", "tx": "100001"}]
    assert len(d.ledger.events(payment_id)) == events_before + 1
    assert d.ledger.payment(payment_id).state == "pending"


def test_a_long_or_malformed_tx_is_not_written(deploy):
    d = deploy()
    payment_id, _ = d.checkout()
    for tx in ("9" * 60000, "1; DROP", "", "١٢٣"):
        assert claim(d, payment_id, tx=tx).status_code == 303
    assert claim(d, payment_id, result="0" * 5000).status_code == 303
    assert claims(d, payment_id) == []
    assert claim(d, payment_id).status_code == 303  # a real one still counts, once
    assert len(claims(d, payment_id)) == 1


def test_no_claim_for_a_payment_that_is_not_pending(deploy):
    d = deploy()
    payment_id, cid = d.checkout()
    d.cashnet.complete(cid)
    d.wait_for_state(payment_id, "posted")
    assert claim(d, payment_id).status_code == 303
    assert claims(d, payment_id) == []


def test_an_address_that_floods_the_return_is_told_to_wait(deploy):
    d = deploy()
    payment_id, _ = d.checkout()
    with httpx.Client() as flood:
        answers = [claim(d, payment_id, client=flood) for _ in range(RETURN_BURST + 5)]
    statuses = [a.status_code for a in answers]
    assert statuses[:RETURN_BURST] == [303] * RETURN_BURST
    assert set(statuses[RETURN_BURST:]) == {429}
    assert int(answers[-1].headers["retry-after"]) >= 1
    transport = httpx.HTTPTransport(local_address="127.0.0.2")
    with httpx.Client(transport=transport) as neighbour:  # another address is not held up
        assert claim(d, payment_id, client=neighbour).status_code == 303
    assert len(claims(d, payment_id)) == 1
