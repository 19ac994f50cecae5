"""`patronpay bursar import`: the bursar's payments come back and are applied in Alma exactly
once, over loopback (sandbox Alma, its campus bursar page, a proxy whose posting worker posts).
A file imported again or overlapping an earlier one posts nothing more; money beyond what the
patron owes waits for staff; a malformed file is refused whole and a bad row alone."""

from __future__ import annotations

import re
import shutil
import time
from decimal import Decimal

import httpx
import pytest
from support.bursar import DAMAGED, LOST, OVERDUE, BursarRig
from support.waiting import wait_for

from proxy.bursar.columns import import_headers
from proxy.bursar.import_file import MAX_CELL, MAX_FILE_BYTES, MAX_ROWS, FileRefused, parse_paids
from proxy.bursar.store import BursarStore
from proxy.db import Database
from sandbox.app import urls
from sandbox.smtp import Mailbox, SmtpServer

D = Decimal


@pytest.fixture
def rig(tmp_path):
    made = []

    def start(**overrides):
        folder = tmp_path / f"rig{len(made)}"
        folder.mkdir()
        made.append(BursarRig(folder, **overrides))
        return made[-1]

    yield start
    for built in made:
        built.close()


def bursar_page_pays(r: BursarRig, amounts: dict[str, str], **form: str) -> str:
    """A tester on the sandbox bursar page marks balances paid: the payments file's name."""
    page = httpx.get(urls(r.sandbox.url)["bursar_page"])
    assert page.status_code == 200
    token = re.search(r'name="form_token" value="([^"]+)"', page.text).group(1)
    rows = re.findall(r'name="pay_(\d+)"[^>]*value="([^"]+)"', page.text)
    fields = {"form_token": token, **form}
    for index, campus_id in rows:
        if campus_id in amounts:
            fields[f"pay_{index}"] = campus_id
            fields[f"amount_{index}"] = amounts[campus_id]
    written = httpx.post(urls(r.sandbox.url)["bursar_page"] + "pay", data=fields)
    assert written.status_code == 303, written.text
    return written.headers["location"].split("written=")[1]


def paid_in_alma(r: BursarRig, patron: str = "mkowalski") -> dict[str, list]:
    """{fee id: amounts} of the payments made in this test (not the seed's own)."""
    found = {fee: sorted(amount for tx, amount in payments if tx.startswith(("PS", "CB", "PPB-")))
             for fee, payments in r.in_alma(patron).items()}
    return {fee: amounts for fee, amounts in found.items() if amounts}


# --- the whole loop ---


def test_export_then_the_bursar_pays_then_import_posts_each_fee_once(rig):
    r = rig()
    assert r.cli("export")[0] == 0
    name = bursar_page_pays(r, {"mkowalski": "70.00", "jsmith": "13.25"})
    r.age(r.inbox / name)
    status, out, _ = r.cli("import", "--inbox")
    assert status == 0, out
    assert "2 recorded" in out and f"moved to {r.inbox / 'done' / name}" in out
    payments = r.wait_settled()
    assert sorted((p.custcode, p.amount, p.state) for p in payments) == [
        ("jsmith", D("13.25"), "posted"), ("mkowalski", D("70.00"), "posted")]
    # Oldest fee first, each posted once, carrying the bursar's transaction id.
    tx = next(p for p in payments if p.custcode == "mkowalski").cashnet_tx
    assert r.in_alma()[LOST][-1] == (tx, D("60.00"))
    assert paid_in_alma(r)[OVERDUE] == [D("4.75")]
    assert paid_in_alma(r)[DAMAGED] == [D("5.25")]
    assert r.balances() == {LOST: D("0.00"), OVERDUE: D("0.00"), DAMAGED: D("7.25")}
    assert r.balances("jsmith") == {"7730030010004146": D("0.00"),
                                    "7730030020004146": D("0.00")}
    assert len(r.pays()) == 5
    report = (r.inbox / "done" / f"{name}.report.txt").read_text()
    assert re.search(r"line \d: recorded  mkowalski  70.00", report)
    assert not (r.inbox / "done" / f"{name}.rejects.csv").exists()


