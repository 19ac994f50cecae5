"""The CashNet notification checks are one ordered, named list, each with what its failure does:
arrivals are refused on the token before the address, and a success is compared with the
hand-off conflicting fields first, then the line count and the lines (each stopping the
payment, with a reason naming the cause), then the custcode (review only)."""

import ipaddress
import re
from decimal import Decimal
from pathlib import Path
from types import SimpleNamespace

import pytest

from proxy.cashnet_checks import (
    CHECKS,
    ECHO_CAUSES,
    Arrival,
    Check,
    Echo,
    Outcome,
    Stage,
    Verdict,
    echo_mismatch,
    echo_review,
    judge,
    refusal,
)
from proxy.notification import StoredLine, parse_message

TOKEN = "t" * 40
STORED = [StoredLine("LIB-OVERDUE", Decimal("12.50")), StoredLine("LIB-LOST", Decimal("1080.00"))]
MATCHING = ("result=0&tx=1&custcode=0012345678&itemcnt=2&itemcode1=LIB-OVERDUE&amount1=12.50"
            "&itemcode2=LIB-LOST&amount2=1080.00")


def test_the_checks_in_order_with_their_outcomes():
    assert [(check.name, check.outcome) for check in CHECKS] == [
        ("url_token", Outcome.REFUSE),
        ("source_address", Outcome.REFUSE),
        ("repeated_tx", Outcome.REVIEW),
        ("settled_without_tx", Outcome.REVIEW),
        ("without_tx", Outcome.ATTENTION),
        ("double_charge", Outcome.REVIEW),
        ("consistent_fields", Outcome.ATTENTION),
        ("line_count", Outcome.ATTENTION),
        ("lines", Outcome.ATTENTION),
        ("custcode", Outcome.REVIEW),
    ]


def arrival(token=TOKEN, peer="192.0.2.10", **settings):
    """The settings the arrival checks read, with their defaults."""
    configured = SimpleNamespace(**({"cashnet_postback_token": TOKEN,
                                     "cashnet_postback_token_previous": "",
                                     "cashnet_allowed_ips": ()} | settings))
    return Arrival(token, peer, configured)


def test_a_wrong_token_is_refused_first_even_from_a_disallowed_address():
    allowed = (ipaddress.ip_network("198.51.100.0/24"),)
    refused = refusal(arrival(token="x" * 40, cashnet_allowed_ips=allowed))
    assert (refused.status, refused.code, refused.event) == (404, "not_found",
                                                             "postback_bad_token")


def test_the_previous_token_still_works_while_it_is_configured():
    previous = "p" * 40
    assert refusal(arrival(token=previous)) is not None
    assert refusal(arrival(token=previous, cashnet_postback_token_previous=previous)) is None
    # An empty previous token never matches an empty token in the URL.
    assert refusal(arrival(token="")) is not None


def test_the_source_address_is_checked_only_when_a_list_is_configured():
    assert refusal(arrival()) is None
    allowed = (ipaddress.ip_network("198.51.100.0/24"),)
    refused = refusal(arrival(cashnet_allowed_ips=allowed))
    assert (refused.status, refused.code, refused.event) == (403, "forbidden_source",
                                                             "postback_bad_source")
    assert refusal(arrival(peer="198.51.100.7", cashnet_allowed_ips=allowed)) is None


def mismatch(body: str, stored=STORED, custcode="0012345678") -> str:
    return echo_mismatch(Echo(parse_message(body.encode()), stored, custcode))


@pytest.mark.parametrize("body, reason", [
    (MATCHING, ""),
    (MATCHING + "&itemcnt=3", "conflicting values for itemcnt"),
    (MATCHING.replace("itemcnt=2", "itemcnt=1"), "line count mismatch: 1 lines echoed, 2 issued"),
    (MATCHING.replace("itemcode2=LIB-LOST", "itemcode2=LIB-OTHER"),
     "item code mismatch: line 2: item code 'LIB-OTHER', issued 'LIB-LOST'"),
    (MATCHING.replace("amount1=12.50", "amount1=1.25"),
     "amount mismatch: line 1: amount 1.25, issued 12.50"),
    (MATCHING.replace("amount1=12.50", "amount1=twelve"),
     "amount mismatch: line 1: amount unreadable, issued 12.50"),
    (MATCHING.replace("custcode=0012345678", "custcode=99"), ""),  # review, not attention
    (MATCHING + "&lname=Rivera&LNAME=Rivera-Diaz&custcode=0012345678", ""),
    # The first failing check speaks: here the conflict, not the count or the custcode.
    (MATCHING.replace("itemcnt=2", "itemcnt=1").replace("custcode=0012345678", "custcode=9")
     + "&tx=2", "conflicting values for tx"),
])
def test_the_first_failing_echo_check_gives_the_reason(body, reason):
    assert mismatch(body) == reason


