"""What real Alma accounts carry, end to end over loopback against the sandbox (issue 12, items
8 to 10): a credit under both policies, fees patronpay cannot take (institution-level, sent to
the bursar, not exact cents), Alma's XML errors, throttling sent with 400, old-API dates and
the keys real answers leave out. The sandbox patron `lnguyen` carries every case."""

from decimal import Decimal

D = Decimal
PATRON = "lnguyen"
BILLED, OVERDUE, CREDIT, SUB_CENT, INSTITUTION, NO_OWNER = (
    f"77300800{n}0004146" for n in range(1, 7))


def fees_of(d, patron=PATRON):
    return {f["id"]: f for f in d.alma.user_state(patron)["fees"]}


def figures(body: dict) -> dict:
    return {k: body[k] for k in ("owed_total", "credit_total", "credit_policy", "charge_total",
                                 "payable_total", "total", "inexact_count")}


def pays_in_alma(d, tx: str) -> dict[str, D]:
    return {fee_id: sum(t["amount"] for t in fee["transactions"]
                        if t["external_transaction_id"] == tx)
            for fee_id, fee in fees_of(d).items()
            if any(t["external_transaction_id"] == tx for t in fee["transactions"])}


def test_a_credit_is_shown_and_the_fees_are_charged_in_full_by_default(deploy):
    d = deploy()
    patron = d.sign_in_sso(PATRON)
    body = patron.get("/api/fees").json()
    assert figures(body) == {
        "owed_total": "17.50", "credit_total": "4.00", "credit_policy": "show",
        "charge_total": "17.50", "payable_total": "17.50", "total": "13.50", "inexact_count": 1}
    created, completion = d.pay(patron)
    assert created["payment"]["amount"] == "17.50"
    d.wait_for_state(created["payment"]["id"], "posted")
    assert pays_in_alma(d, completion["tx"]) == {
        OVERDUE: D("9.00"), INSTITUTION: D("5.00"), NO_OWNER: D("3.50")}
    credit = fees_of(d)[CREDIT]
    assert (credit["balance"], credit["status"], credit["transactions"]) == (
        D("-4.00"), "ACTIVE", [])


def test_net_takes_the_credit_off_the_charge_and_leaves_the_credit_in_alma(deploy):
    d = deploy(credit_policy="net")
    patron = d.sign_in_sso(PATRON)
    assert figures(patron.get("/api/fees").json())["charge_total"] == "13.50"
    too_much = patron.post("/api/payments", json={"amount": "13.51"})
    assert (too_much.status_code, too_much.json()["error"]["code"]) == (422, "amount_too_large")
    covered = patron.post("/api/payments", json={"fee_ids": [NO_OWNER]})  # 3.50 < the credit
    assert (covered.status_code, covered.json()["error"]["code"]) == (422, "credit_covers")

    created, completion = d.pay(patron)
    assert created["payment"]["amount"] == "13.50"
    assert created["payment"]["allocations"] == [
        {"fee_id": OVERDUE, "amount": "9.00"}, {"fee_id": INSTITUTION, "amount": "4.50"}]
    d.wait_for_state(created["payment"]["id"], "posted")
    assert pays_in_alma(d, completion["tx"]) == {OVERDUE: D("9.00"), INSTITUTION: D("4.50")}
    fees = fees_of(d)
    # What is left open is exactly what the credit covers; the credit itself is untouched.
    assert (fees[INSTITUTION]["balance"], fees[NO_OWNER]["balance"]) == (D("0.50"), D("3.50"))
    assert (fees[CREDIT]["balance"], fees[CREDIT]["transactions"]) == (D("-4.00"), [])
    after = patron.get("/api/fees").json()
    assert (after["owed_total"], after["credit_total"], after["charge_total"]) == (
        "4.00", "4.00", "0.00")
    assert all("/" + CREDIT not in call["path"] for call in d.alma_calls("POST"))


