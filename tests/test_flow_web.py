"""The web payment flow end to end over real loopback servers: sign in, fees, pay on the
sandbox CashNet, Alma updated, ledger posted, receipt (issue: web payment flow)."""

from decimal import Decimal

D = Decimal
LOST, OVERDUE, DAMAGED = "7730018830004146", "7730012450004146", "7730020010004146"


def alma_fee(deployment, patron, fee_id):
    fees = deployment.alma.user_state(patron)["fees"]
    return next(f for f in fees if f["id"] == fee_id)


def payments_with(fee, ext_id):
    return [t for t in fee.get("transactions", []) if t.get("external_transaction_id") == ext_id]


def test_partial_payment_spread_over_two_fees_oldest_first(deploy):
    d = deploy()
    patron = d.sign_in_sso("mkowalski")

    fees = patron.get("/api/fees").json()
    assert fees["currency"] == "USD"
    assert (fees["total"], fees["payable_total"]) == ("77.25", "77.25")
    assert [(f["id"], f["balance"], f["payable"]) for f in fees["fees"]] == [
        (LOST, "60.00", True), (OVERDUE, "4.75", True), (DAMAGED, "12.50", True)]
    assert fees["fees"][0]["type"] == {"code": "LOSTITEMREPLACEMENTFEE", "label": "Lost item replacement fee"}

    created, completion = d.pay(patron, amount="62.00")
    payment = created["payment"]
    assert payment["amount"] == "62.00" and payment["state"] == "pending"
    assert payment["allocations"] == [{"fee_id": LOST, "amount": "60.00"},
                                      {"fee_id": OVERDUE, "amount": "2.00"}]
    fields = created["checkout"]["fields"]
    assert (fields["itemcnt"], fields["itemcode1"], fields["amount1"], fields["itemcode2"],
            fields["amount2"]) == ("2", "LIB-LOST", "60.00", "LIB-OVERDUE", "2.00")
    assert fields["ref1type1"] == "PAYMENT_ID" and fields["ref1val1"] == payment["id"]
    assert fields["custcode"] == "mkowalski" and fields["email"] == "mkowalski@example.edu"

    tx = completion["tx"]
    posted = d.wait_for_state(payment["id"], "posted")
    assert posted.cashnet_tx == tx
    assert [(a.fee_id, a.amount, a.state) for a in posted.allocations] == [
        (LOST, D("60.00"), "posted"), (OVERDUE, D("2.00"), "posted")]

    lost, overdue = alma_fee(d, "mkowalski", LOST), alma_fee(d, "mkowalski", OVERDUE)
    assert (lost["balance"], lost["status"]) == (D("0.00"), "CLOSED")
    assert (overdue["balance"], overdue["status"]) == (D("2.75"), "ACTIVE")
    assert [(t["amount"], t["payment_method"]) for t in payments_with(lost, tx)] == [(D("60.00"), "ONLINE")]
    assert [t["amount"] for t in payments_with(overdue, tx)] == [D("2.00")]
    assert alma_fee(d, "mkowalski", DAMAGED)["balance"] == D("12.50")
    assert len(d.alma_calls("POST", "pay")) == 2

    receipt = d.receipt(d.follow_signout(completion))
    assert (receipt["state"], receipt["amount"], receipt["cashnet_tx"]) == ("posted", "62.00", tx)
    assert [(a["fee_id"], a["amount"]) for a in receipt["allocations"]] == [(LOST, "60.00"), (OVERDUE, "2.00")]

    after = patron.get("/api/fees").json()
    assert [(f["id"], f["balance"]) for f in after["fees"]] == [(OVERDUE, "2.75"), (DAMAGED, "12.50")]
