"""The web payment flow end to end over real loopback servers: sign in, fees, pay on the
sandbox CashNet, Alma updated, ledger posted, receipt (issue: web payment flow)."""

from decimal import Decimal

from support.postgres import BOTH

pytestmark = BOTH  # on SQLite and on PostgreSQL

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

    receipt = d.receipt(d.follow_signout(completion), patron)
    assert (receipt["state"], receipt["amount"], receipt["cashnet_tx"]) == ("posted", "62.00", tx)
    assert [(a["fee_id"], a["amount"]) for a in receipt["allocations"]] == [(LOST, "60.00"), (OVERDUE, "2.00")]

    after = patron.get("/api/fees").json()
    assert [(f["id"], f["balance"]) for f in after["fees"]] == [(OVERDUE, "2.75"), (DAMAGED, "12.50")]


def test_full_payment_closes_every_fee(deploy):
    d = deploy()
    patron = d.sign_in_sso("mkowalski")
    created, completion = d.pay(patron)
    assert created["payment"]["amount"] == "77.25"
    d.wait_for_state(created["payment"]["id"], "posted")
    fees = {f["id"]: f for f in d.alma.user_state("mkowalski")["fees"]}
    for fee_id in (LOST, OVERDUE, DAMAGED):
        assert (fees[fee_id]["balance"], fees[fee_id]["status"]) == (D("0.00"), "CLOSED")
        assert len(payments_with(fees[fee_id], completion["tx"])) == 1
    # The partial payment seeded before (tx 8801937) is untouched.
    assert [t["amount"] for t in payments_with(fees[LOST], "8801937")] == [D("15.00")]
    assert_nothing_owed(patron.get("/api/fees").json())


def assert_nothing_owed(fees: dict) -> None:
    assert {key: fees[key] for key in (
        "currency", "total", "payable_total", "owed_total", "credit_total", "charge_total",
        "inexact_count", "fees", "min_payment")} == {
        "currency": "USD", "total": "0.00", "payable_total": "0.00", "owed_total": "0.00",
        "credit_total": "0.00", "charge_total": "0.00", "inexact_count": 0, "fees": [],
        "min_payment": "1.00"}


def test_guest_signs_in_with_alma_password_and_pays(deploy):
    d = deploy()
    patron = d.sign_in_guest("jsmith", "correct-horse-7")
    session = patron.get("/api/session").json()
    assert session["patron"] == {"id": "jsmith", "name": "Jordan Smith", "first_name": "Jordan",
                                 "account_type": "INTERNAL"}
    assert session["method"] == "alma"
    created, completion = d.pay(patron, amount="5.00")
    assert created["payment"]["allocations"] == [{"fee_id": "7730030010004146", "amount": "5.00"}]
    d.wait_for_state(created["payment"]["id"], "posted")
    fee = alma_fee(d, "jsmith", "7730030010004146")
    assert (fee["balance"], fee["status"]) == (D("5.00"), "ACTIVE")
    auth_calls = d.alma_calls("POST", "auth")
    assert len(auth_calls) == 1 and "password" not in auth_calls[0]["query"]


def test_declined_card_leaves_alma_untouched(deploy):
    d = deploy()
    patron = d.sign_in_sso("mkowalski")
    before = d.alma.user_state("mkowalski")
    created, completion = d.pay(patron, outcome="decline", code=209)
    payment = d.wait_for_state(created["payment"]["id"], "declined")
    assert payment.cashnet_tx is None and [a.state for a in payment.allocations] == ["planned"] * 3
    assert d.alma.user_state("mkowalski") == before
    assert d.alma_calls("POST") == []
    receipt = d.receipt(d.follow_signout(completion), patron)
    assert (receipt["state"], receipt["final"]) == ("declined", True)


def test_cancel_on_cashnet(deploy):
    d = deploy()
    patron = d.sign_in_sso("mkowalski")
    created, completion = d.pay(patron, outcome="cancel")
    payment = d.wait_for_state(created["payment"]["id"], "cancelled")
    assert payment.reason == "CashNet result 902"
    assert d.alma_calls("POST") == []