def test_the_same_file_again_and_an_overlapping_file_post_nothing_more(rig):
    r = rig()
    first = r.drop("paids-1.csv", "patron_id,amount,transaction_id,date\n"
                   "mkowalski,10.00,PS1001,2025-03-14\njsmith,3.25,PS1002,2025-03-14\n")
    assert r.cli("import", str(first))[0] == 0
    r.wait_settled()
    pays = len(r.pays())
    status, out, _ = r.cli("import", str(first))
    assert status == 0 and "0 recorded, 2 already imported" in out
    overlapping = r.drop("paids-2.csv", "patron_id,amount,transaction_id,date\n"
                         "jsmith,3.25,PS1002,2025-03-14\ndokafor,8.00,PS1003,2025-03-15\n")
    status, out, _ = r.cli("import", str(overlapping))
    assert status == 0 and "1 recorded, 1 already imported" in out
    r.wait_settled()
    assert len(r.bursar_payments()) == 3
    assert len(r.pays()) == pays + 1
    assert r.in_alma("jsmith") == {"7730030010004146": [("PS1002", D("3.25"))]}
    assert r.in_alma("dokafor") == {"7730040020004146": [("PS1003", D("8.00"))]}
    # A transaction id seen before with another amount or patron is refused, not posted.
    changed = r.drop("paids-3.csv", "patron_id,amount,transaction_id\n"
                     "jsmith,3.00,PS1002\nmkowalski,3.25,PS1002\n")
    status, out, _ = r.cli("import", str(changed))
    assert status == 1 and "0 recorded, 0 already imported, 0 would be posted, 2 rejected" in out
    assert out.count("transaction PS1002 was imported before for jsmith, 3.25") == 2
    assert len(r.bursar_payments()) == 3 and len(r.pays()) == pays + 1


def test_a_file_without_transaction_ids_gets_stable_ids_from_name_line_and_content(rig):
    r = rig()
    text = "patron_id,amount,date\nmkowalski,5.00,2025-03-14\nmkowalski,5.00,2025-03-14\n"
    path = r.drop("paids-notx.csv", text)
    status, out, _ = r.cli("import", str(path))
    assert status == 0 and "2 recorded" in out
    r.wait_settled()
    ids = sorted(tx for tx, _ in r.in_alma()[LOST] if tx.startswith("PPB-"))
    assert len(ids) == 2 and ids[0] != ids[1]  # two lines, two payments
    # The same file, from another folder, is the same payments.
    again = r.tmp_path / "elsewhere"
    again.mkdir()
    shutil.copy(path, again / path.name)
    status, out, _ = r.cli("import", str(again / path.name))
    assert status == 0 and "2 already imported" in out
    assert len(r.bursar_payments()) == 2


def test_more_than_the_patron_owes_waits_for_staff_with_advice(rig):
    r = rig()
    path = r.drop("paids.csv", "patron_id,amount,transaction_id,date\n"
                  "jsmith,20.00,PS2001,2025-03-14\npchen,5.00,PS2002,2025-03-14\n")
    status, out, _ = r.cli("import", str(path))
    assert status == 0
    assert "not owed in Alma: 6.75" in out and "not owed in Alma: 5.00" in out
    payments = {p.custcode: p for p in r.wait_settled()}
    jsmith, pchen = payments["jsmith"], payments["pchen"]
    assert (jsmith.state, jsmith.applied, jsmith.unapplied) == ("attention", D("13.25"), D("6.75"))
    assert "more than the patron owes" in jsmith.reason and "refund" in jsmith.reason
    assert f"patronpay payments resolve {jsmith.id}" in jsmith.reason
    assert (pchen.state, pchen.applied, pchen.unapplied) == ("attention", D("0.00"), D("5.00"))
    assert "owes nothing" in pchen.reason
    assert r.in_alma("pchen") == {}


