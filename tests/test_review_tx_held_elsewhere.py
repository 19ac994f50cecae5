"""Review: CashNet's success for one payment carries a transaction number the ledger already
holds for another payment (staff recorded it there by mistake, or the bursar file brought it
first). The notification must still be stored and staff told, not fail on the ledger's
one-payment-per-transaction index (a 500 CashNet retries for ever, the success kept nowhere)."""

from decimal import Decimal

from proxy.db import Database
from proxy.ledger import Ledger, LineRecord
from proxy.notification import parse_message

A, B = "a" * 32, "b" * 32


def make(ledger, payment_id):
    ledger.create_payment(
        payment_id=payment_id, patron_id="mkowalski", patron_name="Maria Kowalski",
        channel="web", session_id="s", amount=Decimal("2.00"), currency="USD",
        custcode="mkowalski", lines=[LineRecord(1, "LIB-OVERDUE", Decimal("2.00"), "Overdue")],
        allocations=[("7730012450004146", "OVERDUEFINE", "Overdue fine", Decimal("2.00"))],
        checkout={"action": "x", "method": "POST", "fields": {}})


def test_a_success_whose_tx_another_payment_holds_is_kept_for_staff(tmp_path):
    ledger = Ledger(Database(tmp_path / "ledger.sqlite3"), lambda: 1_760_000_000.0)
    make(ledger, A)
    make(ledger, B)
    ledger.record_paid(B, cashnet_tx="100001", amount=Decimal("2.00"), note="wrong one",
                       actor="tlee")
    message = parse_message(
        (f"result=0&tx=100001&itemcnt=1&itemcode1=LIB-OVERDUE&amount1=2.00"
         f"&custcode=mkowalski&ref1type1=PAYMENT_ID&ref1val1={A}").encode())
    outcome = ledger.record_notification(message, peer="127.0.0.1", ref_type="PAYMENT_ID")
    assert outcome.payment_id == A
    assert B in ledger.payment(A).review
    assert [n["payment_id"] for n in ledger.notifications(A)] == [A]
    assert ledger.payment(B).cashnet_tx == "100001"
    again = ledger.record_notification(message, peer="127.0.0.1", ref_type="PAYMENT_ID")
    assert again.effect == "duplicate" and ledger.payment(A).state == "pending"
