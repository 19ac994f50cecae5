"""The kiosk's systemd units and Chromium policy (docs/kiosk.md#the-kiosk-browser,
docs/kiosk.md#session-reset, docs/kiosk.md#the-systemd-units): the decisions are in the files, and
`systemd-analyze verify` finds nothing wrong beyond what a build machine necessarily lacks (the
installed patronpay, sway, the kiosk user)."""

from __future__ import annotations

import configparser
import json
import re
import shlex
import shutil
import subprocess
from pathlib import Path

import pytest

SYSTEMD = Path(__file__).resolve().parent.parent / "systemd"
UNITS = ["patronpay-kiosk-agent.service", "patronpay-kiosk-browser.service",
         "patronpay-kiosk-reset-browser.path", "patronpay-kiosk-reset-browser.service",
         "patronpay-kiosk-reset-browser.timer"]
# What a build machine cannot have: the installed programs and the kiosk's own user.
TOLERATED = [
    re.compile(r"^\S+: Command /opt/patronpay/.venv/bin/patronpay is not executable: No such file or directory$"),
    re.compile(r"^\S+: Command /usr/bin/(sway|chromium|systemctl) is not executable: No such file or directory$"),
    re.compile(r"^\S+: Failed to resolve user kiosk: .*$"),
]


def lines(unit: str, section: str) -> list[str]:
    """The `Key=value` lines of one section, in order, comments dropped."""
    out, current = [], None
    for raw in (SYSTEMD / unit).read_text().splitlines():
        line = raw.strip()
        if not line or line.startswith("#"):
            continue
        if line.startswith("["):
            current = line.strip("[]")
        elif current == section:
            out.append(line)
    return out


@pytest.mark.parametrize("unit", UNITS)
def test_systemd_analyze_verify_is_clean(unit):
    if shutil.which("systemd-analyze") is None:
        pytest.fail("systemd-analyze is missing: install Debian's systemd (bash .ci/run does)")
    result = subprocess.run(["systemd-analyze", "verify", str(SYSTEMD / unit)],
                            capture_output=True, text=True, timeout=60, cwd=SYSTEMD)
    output = [line for line in (result.stdout + result.stderr).splitlines() if line.strip()]
    unexpected = [line for line in output if not any(p.match(line) for p in TOLERATED)]
    assert unexpected == [], "\n".join(output)
    if not output:
        assert result.returncode == 0


def test_agent_unit_has_the_decided_lines():
    service = lines("patronpay-kiosk-agent.service", "Service")
    unit = lines("patronpay-kiosk-agent.service", "Unit")
    assert "Wants=modprobe@cdc_acm.service modprobe@usbserial.service network-online.target" in unit
    assert "After=modprobe@cdc_acm.service modprobe@usbserial.service network-online.target" in unit
    for line in [
        "Type=notify", "ExecStart=/opt/patronpay/.venv/bin/patronpay kiosk --host 127.0.0.1 --port 8080",
        "Restart=always", "WatchdogSec=30", "DynamicUser=yes", "SupplementaryGroups=dialout",
        "StateDirectory=kiosk-agent", "RuntimeDirectory=kiosk-agent", "DevicePolicy=closed",
        "DeviceAllow=char-ttyACM rw", "DeviceAllow=char-ttyUSB rw", "UMask=0077", "LimitCORE=0",
        "ProtectSystem=strict", "ProtectHome=yes", "PrivateTmp=yes", "NoNewPrivileges=yes",
        "ProtectClock=yes", "ProtectKernelTunables=yes", "ProtectKernelModules=yes",
        "ProtectControlGroups=yes", "ProtectHostname=yes", "LockPersonality=yes",
        "RestrictNamespaces=yes", "RestrictRealtime=yes",
        "RestrictAddressFamilies=AF_UNIX AF_INET AF_INET6", "CapabilityBoundingSet=",
        "SystemCallArchitectures=native", "SystemCallFilter=@system-service",
        "SystemCallErrorNumber=EPERM", "MemoryDenyWriteExecute=yes",
    ]:
        assert line in service, line
    # PrivateDevices would hide the reader; ProtectClock adds a DeviceAllow, so the serial
    # groups must be listed explicitly (they are, above).
    assert not [line for line in service if line.startswith("PrivateDevices")]
    assert lines("patronpay-kiosk-agent.service", "Install") == ["WantedBy=multi-user.target"]


def test_agent_unit_passes_the_secret_as_a_credential():
    service = lines("patronpay-kiosk-agent.service", "Service")
    assert "LoadCredential=kiosk-secret:/etc/patronpay/kiosk-secret" in service
    assert "Environment=PATRONPAY_KIOSK_SECRET_FILE=%d/kiosk-secret" in service
    example = (SYSTEMD / "patronpay-kiosk-agent.env.example").read_text()
    assert "PATRONPAY_KIOSK_SECRET=" not in example