def test_a_row_may_name_the_fee_or_the_item_code_it_pays(rig):
    r = rig()
    path = r.drop("paids.csv", "patron_id,amount,transaction_id,fee_id,item_code\n"
                  f"mkowalski,12.50,PS3001,{DAMAGED},\n"
                  "mkowalski,2.00,PS3002,,LIB-OVERDUE\n")
    assert r.cli("import", str(path))[0] == 0
    r.wait_settled()
    assert paid_in_alma(r) == {DAMAGED: [D("12.50")], OVERDUE: [D("2.00")]}


def test_campus_ids_and_headers_of_the_campus(rig):
    r = rig(bursar_import_columns="patron_id=EMPLID,amount=AMOUNT_PAID,transaction_id=TXN",
            bursar_id_type="UNIV_ID")
    path = r.drop("ps.csv", "EMPLID,AMOUNT_PAID,TXN\n900123456,4.00,PS4001\nmkowalski,1.00,PS4002\n")
    status, out, _ = r.cli("import", str(path))
    assert status == 1  # mkowalski is not a UNIV_ID
    assert "no patron 'mkowalski' in Alma (user_id_type UNIV_ID)" in out
    payment = r.wait_settled()[0]
    assert (payment.patron_id, payment.custcode, payment.state) == (
        "mkowalski", "900123456", "posted")


def test_dry_run_prints_what_would_be_posted_and_records_nothing(rig):
    r = rig()
    path = r.drop("paids.csv", "patron_id,amount,transaction_id,date\n"
                  "mkowalski,70.00,PS5001,2025-03-14\nnobody,1.00,PS5002,2025-03-14\n")
    status, out, _ = r.cli("import", str(path), "--dry-run")
    assert status == 1
    assert "dry run (nothing recorded)" in out
    assert "line 2: would post  mkowalski  70.00  PS5001" in out
    assert f"fee {LOST}: 60.00" in out and f"fee {DAMAGED}: 5.25" in out
    assert "line 3: rejected" in out
    assert r.bursar_payments() == []
    assert BursarStore(Database(r.database), r.ledger.clock).imports() == []
    assert not path.with_name(path.name + ".rejects.csv").exists()


def test_a_transaction_cashnet_already_reported_is_not_posted_again(rig):
    r = rig()
    created, completion = _pay_on_the_portal(r)
    tx = r.ledger.payment(created).cashnet_tx
    path = r.drop("extract.csv", f"patron_id,amount,transaction_id\nmkowalski,62.00,{tx}\n")
    status, out, _ = r.cli("import", str(path))
    assert status == 0 and f"recorded by web payment {created}" in out
    assert r.bursar_payments() == []


def _pay_on_the_portal(r: BursarRig):
    with httpx.Client(base_url=r.proxy.url, headers={"Origin": r.proxy.url}) as client:
        assert client.get("/auth/sso", headers={"X-Remote-User": "mkowalski"}).status_code == 303
        client.headers["X-CSRF-Token"] = client.get("/api/session").json()["csrf_token"]
        created = client.post("/api/payments", json={"amount": "62.00"}).json()
    checkout = created["checkout"]
    cid = httpx.post(checkout["action"], data=checkout["fields"]).headers["X-Emulator-Checkout"]
    completion = r.sandbox_app.state.cashnet.complete(cid)
    payment_id = created["payment"]["id"]
    wait_for(lambda: r.ledger.payment(payment_id).state == "posted", what="portal payment posted")
    return payment_id, completion


# --- malformed files ---

BAD_FILES = {
    "a header without an amount": (b"patron_id,paid\nmkowalski,1.00\n", "no 'amount' column"),
    "a header naming a column twice": (b"patron_id,amount,amount\nx,1,1\n", "twice"),
    "not UTF-8": ("patron_id,amount\nm\u00fcller,1.00\n".encode("latin-1"), "not UTF-8"),
    "a NUL byte": (b"patron_id,amount\nmk\x00,1.00\n", "NUL"),
    "an empty file": (b"", "empty"),
    "a broken quote": (b'patron_id,amount\n"mkowalski,1.00\n', "not a CSV file"),
}


