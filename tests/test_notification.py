"""Tolerant parsing of CashNet messages and the content checks
(docs/cashnet.md#notification-checks)."""

from decimal import Decimal

from hypothesis import given
from hypothesis import strategies as st

from proxy.notification import (
    StoredLine,
    echo_review,
    line_mismatch,
    parse_message,
    payment_ids,
    returned_payment_id,
)

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


def test_mismatches_name_their_cause():
    tampered = parse_message(SUCCESS.replace(b"amount2=1080.00", b"amount2=1.00"))
    assert line_mismatch(tampered, STORED, "0012345678") == "amount mismatch: line 2: amount 1.00, issued 1080.00"
    wrong_code = parse_message(SUCCESS.replace(b"itemcode1=LIB-OVERDUE", b"itemcode1=LIB-X"))
    assert line_mismatch(wrong_code, STORED, "0012345678").startswith("item code mismatch: line 1: item code")
    assert line_mismatch(parse_message(SUCCESS), STORED[:1], "0012345678") == \
        "line count mismatch: 2 lines echoed, 1 issued"
    conflicting = parse_message(SUCCESS + b"&amount1=0.01")
    assert line_mismatch(conflicting, STORED, "0012345678") == "conflicting values for amount1"
    assert line_mismatch(parse_message(SUCCESS + b"&amount1=12.50"), STORED, "0012345678") == ""


def test_a_differing_custcode_is_for_review_not_a_reason_to_stop():
    message = parse_message(SUCCESS)
    assert line_mismatch(message, STORED, "someone-else") == ""
    assert echo_review(message, STORED, "someone-else") == "custcode '0012345678' echoed, 'someone-else' issued"
    upper = parse_message(SUCCESS.replace(b"custcode=0012345678", b"custcode=+MKowalski+"))
    assert echo_review(upper, STORED, "mkowalski") == ""
    assert echo_review(message, STORED, "") == ""  # we sent none: nothing to compare


def test_fields_the_payer_typed_beside_our_echo_never_stop_a_payment():
    typed = parse_message(SUCCESS + b"&LNAME=Rivera-Diaz&email=a%40x.org&EMAIL=b%40y.org")
    assert typed.conflicts == ("email", "lname")
    assert typed.decision_conflicts() == ()
    assert line_mismatch(typed, STORED, "0012345678") == ""
    assert typed.get("lname") == "Rivera"  # the first value (our echo) is the one read


def test_repeated_decision_fields_conflict_only_when_they_mean_different_things():
    same = parse_message(SUCCESS + b"&AMOUNT2=1%2C080.00&ITEMCODE1=lib-overdue&TX=+204518")
    assert same.decision_conflicts() == ()
    assert line_mismatch(same, STORED, "0012345678") == ""
    for extra in (b"&TX=204519", b"&RESULT=209", b"&ITEMCNT=3", b"&REF1VAL1=" + b"0" * 32,
                  b"&failedtx=1&FAILEDTX=2", b"&AMOUNT1=12.51"):
        message = parse_message(SUCCESS + extra)
        assert line_mismatch(message, STORED, "0012345678").startswith("conflicting values for")
    custcodes = parse_message(SUCCESS + b"&CUSTCODE=900123456")
    assert custcodes.decision_conflicts() == ("custcode",)
    assert line_mismatch(custcodes, STORED, "0012345678") == ""  # custcode goes to review
    assert echo_review(custcodes, STORED, "0012345678") == "custcode '900123456' echoed, '0012345678' issued"


def test_formatted_amounts_in_the_echo_equal_ours():
    formatted = parse_message(SUCCESS.replace(b"amount1=12.50", b"amount1=%2412.50")
                              .replace(b"amount2=1080.00", b"amount2=1%2C080.00"))
    assert formatted.lines() == [("LIB-OVERDUE", Decimal("12.50")), ("LIB-LOST", Decimal("1080.00"))]
    assert line_mismatch(formatted, STORED, "0012345678") == ""


def test_a_percent_encoded_windows_1252_body_decodes_by_its_declared_charset():
    body = b"result=0&lname=Mu%F1oz&CUSTCODE=0012345678"
    declared = parse_message(body, content_type="application/x-www-form-urlencoded; charset=windows-1252")
    assert declared.get("lname") == "Muñoz"
    assert parse_message(body).get("lname") == "Muñoz"  # not UTF-8, so windows-1252
    assert parse_message(b"lname=Mu%C3%B1oz").get("lname") == "Muñoz"  # UTF-8 stays UTF-8
    assert parse_message(body, content_type="text/plain; charset=nonsense").get("lname") == "Muñoz"


def test_the_returned_p_survives_cashnet_appending_its_own_query():
    assert returned_payment_id(f"{PID}?result=0") == PID
    assert returned_payment_id(f" {PID.upper()} ") == PID
    assert returned_payment_id("nope") == ""
    assert returned_payment_id("x" * 70000) == ""


def test_only_the_fields_patronpay_uses_are_recorded():
    message = parse_message(SUCCESS + b"&CARDNAME_G=JANE+DOE&EMAIL=j%40x.org&ADDR_G=1+Main"
                            b"&ref2type1=EMAIL_G&ref2val1=j%40x.org&phone=555&favourite=blue"
                            b"&PAYMENT_REF=" + PID.encode() + b"&gl1=1-2345")
    kept = message.recordable()
    assert set(kept) == {"result", "respmessage", "tx", "batchno", "effdate", "merchant",
                         "station", "operator", "pmtcode", "pmttype", "custcode", "itemcnt",
                         "itemcode1", "amount1", "qty1", "itemcode2", "amount2", "qty2",
                         "ref1type1", "ref1val1", "ref2type1", "payment_ref", "gl1"}
    assert "j@x.org" not in kept.values() and "Rivera" not in kept.values()


@given(st.binary(max_size=2000), st.text(max_size=200))
def test_parsing_never_raises(body, query):
    message = parse_message(body, query, "application/x-www-form-urlencoded; charset=windows-1252")
    message.lines()
    payment_ids(message, "PAYMENT_ID", "PAYMENT_REF")
    line_mismatch(message, STORED, "x")
    echo_review(message, STORED, "x")
    message.recordable()


def test_odd_digits_in_counts_and_names_are_not_numbers():
    message = parse_message("result=0&itemcnt=²&itemcode1=LIB-FINE&amount1=5.00&itemcode٣=x".encode())
    assert message.lines() == [("LIB-FINE", Decimal("5.00"))]
