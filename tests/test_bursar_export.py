"""`patronpay bursar export`: the sandbox's fines report as the file for the bursar, over
loopback, in the shapes the settings ask for; the same day's data gives the same file, and each
run is recorded in the ledger."""

from __future__ import annotations

from decimal import Decimal

import pytest
from support.bursar import BursarRig

from proxy.bursar.store import BursarStore
from proxy.db import Database

D = Decimal
DAY = "2025-03-14"


@pytest.fixture
def rig(tmp_path):
    made = []

    def start(**overrides):
        made.append(BursarRig(tmp_path / f"rig{len(made)}", run_worker=False, **overrides))
        return made[-1]

    (tmp_path / "rig0").mkdir()
    (tmp_path / "rig1").mkdir()
    yield start
    for built in made:
        built.close()


def exported(rig) -> str:
    return (rig.outbox / f"library-fines-{DAY}.csv").read_text(encoding="utf-8")


def test_one_row_per_patron_with_the_default_columns(rig):
    r = rig()
    status, out, _ = r.cli("export", "--day", DAY)
    assert status == 0, out
    assert exported(r).splitlines() == [
        "campus_id,name,amount,item_code,description,date,term",
        "ana.rivera@example.edu,\"Rivera, Ana\",27.40,LIB-FINE,Library fines and fees,"
        "2025-03-14,",
        "dokafor,\"Okafor, David\",8.00,LIB-FINE,Library fines and fees,2025-03-14,",
        "jsmith,\"Smith, Jordan\",13.25,LIB-FINE,Library fines and fees,2025-03-14,",
        "lnguyen,\"Nguyen, Linh\",17.50,LIB-FINE,Library fines and fees,2025-03-14,",
        "mkowalski,\"Kowalski, Maria\",77.25,LIB-FINE,Library fines and fees,2025-03-14,",
        "rgarcia,\"Garcia, Rosa\",21.00,LIB-FINE,Library fines and fees,2025-03-14,",
        "tlee,\"Lee, Thomas\",1250.00,LIB-FINE,Library fines and fees,2025-03-14,",
    ]
    assert "7 rows, 7 patrons, 1414.40 owed" in out


def test_one_row_per_fee_with_columns_headers_codes_and_term_by_setting(rig):
    r = rig(bursar_export_rows="fee", bursar_term="2025SP", bursar_date_format="%m/%d/%Y",
            bursar_export_columns="campus_id=EMPLID,item_code=ITEM_TYPE,amount=AMOUNT,"
                                  "term=TERM,date=DUE_DATE,fee_id=REF,description=DESCR",
            bursar_item_codes="LOSTITEMREPLACEMENTFEE=100000000010,OVERDUEFINE=100000000020",
            bursar_item_code="100000000099")
    assert r.cli("export", "--day", DAY)[0] == 0
    lines = exported(r).splitlines()
    assert lines[0] == "EMPLID,ITEM_TYPE,AMOUNT,TERM,DUE_DATE,REF,DESCR"
    mine = [line for line in lines if line.startswith("mkowalski,")]
    assert mine == [
        "mkowalski,100000000010,60.00,2025SP,11/04/2024,7730018830004146,"
        "Lost item replacement fee: The",
        "mkowalski,100000000020,4.75,2025SP,01/21/2025,7730012450004146,"
        "Overdue fine: Principles of so",
        "mkowalski,100000000099,12.50,2025SP,03/02/2025,7730020010004146,"
        "Damaged item fine: Torts: case",
    ]
    assert len(lines) == 1 + 14  # every fee owed; credits and fees sent to the bursar are not billed