def test_patron_with_no_fees(deploy):
    d = deploy()
    patron = d.sign_in_sso("pchen")
    assert_nothing_owed(patron.get("/api/fees").json())
    refused = patron.post("/api/payments", json={})
    assert refused.status_code == 422
    assert refused.json()["error"]["code"] == "nothing_to_pay"
    assert d.ledger.find_payments() == []


def test_email_style_primary_id(deploy):
    d = deploy()
    patron = d.sign_in_sso("ana.rivera@example.edu")
    created, completion = d.pay(patron)
    assert created["checkout"]["fields"]["custcode"] == "ana.rivera@example.edu"
    d.wait_for_state(created["payment"]["id"], "posted")
    fees = d.alma.user_state("ana.rivera@example.edu")["fees"]
    assert {f["id"]: (f["balance"], f["status"]) for f in fees} == {
        "7730050010004146": (D("0.00"), "CLOSED"), "7730050020004146": (D("0.00"), "CLOSED")}
    paths = {call["path"] for call in d.alma_calls("POST", "pay")}
    assert paths == {"/almaws/v1/users/ana.rivera@example.edu/fees/7730050010004146",
                     "/almaws/v1/users/ana.rivera@example.edu/fees/7730050020004146"}


def test_fee_over_a_thousand_dollars(deploy):
    d = deploy()
    patron = d.sign_in_sso("tlee")
    created, completion = d.pay(patron)
    assert created["checkout"]["fields"]["amount1"] == "1250.00"
    d.wait_for_state(created["payment"]["id"], "posted")
    fee = alma_fee(d, "tlee", "7730060010004146")
    assert (fee["balance"], fee["status"]) == (D("0.00"), "CLOSED")
    assert d.alma_calls("POST", "pay")[0]["query"]["amount"] == ["1250.00"]


def test_credit_is_shown_but_not_paid(deploy):
    d = deploy()
    patron = d.sign_in_sso("dokafor")
    fees = patron.get("/api/fees").json()
    assert (fees["total"], fees["payable_total"]) == ("3.00", "8.00")
    assert [(f["type"]["code"], f["balance"], f["payable"]) for f in fees["fees"]] == [
        ("CREDIT", "-5.00", False), ("OVERDUEFINE", "8.00", True)]
    created, _ = d.pay(patron)
    assert created["payment"]["allocations"] == [{"fee_id": "7730040020004146", "amount": "8.00"}]


def test_library_restricted_fee_is_refused_by_alma_and_needs_staff(deploy):
    d = deploy()
    patron = d.sign_in_sso("rgarcia")
    created, completion = d.pay(patron)
    payment = d.wait_for_state(created["payment"]["id"], "attention")
    states = {a.fee_id: (a.state, a.unapplied) for a in payment.allocations}
    assert states == {"7730070010004146": ("failed", D("6.00")),
                      "7730070020004146": ("posted", D("0.00"))}
    assert payment.reason.startswith("6.00 not applied in Alma: Alma refused the payment")


def test_own_payment_only(deploy):
    d = deploy()
    maria = d.sign_in_sso("mkowalski")
    created = d.start_payment(maria)
    payment_id = created["payment"]["id"]
    assert maria.get(f"/api/payments/{payment_id}").json()["payment"]["state"] == "pending"
    thomas = d.sign_in_sso("tlee")
    assert thomas.get(f"/api/payments/{payment_id}").status_code == 404
    elsewhere = thomas.get(f"/pay/{payment_id}")
    assert (elsewhere.status_code, elsewhere.headers["location"]) == (303, "/?error=payment_not_found")


def test_server_rendered_hand_off_page(deploy):
    d = deploy()
    patron = d.sign_in_sso("mkowalski")
    created = d.start_payment(patron, amount="10.00")
    page = patron.get(f"/pay/{created['payment']['id']}")
    assert page.status_code == 200
    assert f'action="{d.settings.cashnet_checkout_url}"' in page.text
    assert f'name="ref1val1" value="{created["payment"]["id"]}"' in page.text
    assert 'name="amount1" value="10.00"' in page.text
    assert "<script src=\"/pay.js\"></script>" in page.text and "<script>" not in page.text
    assert page.headers["cache-control"] == "no-store"