@pytest.mark.parametrize("case", list(BAD_FILES))
def test_a_file_that_cannot_be_trusted_is_refused_whole(rig, case):
    r = rig(run_worker=False)
    data, message = BAD_FILES[case]
    path = r.inbox / "bad.csv"
    path.write_bytes(data)
    status, _, err = r.cli("import", str(path))
    assert status == 1 and "refused whole" in err and message in err
    assert r.bursar_payments() == []
    r.age(path)
    status, out, _ = r.cli("import", "--inbox")
    assert status == 1 and "moved to" in out
    assert not path.exists()
    report = (r.inbox / "rejected" / "bad.csv.report.txt").read_text()
    assert "refused whole" in report and message in report


def test_bad_rows_are_refused_with_their_line_numbers_and_the_good_rows_go_on(rig):
    r = rig()
    text = ("patron_id,amount,transaction_id,date\n"
            "mkowalski,4.75,PS6001,2025-03-14\n"   # 2: good
            "nobody,1.00,PS6002,2025-03-14\n"      # 3: unknown patron
            "jsmith,12.345,PS6003,2025-03-14\n"    # 4: three decimals
            "jsmith,-3.00,PS6004,2025-03-14\n"     # 5: negative
            "jsmith,0.00,PS6005,2025-03-14\n"      # 6: zero
            "jsmith,3.25,PS6006,14/03/2025\n"      # 7: date in another format
            "jsmith,3.25,PS6007\n"                 # 8: a cell short
            ",3.25,PS6008,2025-03-14\n"            # 9: no patron
            "\n"                                   # 10: blank, skipped
            "=HYPERLINK(1),1.00,PS6009,2025-03-14\n"  # 11: unknown, and a formula
            "jsmith,3.25,PS6010,2025-03-14\n")     # 12: good
    path = r.drop("mixed.csv", text)
    status, out, _ = r.cli("import", str(path))
    assert status == 1
    assert "2 recorded, 0 already imported, 0 would be posted, 8 rejected" in out
    for line, reason in [(3, "no patron 'nobody'"), (4, "'12.345' is not an amount"),
                         (5, "'-3.00' is not an amount"), (6, "the amount is zero"),
                         (7, "date '14/03/2025' does not match"),
                         (8, "3 cells where the header has 4"), (9, "no patron id"),
                         (11, "no patron")]:
        assert re.search(rf"line {line}: rejected .*{re.escape(reason)}", out), (line, out)
    rejects = path.with_name("mixed.csv.rejects.csv").read_text().splitlines()
    assert rejects[0] == "line,reason,patron_id,amount,transaction_id,date"
    assert [row.split(",")[0] for row in rejects[1:]] == ["3", "4", "5", "6", "7", "8", "9",
                                                          "11"]
    assert rejects[-1].startswith("11,no patron '=HYPERLINK(1)' in Alma")
    assert rejects[-1].endswith(",'=HYPERLINK(1),1.00,PS6009,2025-03-14")
    r.wait_settled()
    assert paid_in_alma(r) == {LOST: [D("4.75")]}
    assert r.in_alma("jsmith") == {"7730030010004146": [("PS6010", D("3.25"))]}


def paids(text: str | bytes, name: str = "paids.csv", **columns: str):
    headers = import_headers(columns)
    data = text.encode("utf-8") if isinstance(text, str) else text
    return parse_paids(data, name, headers, "%Y-%m-%d", explicit=frozenset(columns))


