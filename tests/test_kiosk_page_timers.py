"""The kiosk pages' timer and keyboard-wedge logic (site/kiosk/timers.js, site/kiosk/wedge.js),
run in node: idle 90 s -> a 30 s warning -> reset, unlimited extensions, deadlines from the wall
clock (a late tick cannot stretch a limit), the receipt countdown, and wedge bursts."""

from __future__ import annotations

import json
import shutil
import subprocess
from pathlib import Path

import pytest

KIOSK_JS = Path(__file__).resolve().parent.parent / "site" / "kiosk"

@pytest.fixture(autouse=True)
def node_installed():
    if shutil.which("node") is None:
        pytest.fail("node is missing: install Debian's nodejs (bash .ci/run does)")


def run_js(body: str):
    """Run `body` in node with the two modules loaded; it returns a JSON-able value."""
    script = (f"const {{ IdleTimer, Countdown, secondsLeft }} = require({json.dumps(str(KIOSK_JS / 'timers.js'))});\n"
              f"const {{ WedgeBuffer }} = require({json.dumps(str(KIOSK_JS / 'wedge.js'))});\n"
              f"const result = (() => {{ {body} }})();\n"
              "process.stdout.write(JSON.stringify(result));\n")
    done = subprocess.run(["node", "-e", script], capture_output=True, text=True, timeout=30)
    assert done.returncode == 0, done.stderr
    return json.loads(done.stdout)


def test_idle_then_warning_then_expiry():
    assert run_js("""
        const t = new IdleTimer(90000, 30000, 1000);
        return [0, 89999, 90000, 90001, 119999, 120000, 500000].map((ms) => t.state(1000 + ms));
    """) == [
        {"phase": "active", "remainingMs": 90000},
        {"phase": "active", "remainingMs": 1},
        {"phase": "warning", "remainingMs": 30000},
        {"phase": "warning", "remainingMs": 29999},
        {"phase": "warning", "remainingMs": 1},
        {"phase": "expired", "remainingMs": 0},
        {"phase": "expired", "remainingMs": 0},
    ]


def test_activity_restarts_the_idle_period_but_not_the_warning():
    assert run_js("""
        const t = new IdleTimer(90000, 30000, 0);
        const out = [t.activity(50000), t.state(50000 + 89000).phase];
        out.push(t.activity(50000 + 95000));           // during the warning: no effect
        out.push(t.state(50000 + 95000).phase);
        out.push(t.extend(50000 + 100000));            // "I need more time"
        out.push(t.state(50000 + 100000 + 89999).phase);
        out.push(t.state(50000 + 100000 + 120000).phase);
        out.push(t.extend(50000 + 100000 + 120000));   // too late: the kiosk is resetting
        out.push(t.activity(50000 + 100000 + 120000));
        out.push(t.state(50000 + 100000 + 120000 + 1).phase);
        return out;
    """) == [True, "active", False, "warning", True, "active", "expired", False, False, "expired"]


def test_extensions_are_unlimited():
    assert run_js("""
        const t = new IdleTimer(90000, 30000, 0);
        let now = 0;
        for (let i = 0; i < 25; i++) {
            now += 90000 + 29000;                       // warned, 1 s left
            if (t.state(now).phase !== "warning") return ["not warned", i];
            if (!t.extend(now)) return ["refused", i];
        }
        return [t.extensions, t.state(now).phase];
    """) == [25, "active"]


def test_a_late_tick_cannot_stretch_the_limit():
    # The page's 250 ms interval may be throttled; the first tick after a long pause sees the
    # real time and expires at once, instead of counting down from where it left off.
    assert run_js("""
        const t = new IdleTimer(90000, 30000, 0);
        return [t.state(30000).phase, t.state(600000).phase, t.state(30000).phase];
    """) == ["active", "expired", "expired"]


def test_receipt_countdown_and_the_shown_seconds():
    assert run_js("""
        const c = new Countdown(30000, 0);
        const out = [secondsLeft(c.remainingMs(0)), secondsLeft(c.remainingMs(800)),
                     secondsLeft(c.remainingMs(29001)), c.expired(29999), c.expired(30000)];
        const d = new Countdown(30000, 0);
        out.push(d.extend(25000), secondsLeft(d.remainingMs(25000)), d.expired(54999), d.expired(55000));
        out.push(d.extend(60000));
        return out;
    """) == [30, 30, 1, False, True, True, 30, False, True, False]


def test_wedge_bursts():
    assert run_js("""
        const w = new WedgeBuffer({ maxGapMs: 100, minLen: 4 });
        const type = (text, start, gap) => {
            const out = [];
            [...text].forEach((key, i) => out.push(w.key(key, start + i * gap, false)));
            return out;
        };
        const results = {};
        // A scanner: fast keys, then Enter.
        results.scan = type("23191000105866", 0, 5).map((o) => o.action[0]).join("")
            + "|" + JSON.stringify(w.key("Enter", 70, false));
        // A person typing slowly: each key starts over, and a slow Enter is just Enter.
        results.slow = type("2319", 1000, 300).map((o) => o.action[0]).join("")
            + "|" + JSON.stringify(w.key("Enter", 2200, false));
        // Too short a burst: swallowed, not submitted.
        type("123", 5000, 5);
        results.short = JSON.stringify(w.key("Enter", 5020, false));
        // Enter on its own (a button) passes through, as do modifiers and named keys.
        results.enter = JSON.stringify(w.key("Enter", 9000, false));
        results.ctrl = JSON.stringify(w.key("c", 9100, true));
        results.shift = JSON.stringify(w.key("Shift", 9200, false));
        // A gap longer than 100 ms inside a burst discards what came before it.
        type("2319", 10000, 5);
        results.gap = JSON.stringify(w.key("1", 10300, false)) + JSON.stringify(w.key("Enter", 10305, false));
        // A 10 kB burst is capped (the agent refuses it as too long); Tab can be a terminator.
        const tab = new WedgeBuffer({ terminators: ["Tab"] });
        for (let i = 0; i < 10000; i++) tab.key("2", 20000 + i, false);
        const long = tab.key("Tab", 30000, false);
        results.long = [long.action, long.data.length];
        return results;
    """) == {
        "scan": "c" * 14 + '|{"action":"submit","data":"23191000105866"}',
        "slow": "cccc|" + '{"action":"pass"}',
        "short": '{"action":"capture"}',
        "enter": '{"action":"pass"}',
        "ctrl": '{"action":"pass"}',
        "shift": '{"action":"pass"}',
        "gap": '{"action":"capture"}{"action":"capture"}',
        "long": ["submit", 300],
    }
