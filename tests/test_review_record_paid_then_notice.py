"""Review: staff record a payment as paid with CashNet's transaction number (no notification
had come); CashNet's own notification for that same transaction arrives afterwards. It is the
same money, not a second charge: staff must not be told to refund it."""

from decimal import Decimal

from proxy.db import Database
from proxy.ledger import Ledger, LineRecord
from proxy.notification import parse_message

PID = "9c4e0d2a7b1f48e3a6d5c8b7e2f1a0d9"


def test_cashnet_notifying_a_transaction_staff_recorded_is_not_a_double_charge(tmp_path):
    ledger = Ledger(Database(tmp_path / "ledger.sqlite3"), lambda: 1_760_000_000.0)
    ledger.create_payment(
        payment_id=PID, patron_id="mkowalski", patron_name="Maria Kowalski", channel="web",
        session_id="s", amount=Decimal("62.00"), currency="USD", custcode="mkowalski",
        lines=[LineRecord(1, "LIB-LOST", Decimal("60.00"), "Lost item replacement fee"),
               LineRecord(2, "LIB-OVERDUE", Decimal("2.00"), "Overdue fine")],
        allocations=[("7730018830004146", "LOSTITEMREPLACEMENTFEE", "Lost item",
                      Decimal("60.00")),
                     ("7730012450004146", "OVERDUEFINE", "Overdue fine", Decimal("2.00"))],
        checkout={"action": "x", "method": "POST", "fields": {}})
    ledger.record_paid(PID, cashnet_tx="100001", amount=Decimal("62.00"),
                       note="seen in CashNet", actor="tlee")
    late = parse_message(
        (f"result=0&tx=100001&itemcnt=2&itemcode1=LIB-LOST&amount1=60.00"
         f"&itemcode2=LIB-OVERDUE&amount2=2.00&custcode=mkowalski&batchno=7"
         f"&ref1type1=PAYMENT_ID&ref1val1={PID}").encode())
    outcome = ledger.record_notification(late, peer="127.0.0.1", ref_type="PAYMENT_ID")
    payment = ledger.payment(PID)
    assert outcome.effect != "double_charge"
    assert "refund" not in payment.review
    assert payment.state == "paid" and payment.cashnet_tx == "100001"
    again = ledger.record_notification(late, peer="127.0.0.1", ref_type="PAYMENT_ID")
    assert again.effect == "duplicate" and ledger.payment(PID).review == ""