def test_the_file_limits_and_the_rows_judged_alone_without_alma():
    header = "patron_id,amount,transaction_id\n"
    with pytest.raises(FileRefused, match="larger than"):
        paids(header.encode() + b"x" * MAX_FILE_BYTES)
    with pytest.raises(FileRefused, match=f"more than {MAX_ROWS} rows"):
        paids(header + "".join(f"p{n},1.00,T{n}\n" for n in range(MAX_ROWS + 1)))
    # A column named in PATRONPAY_BURSAR_IMPORT_COLUMNS must be there, even an optional one.
    with pytest.raises(FileRefused, match="no 'TXN' column"):
        paids("EMPLID,AMOUNT\n900123456,1.00\n", patron_id="EMPLID", amount="AMOUNT",
              transaction_id="TXN")
    # A byte-order mark and headers in another case are fine; other columns are ignored.
    read = paids("\ufeffPATRON_ID,Amount,Note\r\njsmith,2,hello\r\n"
                 f"jsmith,1.00,{'x' * (MAX_CELL + 1)}\r\n"
                 "j\u202esmith,1.00,\r\n"
                 "jsmith,1.00,\r\n")
    assert [(row.line, row.patron, row.amount) for row in read.rows] == [
        (2, "jsmith", D("2.00")), (5, "jsmith", D("1.00"))]
    assert [(row.line, row.reason) for row in read.rejects] == [
        (3, f"a cell is longer than {MAX_CELL} characters"),
        (4, "the patron id holds control characters")]
    # Rows without a transaction id: stable ids from the name (not the folder), line, content.
    assert read.rows[0].stable_id and read.rows[0].transaction_id.startswith("PPB-")
    assert read.rows[0].transaction_id != read.rows[1].transaction_id
    again = paids("patron_id,amount,transaction_id\njsmith,2,\n", name="/elsewhere/paids.csv")
    other = paids("patron_id,amount,transaction_id\njsmith,2,\n", name="paids-2.csv")
    assert again.rows[0].transaction_id == paids(
        "patron_id,amount,transaction_id\njsmith,2,\n").rows[0].transaction_id
    assert other.rows[0].transaction_id != again.rows[0].transaction_id
    spaced = paids("patron_id,amount,transaction_id\njsmith,2,PS 1\n")
    assert spaced.rejects[0].reason == "the transaction id holds spaces or control characters"


# --- the drop folder ---


def test_the_inbox_takes_complete_files_once_and_leaves_files_in_transit(rig):
    r = rig(bursar_inbox_settle_seconds="30")
    fresh = r.drop("fresh.csv", "patron_id,amount,transaction_id\njsmith,1.00,PS7001\n",
                   aged=False)
    part = r.drop("upload.csv.part", "patron_id,amount,transaction_id\njsmith,1.00,PS7002\n")
    hidden = r.drop(".upload.csv", "patron_id,amount,transaction_id\njsmith,1.00,PS7003\n")
    done = r.drop("done.csv", "patron_id,amount,transaction_id\njsmith,1.00,PS7004\n"
                  "nobody,1.00,PS7005\n")
    status, out, _ = r.cli("import", "--inbox")
    assert status == 1  # a rejected row
    assert (fresh.exists(), part.exists(), hidden.exists(), done.exists()) == (
        True, True, True, False)
    assert (r.inbox / "done" / "done.csv").exists()
    rejects = (r.inbox / "done" / "done.csv.rejects.csv").read_text()
    assert "3,no patron 'nobody'" in rejects
    # Once the fresh file has settled it is taken; the done one is not taken again.
    r.age(fresh)
    status, out, _ = r.cli("import", "--inbox")
    assert status == 0 and "fresh.csv: moved to" in out and "done.csv" not in out
    status, out, _ = r.cli("import", "--inbox")
    assert (status, out.strip()) == (0, f"patronpay: no complete file in {r.inbox}")
    # A file of the same name later is kept beside the first, not over it.
    r.drop("done.csv", "patron_id,amount,transaction_id\njsmith,1.00,PS7006\n")
    assert r.cli("import", "--inbox")[0] == 0
    assert (r.inbox / "done" / "done-2.csv").exists()
    r.wait_settled()
    assert sorted(tx for tx, _ in r.in_alma("jsmith")["7730030010004146"]) == [
        "PS7001", "PS7004", "PS7006"]