def test_browser_unit_runs_sway_on_tty1():
    service = lines("patronpay-kiosk-browser.service", "Service")
    unit = lines("patronpay-kiosk-browser.service", "Unit")
    assert "Conflicts=getty@tty1.service" in unit
    assert ("After=systemd-user-sessions.service plymouth-quit-wait.service "
            "patronpay-kiosk-agent.service") in unit
    assert "Wants=patronpay-kiosk-agent.service" in unit
    for line in ["User=kiosk", "PAMName=patronpay-kiosk", "TTYPath=/dev/tty1", "TTYReset=yes", "TTYVHangup=yes",
                 "TTYVTDisallocate=yes", "StandardInput=tty-fail", "UtmpIdentifier=tty1",
                 "UtmpMode=user", "RuntimeDirectory=kiosk-browser", "Restart=always",
                 "Environment=XKB_DEFAULT_LAYOUT=us XDG_CONFIG_HOME=/run/kiosk-browser/config "
                 "XDG_CACHE_HOME=/run/kiosk-browser/cache"]:
        assert line in service, line
    assert "ExecStart=/usr/bin/sway --config /etc/patronpay/kiosk-sway.config" in service
    assert lines("patronpay-kiosk-browser.service", "Install") == ["WantedBy=graphical.target"]
    pam = (SYSTEMD / "patronpay-kiosk.pam").read_text()
    assert "session   required  pam_systemd.so" in pam


def sway_commands() -> list[str]:
    return [line.strip() for line in (SYSTEMD / "patronpay-kiosk-sway.config").read_text()
            .splitlines() if line.strip() and not line.lstrip().startswith("#")]


def test_sway_shows_chromium_as_an_app_window_and_exits_with_it():
    commands = sway_commands()
    for line in ["xwayland disable", "default_border none", "default_floating_border none"]:
        assert line in commands, line
    assert not [line for line in commands if line.startswith(("bindsym", "bindcode", "bar"))]
    chromium = shlex.split(next(c for c in commands if "/usr/bin/chromium" in c))
    assert chromium[0] == "exec"
    assert chromium[1].split() == [
        "/usr/bin/chromium", "--ozone-platform=wayland", "--app=http://127.0.0.1:8080/kiosk/",
        "--enable-wayland-ime", "--wayland-text-input-version=3", "--no-first-run",
        "--noerrdialogs", "--hide-crash-restore-bubble", "--disable-features=Translate",
        "--disable-pinch", "--overscroll-history-navigation=0", "--pull-to-refresh=0",
        "--password-store=basic", "--check-for-update-interval=31536000",
        "--user-data-dir=/run/kiosk-browser/profile;", "swaymsg", "exit"]


def test_sway_runs_the_digits_keypad_hidden_until_a_field_has_the_focus():
    keypad = shlex.split(next(c for c in sway_commands() if "wvkbd" in c))
    assert keypad[:5] == ["exec", "/opt/patronpay/.venv/bin/python", "-m", "kiosk.touch_keyboard",
                          "--"]
    assert keypad[5] == "/usr/bin/wvkbd-mobintl"
    assert "--hidden" in keypad and keypad[keypad.index("-l") + 1] == "dialer"
    assert keypad[keypad.index("--landscape-layers") + 1] == "dialer"
    assert "-o" not in keypad and "-O" not in keypad  # wvkbd would print every key pressed


def test_reset_browser_path_restarts_the_browser():
    assert lines("patronpay-kiosk-reset-browser.path", "Path") == [
        "PathChanged=/run/kiosk-agent/reset-browser", "Unit=patronpay-kiosk-reset-browser.service"]
    assert lines("patronpay-kiosk-reset-browser.service", "Service") == [
        "Type=oneshot", "ExecStart=/usr/bin/systemctl restart patronpay-kiosk-browser.service"]
    assert "Unit=patronpay-kiosk-reset-browser.service" in lines("patronpay-kiosk-reset-browser.timer", "Timer")


def test_units_parse_as_ini():
    for unit in UNITS:
        parser = configparser.ConfigParser(strict=False, interpolation=None)
        parser.optionxform = str  # type: ignore[assignment]
        parser.read_string((SYSTEMD / unit).read_text())
        assert parser.sections()[0] == "Unit"


def test_chromium_policy_allows_only_the_kiosk_cashnet_and_the_return_route():
    policy = json.loads((SYSTEMD / "chromium-kiosk-policy.json").read_text())
    # "*" leaves chrome://settings, chrome://inspect and chrome://downloads open.
    assert policy["URLBlocklist"] == ["*", "chrome://*"]
    # Chromium 156's replacement for the two booleans; they stay while Chromium honours them, as
    # only they switch autofill off in its settings (docs/kiosk.md#the-kiosk-browser).
    assert policy["AutofillSettings"] == [{"url_pattern": "*", "blocked_types": ["all"]}]
    assert policy["URLAllowlist"] == ["http://127.0.0.1:8080", "https://commerce.cashnet.com",
                                      "https://pay.library.example.edu/cashnet/return"]
    assert {key: policy[key] for key in (
        "AutofillCreditCardEnabled", "AutofillAddressEnabled", "PasswordManagerEnabled",
        "BrowserSignin", "SyncDisabled", "DeveloperToolsAvailability", "TranslateEnabled",
        "DownloadRestrictions", "PrintingEnabled")} == {
        "AutofillCreditCardEnabled": False, "AutofillAddressEnabled": False,
        "PasswordManagerEnabled": False, "BrowserSignin": 0, "SyncDisabled": True,
        "DeveloperToolsAvailability": 2, "TranslateEnabled": False, "DownloadRestrictions": 3,
        "PrintingEnabled": False}
    assert not any("<" in url or "localhost" in url for url in policy["URLAllowlist"])
