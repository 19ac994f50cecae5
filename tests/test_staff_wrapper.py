"""systemd/patronpay-staff (docs/operations.md#staff-commands-under-systemd): staff commands run
as patronpay.service's dynamic user with its settings, credentials and ledger. No systemd here,
so a stand-in `systemd-run` records what the wrapper asks of it, and that is compared with the
service's unit file, line by line, so the two cannot drift apart."""

from __future__ import annotations

import os
import subprocess
from pathlib import Path

SYSTEMD = Path(__file__).resolve().parent.parent / "systemd"
WRAPPER = SYSTEMD / "patronpay-staff"


def service_lines() -> list[str]:
    lines, section = [], None
    for raw in (SYSTEMD / "patronpay.service").read_text().splitlines():
        line = raw.strip()
        if line.startswith("["):
            section = line
        elif line and not line.startswith("#") and section == "[Service]":
            lines.append(line)
    return lines


def run_wrapper(tmp_path: Path, *args: str, sudo_user: str = "asmith") -> list[str]:
    """The wrapper's call of systemd-run, one argument per item."""
    record = tmp_path / "argv"
    fake = tmp_path / "bin" / "systemd-run"
    fake.parent.mkdir()
    fake.write_text(f'#!/bin/sh\nprintf "%s\\0" "$@" > {record}\n')
    fake.chmod(0o755)
    env = {**os.environ, "PATH": f"{fake.parent}:{os.environ['PATH']}", "SUDO_USER": sudo_user}
    subprocess.run([str(WRAPPER), *args], env=env, check=True, timeout=30,
                   stdin=subprocess.DEVNULL, capture_output=True)
    return record.read_bytes().decode().split("\0")[:-1]


def properties(argv: list[str]) -> list[str]:
    return [argv[i + 1] for i, arg in enumerate(argv) if arg == "-p"]


def test_the_command_runs_as_the_service_with_its_settings_and_ledger(tmp_path):
    argv = run_wrapper(tmp_path, "payments", "list", "--attention")
    props = properties(argv)
    service = service_lines()
    # What the service has that makes it this installation: its state, settings, secrets.
    for line in service:
        if line.split("=", 1)[0] in ("DynamicUser", "StateDirectory", "StateDirectoryMode",
                                     "UMask", "WorkingDirectory", "EnvironmentFile",
                                     "LoadCredential", "ProtectSystem", "ProtectHome"):
            assert line in props, line
    database = [line for line in service if line.startswith("Environment=PATRONPAY_DATABASE=")]
    assert database and database[0] in props
    # The same dynamic user by name: patronpay.service's is named after the unit.
    assert "User=patronpay" in props
    # The settings file names the service's credential folder; the transient unit has its own.
    unit = next(arg.split("=", 1)[1] for arg in argv if arg.startswith("--unit="))
    for name, credential in (("ALMA_API_KEY", "alma-api-key"), ("SECRET_KEYS", "secret-keys"),
                             ("CASHNET_POSTBACK_TOKEN", "cashnet-postback-token")):
        expected = f"Environment=PATRONPAY_{name}_FILE=/run/credentials/{unit}.service/{credential}"
        assert expected in props
    assert "Environment=SUDO_USER=asmith" in props  # staff actions carry the person's name
    assert argv[-4:] == ["/opt/patronpay/.venv/bin/patronpay", "payments", "list", "--attention"]
    assert "--wait" in argv and "--pipe" in argv  # no terminal here: plain streams, exit status


def test_arguments_pass_through_unchanged(tmp_path):
    argv = run_wrapper(tmp_path, "payments", "resolve", "abc", "--note", "refunded; see ticket 12")
    assert argv[-5:] == ["payments", "resolve", "abc", "--note", "refunded; see ticket 12"]