def test_alma_down_leaves_the_file_for_the_next_run(rig):
    r = rig()
    path = r.drop("paids.csv", "patron_id,amount,transaction_id\n"
                  "jsmith,1.00,PS8001\nrgarcia,1.00,PS8002\n")
    r.alma.set_faults({"rules": [{"match": {"method": "GET", "path": "/almaws/v1/users/rgarcia"},
                                  "mode": "http_5xx"}]})
    status, out, _ = r.cli("import", "--inbox")
    assert status == 75 and "STOPPED at line 3" in out and "left in the inbox" in out
    assert path.exists()
    r.alma.set_faults({})
    status, out, _ = r.cli("import", "--inbox")
    assert status == 0 and "1 recorded, 1 already imported" in out and not path.exists()
    assert len(r.wait_settled()) == 2


def test_post_applies_the_payments_when_no_service_runs(rig):
    r = rig(run_worker=False)
    path = r.drop("paids.csv", "patron_id,amount,transaction_id\njsmith,13.25,PS9001\n"
                  "rgarcia,21.00,PS9002\n")
    status, out, _ = r.cli("import", str(path), "--post")
    assert status == 0 and "posting:" in out
    payments = {p.custcode: p for p in r.bursar_payments()}
    assert payments["jsmith"].state == "posted"
    assert r.balances("jsmith") == {"7730030010004146": D("0.00"), "7730030020004146": D("0.00")}
    # The library keeps one of rgarcia's fees from API payment: that part waits for staff.
    rgarcia = payments["rgarcia"]
    assert (rgarcia.state, rgarcia.applied, rgarcia.unapplied) == (
        "attention", D("15.00"), D("6.00"))
    assert "API restricted" in rgarcia.reason


# --- staff alerts ---


def test_refused_files_and_rows_alert_staff_by_mail_once_per_file(rig):
    smtp = SmtpServer(Mailbox()).start()
    try:
        r = rig(smtp_url=smtp.url, mail_from="Library fines <fines@library.example.edu>",
                staff_email="bursar@example.edu", receipt_email="false")
        # A dry run alerts nobody.
        dry = r.drop("dry.csv", "patron_id,paid\nmkowalski,1.00\n")
        assert r.cli("import", str(dry), "--dry-run")[0] == 1
        dry.unlink()
        r.drop("bad-header.csv", "patron_id,paid\nmkowalski,1.00\n")
        status, _, _ = r.cli("import", "--inbox")
        assert status == 1
        messages = wait_for(lambda: smtp.mailbox.messages(), what="an alert mail")
        assert [m.subject for m in messages] == [
            "patronpay: a bursar payments file was refused whole"]
        body = messages[0].part("plain")
        assert "bad-header.csv" in body and "no 'amount' column" in body
        assert "bursar@example.edu" in messages[0].rcpt_tos

        rows = "".join(f"nobody{n},1.00,PS95{n:02d}\n" for n in range(25))
        r.drop("rows.csv", "patron_id,amount,transaction_id\njsmith,1.00,PS9400\n" + rows)
        assert r.cli("import", "--inbox")[0] == 1
        # Within the minute the alert waits; a minute later (on the mail worker's clock) it goes.
        worker = r.services.mail
        worker.clock = worker.outbox.clock = lambda: time.time() + 61
        messages = wait_for(lambda: len(smtp.mailbox.messages()) >= 2 and
                            smtp.mailbox.messages(), what="a second alert mail")
        assert messages[1].subject == "patronpay: rows of a bursar payments file were refused"
        body = messages[1].part("plain")
        assert "rows.csv" in body and "rejected: 25" in body
        assert "3, 4, 5" in body and "and 5 more" in body and "no patron 'nobody0'" in body
        assert len(smtp.mailbox.messages()) == 2  # one per file, never one per row
    finally:
        smtp.stop()
