"""Tolerant parsing of CashNet messages and the content checks
(docs/cashnet.md#notification-checks)."""

from decimal import Decimal

from hypothesis import given
from hypothesis import strategies as st

from proxy.notification import StoredLine, line_mismatch, parse_message, payment_ids

PID = "9c4e0d2a7b1f48e3a6d5c8b7e2f1a0d9"
SUCCESS = (
    "result=0&respmessage=SUCCESS&tx=204518&batchno=311&effdate=3%2F14%2F2025&merchant=LIBFINES"
    "&station=WEB&operator=WEBUSER&pmtcode=CC&pmttype=CC&custcode=0012345678&lname=Rivera&itemcnt=2"
    "&itemcode1=LIB-OVERDUE&amount1=12.50&qty1=1&itemcode2=LIB-LOST&amount2=1080.00&qty2=1"
    f"&ref1type1=PAYMENT_ID&ref1val1={PID}"
).encode()
STORED = [StoredLine("LIB-OVERDUE", Decimal("12.50")), StoredLine("LIB-LOST", Decimal("1080.00"))]


def test_success_body():
    message = parse_message(SUCCESS)
    assert message.succeeded and message.tx == "204518" and message.get("batchno") == "311"
    assert message.get("effdate") == "3/14/2025"
    assert message.lines() == [("LIB-OVERDUE", Decimal("12.50")), ("LIB-LOST", Decimal("1080.00"))]
    assert payment_ids(message, "PAYMENT_ID") == {PID}
    assert line_mismatch(message, STORED, "0012345678") == ""


def test_names_are_case_insensitive_and_a_leading_ampersand_is_ignored():
    message = parse_message(b"&" + SUCCESS.replace(b"result=", b"RESULT=").replace(b"tx=", b"TX="))
    assert message.succeeded and message.tx == "204518"


def test_ampersand_in_a_key_and_query_string_fallback():
    assert parse_message(b"&&result=0").result == "0"
    message = parse_message(b"", "result=209&failedtx=77")
    assert (message.result, message.failedtx, message.succeeded) == ("209", "77", False)


def test_windows_1252_body():
    message = parse_message("lname=Nu\u00f1ez&result=0".encode("cp1252"))
    assert message.get("lname") == "Nuñez"


def test_reference_found_in_another_slot_by_type_name():
    body = SUCCESS.replace(b"ref1type1=PAYMENT_ID&ref1val1=", b"ref1type2=payment_id&ref1val2=")
    assert payment_ids(parse_message(body), "PAYMENT_ID") == {PID}


def test_transaction_level_reference_and_position_fallback():
    body = b"result=0&PAYMENT_REF=" + PID.encode()
    assert payment_ids(parse_message(body), "PAYMENT_ID", "payment_ref") == {PID}
    assert payment_ids(parse_message(b"result=0&ref1val1=abc"), "PAYMENT_ID") == {"abc"}
    assert payment_ids(parse_message(b"result=0"), "PAYMENT_ID") == set()


def test_two_different_references_are_both_reported():
    body = b"ref1type1=PAYMENT_ID&ref1val1=a&ref1type2=PAYMENT_ID&ref1val2=b"
    assert payment_ids(parse_message(body), "PAYMENT_ID") == {"a", "b"}


def test_missing_itemcnt_is_derived():
    body = SUCCESS.replace(b"&itemcnt=2", b"")
    assert len(parse_message(body).lines()) == 2


def test_unindexed_single_item_is_line_one():
    message = parse_message(b"result=0&itemcode=LIB-FINE&amount=5.00")
    assert message.lines() == [("LIB-FINE", Decimal("5.00"))]


def test_mismatches():
    tampered = parse_message(SUCCESS.replace(b"amount2=1080.00", b"amount2=1.00"))
    assert line_mismatch(tampered, STORED, "0012345678") == "line 2: amount 1.00, issued 1080.00"
    wrong_code = parse_message(SUCCESS.replace(b"itemcode1=LIB-OVERDUE", b"itemcode1=LIB-X"))
    assert line_mismatch(wrong_code, STORED, "0012345678").startswith("line 1: item code")
    assert line_mismatch(parse_message(SUCCESS), STORED[:1], "0012345678") == "2 lines echoed, 1 issued"
    assert line_mismatch(parse_message(SUCCESS), STORED, "someone-else") == "custcode differs from the one issued"
    conflicting = parse_message(SUCCESS + b"&amount1=0.01")
    assert line_mismatch(conflicting, STORED, "0012345678") == "conflicting values for amount1"
    assert line_mismatch(parse_message(SUCCESS + b"&amount1=12.50"), STORED, "0012345678") == ""


def test_payer_details_are_not_recorded():
    message = parse_message(SUCCESS + b"&CARDNAME_G=JANE+DOE&EMAIL=j%40x.org&ADDR_G=1+Main")
    assert set(message.recordable()) & {"cardname_g", "email", "addr_g"} == set()
    assert message.recordable()["tx"] == "204518"


@given(st.binary(max_size=2000), st.text(max_size=200))
def test_parsing_never_raises(body, query):
    message = parse_message(body, query)
    message.lines()
    payment_ids(message, "PAYMENT_ID", "PAYMENT_REF")
    line_mismatch(message, STORED, "x")


def test_odd_digits_in_counts_and_names_are_not_numbers():
    message = parse_message("result=0&itemcnt=²&itemcode1=LIB-FINE&amount1=5.00&itemcode٣=x".encode())
    assert message.lines() == [("LIB-FINE", Decimal("5.00"))]