def test_a_refuse_check_must_say_what_the_sender_gets():
    with pytest.raises(ValueError, match="refusal"):
        Check("new_check", Outcome.REFUSE, lambda arrival: "")
    with pytest.raises(ValueError, match="refusal"):
        Check("new_check", Outcome.ATTENTION, lambda echo: "", CHECKS[0].refusal)


@pytest.mark.parametrize("body, reason", [
    (MATCHING, ""),
    (MATCHING.replace("custcode=0012345678", "custcode=+0012345678+"), ""),
    (MATCHING.replace("custcode=0012345678", "custcode=99"), "custcode '99' echoed, '0012345678' issued"),
    (MATCHING + "&CUSTCODE=99", "custcode '99' echoed, '0012345678' issued"),
])
def test_a_custcode_that_still_differs_is_for_review(body, reason):
    assert echo_review(Echo(parse_message(body.encode()), STORED, "0012345678")) == reason


def test_every_attention_reason_names_one_of_the_causes():
    bodies = [MATCHING + "&tx=2", MATCHING.replace("itemcnt=2", "itemcnt=1"),
              MATCHING.replace("itemcode2=LIB-LOST", "itemcode2=X"),
              MATCHING.replace("amount1=12.50", "amount1=1.25")]
    reasons = [mismatch(body) for body in bodies]
    assert [r.startswith(ECHO_CAUSES) for r in reasons] == [True] * 4
    assert [r.startswith("amount mismatch") for r in reasons] == [False, False, False, True]


def verdict(body: str, **payment):
    """What the checks make of a success for a payment as stored (`state`, `settled_by`,
    `earlier`)."""
    return judge(Echo(parse_message(body.encode()), STORED, "0012345678", **payment))


def test_a_success_for_a_payment_already_settled_is_kept_for_review_not_applied():
    no_tx = verdict(MATCHING.replace("&tx=1", ""), state="posted", settled_by="7")
    assert (no_tx.stop.name, no_tx.stop.outcome, no_tx.stop.kept.effect) == (
        "settled_without_tx", Outcome.REVIEW, "recorded")
    assert no_tx.reason == ("CashNet sent a success without a transaction number for a "
                            "payment already posted")
    second = verdict(MATCHING, state="paid", settled_by="7")
    assert (second.stop.name, second.stop.kept.effect) == ("double_charge", "double_charge")
    assert second.reason == ("second CashNet success (transaction 1) for a payment already "
                             "settled by 7: refund")
    # Still waiting: a success without a tx stops at attention; with one, it goes on.
    waiting = verdict(MATCHING.replace("&tx=1", ""), state="declined")
    assert (waiting.stop.name, waiting.reason) == ("without_tx", "success without a CashNet "
                                                                 "transaction number")
    assert verdict(MATCHING, state="expired") == Verdict()


def test_a_repeated_transaction_changes_nothing_and_is_reviewed_only_when_it_differs():
    first = parse_message(MATCHING.encode()).recordable()
    assert verdict(MATCHING, state="paid", settled_by="1", earlier=first) == Verdict()
    changed = verdict(MATCHING.replace("amount1=12.50", "amount1=1.25"), state="paid",
                      settled_by="1", earlier=first)
    assert changed == Verdict(review="CashNet sent transaction 1 twice with different contents")


def test_a_differing_custcode_lets_the_success_go_on_with_a_review():
    assert verdict(MATCHING.replace("custcode=0012345678", "custcode=99")) == Verdict(
        review="custcode '99' echoed, '0012345678' issued")


def test_only_a_review_of_a_success_may_keep_it():
    kept = next(check.kept for check in CHECKS if check.kept)
    with pytest.raises(ValueError, match="keeps"):
        Check("new_check", Outcome.ATTENTION, lambda echo: "", kept=kept)
    with pytest.raises(ValueError, match="review only"):
        Check("new_check", Outcome.ATTENTION, lambda echo: "", stage=Stage.REPEAT)


def test_the_docs_list_every_check_in_the_order_of_the_code():
    page = (Path(__file__).resolve().parent.parent / "docs" / "cashnet.md").read_text()
    section = page.split("## Notification checks", 1)[1].split("\n## ", 1)[0]
    named = re.findall(r"^\| \d+ \| `([a-z_]+)`", section, flags=re.MULTILINE)
    assert named == [check.name for check in CHECKS]
