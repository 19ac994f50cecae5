"""`patronpay bursar holds`: the patrons to hold (owing over the minimum, or carrying a named
Alma block) and, across runs, the holds that can be lifted; two files of campus ids."""

from __future__ import annotations

from decimal import Decimal

import pytest
from support.bursar import BursarRig

D = Decimal


@pytest.fixture
def rig(tmp_path):
    built = BursarRig(tmp_path, run_worker=False, bursar_hold_min="10.00",
                      bursar_block_types="CASH,LOAN",
                      bursar_export_columns="campus_id=EMPLID,amount")
    try:
        yield built
    finally:
        built.close()


def ids(rig: BursarRig, name: str) -> list[str]:
    return (rig.outbox / name).read_text().splitlines()


def test_holds_are_placed_then_lifted_across_two_runs(rig):
    rig.alma.set_blocks("dokafor", [{"type": "CASH", "status": "ACTIVE"}])  # owes only 8.00
    rig.alma.set_blocks("pchen", [{"type": "LOAN", "status": "INACTIVE"},  # owes nothing
                                  {"type": "GENERAL", "status": "ACTIVE"}])
    status, out, _ = rig.cli("holds", "--day", "2025-03-01")
    assert status == 0, out
    assert ids(rig, "holds-2025-03-01.csv") == [
        "EMPLID", "ana.rivera@example.edu", "dokafor", "jsmith", "lnguyen", "mkowalski", "rgarcia",
        "tlee"]
    assert ids(rig, "holds-lifted-2025-03-01.csv") == ["EMPLID"]
    assert "7 patrons held (7 new), 0 to lift; 7 Alma look-ups for blocks" in out
    assert "hold  dokafor  block CASH (new)" in out
    assert "hold  mkowalski  owes 77.25 (new)" in out

    # Meanwhile: mkowalski pays down to 7.25, dokafor's block is lifted, pchen is charged.
    rig.alma.set_fee("mkowalski", "7730018830004146", balance="0.00", status="CLOSED")
    rig.alma.set_fee("mkowalski", "7730012450004146", balance="0.00", status="CLOSED")
    rig.alma.set_fee("mkowalski", "7730020010004146", balance="7.25")
    rig.alma.set_blocks("dokafor", [])
    rig.alma.add_fee("pchen", {"type": "LOSTITEMREPLACEMENTFEE", "original_amount": "40.00",
                               "owner": "MAIN"})
    status, out, _ = rig.cli("holds", "--day", "2025-03-02")
    assert status == 0, out
    assert ids(rig, "holds-2025-03-02.csv") == [
        "EMPLID", "ana.rivera@example.edu", "jsmith", "lnguyen", "pchen", "rgarcia", "tlee"]
    assert ids(rig, "holds-lifted-2025-03-02.csv") == ["EMPLID", "dokafor", "mkowalski"]
    assert "6 patrons held (1 new), 2 to lift" in out

    # --new-only lists only the holds to place; a dry run writes and records nothing.
    status, out, _ = rig.cli("holds", "--day", "2025-03-03", "--new-only")
    assert ids(rig, "holds-2025-03-03.csv") == ["EMPLID"]
    assert ids(rig, "holds-lifted-2025-03-03.csv") == ["EMPLID"]
    rig.alma.set_blocks("mkowalski", [{"type": "LOAN"}])
    status, out, _ = rig.cli("holds", "--day", "2025-03-04", "--dry-run")
    assert status == 0 and "hold  mkowalski  block LOAN (new)" in out
    assert not (rig.outbox / "holds-2025-03-04.csv").exists()
    status, out, _ = rig.cli("holds", "--day", "2025-03-04")
    assert "hold  mkowalski  block LOAN (new)" in out  # still new: the dry run recorded nothing


def test_an_empty_report_does_not_lift_every_hold_unless_staff_say_so(rig):
    assert rig.cli("holds", "--day", "2025-03-01")[0] == 0
    for user in rig.alma.all_users():
        for fee in user["fees"]:
            rig.alma.set_fee(user["primary_id"], fee["id"], balance="0.00", status="CLOSED")
    status, _, err = rig.cli("holds", "--day", "2025-03-02")
    assert status == 75 and "refusing to lift every hold" in err
    assert not (rig.outbox / "holds-2025-03-02.csv").exists()
    status, out, _ = rig.cli("holds", "--day", "2025-03-02", "--allow-empty")
    assert status == 0 and "0 patrons held (0 new), 6 to lift" in out


def test_alma_failing_while_blocks_are_read_writes_nothing(rig):
    rig.alma.set_faults({"rules": [{"match": {"method": "GET", "path": "/almaws/v1/users/tlee"},
                                    "mode": "http_5xx"}]})
    status, _, err = rig.cli("holds", "--day", "2025-03-01")
    assert status == 75 and "cannot read the blocks of tlee" in err
    assert list(rig.outbox.iterdir()) == []