def test_item_codes_follow_the_owning_library_as_on_cashnet(rig):
    # The portal's own rules (no bursar ones): the Law library's fees go to its own code.
    r = rig(bursar_export_rows="fee", bursar_export_columns="campus_id,fee_id,item_code,amount",
            cashnet_item_codes="OVERDUEFINE=LIB-OVERDUE,LAW/*=LAW-FINES")
    assert r.cli("export", "--day", DAY)[0] == 0
    lines = exported(r).splitlines()
    assert "mkowalski,7730020010004146,LAW-FINES,12.50" in lines  # damaged-item fine, Law library
    assert "mkowalski,7730012450004146,LIB-OVERDUE,4.75" in lines  # overdue fine, Science library
    assert "mkowalski,7730018830004146,LIB-FINE,60.00" in lines  # lost item, Main: the default
    # An overdue fine of the Law library: LAW/* is more specific than OVERDUEFINE.
    assert "ana.rivera@example.edu,7730050010004146,LAW-FINES,2.40" in lines


def test_the_same_days_data_gives_the_same_file_and_each_run_is_recorded(rig):
    r = rig()
    assert r.cli("export", "--day", DAY)[0] == 0
    first = (r.outbox / f"library-fines-{DAY}.csv").read_bytes()
    # The report quirks change how the data arrives, not what it is.
    r.analytics.configure(still_loading=1, still_loading_later=1, duplicate_rows=True)
    assert r.cli("export", "--day", DAY)[0] == 0
    assert (r.outbox / f"library-fines-{DAY}.csv").read_bytes() == first
    store = BursarStore(Database(r.database), r.ledger.clock)
    runs = store.exports()
    assert [(run["day"], run["rows"], run["patrons"], run["total"]) for run in runs] == [
        (DAY, 14, 7, D("1414.40"))] * 2
    assert runs[0]["sha256"] == runs[1]["sha256"]
    lines = store.export_lines(runs[0]["id"])
    assert ("mkowalski", "7730020010004146", D("12.50")) in [
        (line.campus_id, line.fee_id, line.amount) for line in lines]


def test_a_paid_fee_leaves_the_next_days_file(rig):
    r = rig()
    r.alma.set_fee("mkowalski", "7730018830004146", balance="0.00", status="CLOSED")
    assert r.cli("export", "--day", DAY)[0] == 0
    assert "mkowalski,\"Kowalski, Maria\",17.25," in exported(r)


def test_standard_output_and_a_report_that_cannot_be_read(rig):
    r = rig()
    status, out, err = r.cli("export", "--output", "-", "--day", DAY)
    assert status == 0
    assert out.startswith("campus_id,name,amount") and "1414.40 owed" in err
    r.analytics.configure(stuck_loading=True)
    status, out, err = r.cli("export", "--day", DAY)
    assert status == 75 and "still loading" in err


def test_a_missing_report_path_is_a_configuration_error(rig):
    r = rig(bursar_report_path="")
    status, _, err = r.cli("export")
    assert status == 2 and "PATRONPAY_BURSAR_REPORT_PATH" in err


def test_an_empty_report_after_a_file_with_rows_is_asked_again_then_refused(rig):
    # Analytics has answered "finished, no rows" by mistake: a file without rows would clear
    # every balance a bursar loads as the balance.
    r = rig()
    assert r.cli("export", "--day", DAY)[0] == 0
    for user in r.alma.all_users():
        for fee in user["fees"]:
            r.alma.set_fee(user["primary_id"], fee["id"], balance="0.00", status="CLOSED")
    r.alma.clear_requests()
    status, _, err = r.cli("export", "--day", "2025-03-15")
    assert status == 75 and "refusing to write a file without rows" in err
    assert "the last file (2025-03-14) billed 14" in err
    assert not (r.outbox / "library-fines-2025-03-15.csv").exists()
    assert len([q for q in r.alma.requests() if q["path"].endswith("/analytics/reports")]) == 2
    status, out, _ = r.cli("export", "--day", "2025-03-15", "--allow-empty")
    assert status == 0 and "0 rows, 0 patrons, 0.00 owed" in out
    assert (r.outbox / "library-fines-2025-03-15.csv").read_text().splitlines() == [
        "campus_id,name,amount,item_code,description,date,term"]
    # After a file without rows, an empty report is nothing unusual.
    assert r.cli("export", "--day", "2025-03-16")[0] == 0