def test_institution_level_fees_are_taken_only_when_the_institution_is_listed(deploy):
    libraries_only = deploy(payable_libraries="MAIN,SCI").sign_in_sso(PATRON)
    notes = {f["id"]: (f["payable"], f["note"]) for f in libraries_only.get("/api/fees").json()["fees"]}
    assert (notes[INSTITUTION], notes[NO_OWNER]) == ((False, "not_payable"), (False, "not_payable"))

    d = deploy(payable_libraries="MAIN,01PATRON_INST")  # no owner: PRIMO_INSTITUTION's
    body = d.sign_in_sso(PATRON).get("/api/fees").json()
    assert [f["id"] for f in body["fees"] if f["payable"]] == [OVERDUE, INSTITUTION, NO_OWNER]
    owners = {f["id"]: f["library"] for f in body["fees"]}
    assert owners[INSTITUTION] == {"code": "01PATRON_INST", "name": "Patronpay Sandbox University"}
    assert owners[NO_OWNER] == {"code": "", "name": ""}


def test_fees_sent_to_the_bursar_show_as_billed_when_asked_for(deploy):
    d = deploy()
    ids = [f["id"] for f in d.sign_in_sso(PATRON).get("/api/fees").json()["fees"]]
    assert BILLED not in ids and len(d.alma_calls("GET")) == 2  # USER, then one LIST

    d = deploy(show_exported_fees="true")
    patron = d.sign_in_sso(PATRON)
    body = patron.get("/api/fees").json()
    billed = body["fees"][0]
    assert (billed["id"], billed["status"], billed["payable"], billed["note"], billed["balance"]) == (
        BILLED, "EXPORTED", False, "billed", "45.00")
    assert figures(body)["owed_total"] == "17.50"  # the bursar's now, in no total
    lists = [call["query"].get("status") for call in d.alma_calls("GET") if call["path"].endswith("/fees")]
    assert lists == [["ACTIVE"], ["EXPORTED"]]
    refused = patron.post("/api/payments", json={"fee_ids": [BILLED]})
    assert refused.json()["error"]["code"] == "unknown_fee"


def test_a_fee_not_in_whole_cents_is_listed_for_the_desk_and_never_charged(deploy):
    d = deploy()
    patron = d.sign_in_sso(PATRON)
    body = patron.get("/api/fees").json()
    sub_cent = next(f for f in body["fees"] if f["id"] == SUB_CENT)
    assert (sub_cent["balance"], sub_cent["original"], sub_cent["payable"], sub_cent["note"]) == (
        None, None, False, "inexact")
    assert body["inexact_count"] == 1
    refused = patron.post("/api/payments", json={"fee_ids": [SUB_CENT]})
    assert refused.json()["error"]["code"] == "unknown_fee"


def test_an_unknown_patron_in_an_xml_error_is_not_found_not_try_later(deploy):
    d = deploy()
    d.alma.set_faults({"error_style": "xml"})
    answer = d.browser().get("/auth/sso", headers={"X-Remote-User": "nosuchpatron"})
    assert answer.status_code == 303 and "error=account_not_found" in answer.headers["location"]


def test_throttling_sent_with_400_is_waited_out(deploy):
    d = deploy()
    patron = d.sign_in_sso(PATRON)
    d.alma.set_faults({"rules": [{"match": {"path": "*/fees"}, "mode": "alma_error",
                                  "code": "PER_SECOND_THRESHOLD", "status": 400, "next": 1}]})
    assert patron.get("/api/fees").status_code == 200
    assert [c["status"] for c in d.alma_calls("GET") if c["path"].endswith("/fees")] == [400, 200]


def test_old_api_dates_and_left_out_keys_still_make_a_fees_page(deploy):
    d = deploy()
    d.alma.set_faults({"date_style": "epoch_ms", "omit_empty_keys": True})
    body = d.sign_in_sso(PATRON).get("/api/fees").json()
    by_id = {f["id"]: f for f in body["fees"]}
    assert by_id[OVERDUE]["created"] == "2025-02-10T14:20:00.000Z"
    assert [f["id"] for f in body["fees"]] == [OVERDUE, CREDIT, SUB_CENT, INSTITUTION, NO_OWNER]
    assert (by_id[NO_OWNER]["library"], by_id[NO_OWNER]["title"]) == ({"code": "", "name": ""}, "")
    assert figures(body)["charge_total"] == "17.50"
