"""Crash safety of `patronpay bursar import`: the command runs as a real process, is killed with
SIGKILL in the middle of a file (while recording its rows, or while posting them with `--post`),
and is run again on the same file: every row ends up applied in Alma exactly once."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
from decimal import Decimal
from pathlib import Path

import pytest
from support.bursar import BursarRig
from support.waiting import wait_for

pytestmark = pytest.mark.slow

D = Decimal
ROOT = Path(__file__).resolve().parent.parent
PATRONS = [f"crash{i:02d}" for i in range(8)]


@pytest.fixture
def rig(tmp_path):
    built = BursarRig(tmp_path, run_worker=False)
    for patron in PATRONS:
        built.alma.add_user({"primary_id": patron, "first_name": "Crash", "last_name": patron,
                             "fees": [{"type": "OVERDUEFINE", "original_amount": "3.10",
                                       "owner": "MAIN",
                                       "creation_time": "2025-01-01T10:00:00.000Z"},
                                      {"type": "DAMAGEDITEMFINE", "original_amount": "7.25",
                                       "owner": "LAW",
                                       "creation_time": "2025-02-01T10:00:00.000Z"}]})
    built.paids = built.drop("paids.csv", "patron_id,amount,transaction_id\n" + "".join(
        f"{patron},10.35,CR{number:02d}\n" for number, patron in enumerate(PATRONS)))
    try:
        yield built
    finally:
        built.close()


def start_import(rig: BursarRig, *extra: str) -> subprocess.Popen:
    env = {k: v for k, v in os.environ.items() if not k.startswith("PATRONPAY_")}
    env.update(rig.env, PYTHONUNBUFFERED="1")
    log = open(rig.tmp_path / "import.log", "ab")  # noqa: SIM115 - the child writes to it
    try:
        return subprocess.Popen(
            [sys.executable, "-m", "patronpay", "bursar", "import", str(rig.paids), *extra],
            env=env, cwd=ROOT, stdout=log, stderr=subprocess.STDOUT)
    finally:
        log.close()


def run_import(rig: BursarRig, *extra: str) -> str:
    process = start_import(rig, *extra)
    assert process.wait(60) == 0, (rig.tmp_path / "import.log").read_text()[-3000:]
    return (rig.tmp_path / "import.log").read_text()


def kill(process: subprocess.Popen) -> None:
    os.kill(process.pid, signal.SIGKILL)
    process.wait(10)


def assert_each_row_applied_once(rig: BursarRig) -> None:
    payments = rig.bursar_payments()
    assert sorted(p.cashnet_tx for p in payments) == [f"CR{n:02d}" for n in range(8)]
    assert {p.state for p in payments} == {"posted"}
    for number, patron in enumerate(PATRONS):
        applied = {fee: [(tx, amount) for tx, amount in found]
                   for fee, found in rig.in_alma(patron).items()}
        assert sorted(applied.values()) == [[(f"CR{number:02d}", D("3.10"))],
                                            [(f"CR{number:02d}", D("7.25"))]]
        assert set(rig.balances(patron).values()) == {D("0.00")}


def test_killed_while_recording_rows_then_run_again(rig):
    rig.alma.set_faults({"latency_ms": 150})  # each row: two slow Alma reads
    process = start_import(rig)
    wait_for(lambda: len(rig.bursar_payments()) >= 3, timeout=30,
             what="three rows recorded")
    kill(process)
    recorded = len(rig.bursar_payments())
    assert 3 <= recorded < len(PATRONS)
    assert rig.pays() == []
    rig.alma.set_faults({})
    log = run_import(rig, "--post")
    assert f"{len(PATRONS) - recorded} recorded, {recorded} already imported" in log
    assert_each_row_applied_once(rig)
    assert len(rig.pays()) == 2 * len(PATRONS)


def test_killed_while_posting_then_run_again(rig):
    rig.alma.set_faults({"rules": [{"match": {"method": "POST",
                                              "path": "/almaws/v1/users/*/fees/*"},
                                    "mode": "slow", "latency_ms": 300}]})
    process = start_import(rig, "--post")
    wait_for(lambda: len([r for r in rig.pays() if r["committed"]]) >= 3, timeout=30,
             what="some payments applied in Alma")
    kill(process)
    # Calls in flight when the process died still land in Alma; the ledger does not know.
    wait_for(lambda: all(r["status"] is not None for r in rig.pays()), timeout=10,
             what="orphaned calls to finish")
    applied_before = len([r for r in rig.pays() if r["committed"]])
    assert applied_before < 2 * len(PATRONS)
    rig.alma.set_faults({})
    log = run_import(rig, "--post")
    assert f"0 recorded, {len(PATRONS)} already imported" in log
    assert_each_row_applied_once(rig)
    # Looked before paying: Alma applied each fee's payment once, whoever sent it.
    assert len([r for r in rig.pays() if r["committed"]]) == 2 * len(PATRONS)
