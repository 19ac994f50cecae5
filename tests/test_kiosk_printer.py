"""The kiosk's receipt printer (issue 19, item 1): a payment at the kiosk prints one receipt with
the exact lines, read back from the virtual printer (a real port-9100 server the agent reaches
through python-escpos's Network connection); paper out, cover open and offline are reported
plainly, the web receipt's code is offered instead, and the payment is never affected; the
printer's state is on /healthz; `PATRONPAY_KIOSK_PRINTER` takes the documented forms and refuses
anything else in one line."""

from __future__ import annotations

import socket
from datetime import UTC, datetime
from pathlib import Path

import pytest
from support.kiosk import MARIA, Kiosk
from support.waiting import wait_for

from kiosk import printer as kiosk_printer
from kiosk.printer import PrinterConnection, parse_printer
from kiosk.receipt_text import SlipContext, receipt_lines, slip_strings
from kiosk.settings import KioskConfigError, load_kiosk_settings
from sandbox.printer import VirtualPrinter

SITE = Path(__file__).resolve().parent.parent / "site"
LOST, OVERDUE, DAMAGED = "7730018830004146", "7730012450004146", "7730020010004146"
ENV = {"PATRONPAY_KIOSK_ID": "lib1", "PATRONPAY_KIOSK_SECRET": "s" * 32,
       "PATRONPAY_KIOSK_PROXY_URL": "https://pay.library.example.edu"}


@pytest.fixture
def printer(tmp_path):
    virtual = VirtualPrinter(tmp_path / "receipts").start()
    yield virtual
    virtual.close()


def kiosk_with(kiosk, printer: VirtualPrinter, **overrides) -> Kiosk:
    return kiosk(printer=parse_printer(printer.connection), library_name="Anytown Library",
                 **overrides)


def pay_at_the_kiosk(k: Kiosk) -> tuple[str, dict]:
    """Maria scans, pays two fees in part on CashNet, and her browser comes back; the
    payment is posted. Returns the session handle and the proxy's payment."""
    d = k.d
    assert k.scan(MARIA)["result"] == "accepted"
    handle = k.handle()
    page = k.page()
    fees = page.get("/api/fees", params={"handle": handle})
    assert fees.status_code == 200
    created = page.post("/api/payments", json={"fee_ids": [OVERDUE, DAMAGED], "amount": "15.00"},
                        headers={"X-CSRF-Token": handle})
    assert created.status_code == 201, created.text
    payment_id = created.json()["payment"]["id"]
    completion = d.cashnet.complete(d.hand_off(created.json()["checkout"]), outcome="pay")
    d.wait_for_state(payment_id, "posted")
    assert d.follow_signout(completion).status_code == 303
    current = page.get("/api/payments/current", params={"handle": handle})
    assert current.json()["payment"]["state"] == "posted"
    return handle, current.json()["payment"]


def print_receipt(k: Kiosk, handle: str, language: str = "en"):
    return k.page().post("/api/receipt/print", json={"language": language},
                         headers={"X-CSRF-Token": handle})


def local_minute(iso: str) -> str:
    return datetime.fromisoformat(iso.replace("Z", "+00:00")).astimezone().strftime(
        "%Y-%m-%d %H:%M")


# -- the settings ----------------------------------------------------------------------------------


@pytest.mark.parametrize(("text", "expected"), [
    ("", None),
    ("network:10.0.0.7", PrinterConnection("network", "10.0.0.7", port=9100)),
    ("network:printer.lib.example.edu:9101", PrinterConnection("network", "printer.lib.example.edu",
                                                               port=9101)),
    ("network:[::1]:9100", PrinterConnection("network", "::1", port=9100)),
    ("serial:/dev/ttyUSB0", PrinterConnection("serial", "/dev/ttyUSB0", baud=9600)),
    ("serial:/dev/serial/by-id/usb-Epson-if00:38400",
     PrinterConnection("serial", "/dev/serial/by-id/usb-Epson-if00", baud=38400)),
    ("file:/dev/usb/lp0", PrinterConnection("file", "/dev/usb/lp0")),
])
def test_printer_connections(text, expected):
    assert parse_printer(text) == expected


@pytest.mark.parametrize(("text", "reason"), [
    ("cups:receipt", "use network:HOST[:PORT], serial:DEVICE[:BAUD], usb:VENDOR:PRODUCT (hex ids) "
                     "or file:DEVICE"),
    ("network:", "network: needs a host name or address, e.g. network:10.0.0.7:9100"),
    ("network:10.0.0.7:99999", "the port must be a number from 1 to 65535"),
    ("serial:ttyUSB0", "serial: needs an absolute device path, e.g. serial:/dev/ttyUSB0"),
    ("serial:/dev/ttyUSB0:12", "the baud rate must be a number from 1200 to 921600"),
    ("usb:04b8", "usb: needs the vendor and product ids in hex, e.g. usb:04b8:0e15 (see lsusb)"),
    ("file:lp0", "file: needs an absolute device path, e.g. file:/dev/usb/lp0"),
])
def test_a_bad_printer_setting_stops_the_agent_with_one_line(text, reason):
    with pytest.raises(KioskConfigError) as refused:
        load_kiosk_settings(ENV | {"PATRONPAY_KIOSK_PRINTER": text})
    assert str(refused.value) == f"PATRONPAY_KIOSK_PRINTER is not valid: {reason} (got {text!r})"
    assert "\n" not in str(refused.value)


def test_usb_needs_pyusb_and_libusb(monkeypatch):
    monkeypatch.setattr(kiosk_printer, "usb_available", lambda: False)
    with pytest.raises(KioskConfigError, match="pip install pyusb; apt-get install libusb-1.0-0"):
        load_kiosk_settings(ENV | {"PATRONPAY_KIOSK_PRINTER": "usb:04b8:0e15"})
    monkeypatch.setattr(kiosk_printer, "usb_available", lambda: True)
    settings = load_kiosk_settings(ENV | {"PATRONPAY_KIOSK_PRINTER": "usb:0x4B8:E15",
                                          "PATRONPAY_KIOSK_RECEIPT_TITLES": "true"})
    assert (settings.printer, settings.receipt_titles) == (PrinterConnection("usb", "04b8:0e15"),
                                                           True)


# -- what a receipt says ---------------------------------------------------------------------------


PAYMENT = {"id": "0123456789abcdef0123456789abcdef", "state": "paid", "amount": "1250.50",
           "currency": "USD", "paid": "2025-03-14T10:40:05Z", "cashnet_tx": "TX\x1b@42",
           "allocations": [{"fee_id": "1", "fee_type": "LOSTITEMREPLACEMENTFEE",
                            "fee_label": "Lost item (replacement)", "amount": "1250.50"}]}


def test_a_receipt_in_spanish_says_posting_is_under_way_and_keeps_commands_out():
    lines = receipt_lines(PAYMENT, SlipContext("lib1", "", "Circulación, 555-0100",
                                               {"1": "Cien años de soledad\x1dV"}),
                          slip_strings(SITE, "es"), "es", tz=UTC)
    assert [line.text for line in lines] == [
        "Biblioteca",
        "Recibo de pago",
        "-" * 32,
        "Quiosco                     lib1",
        "Fecha           2025-03-14 10:40",
        "-" * 32,
        "Monto                  $1,250.50",
        "Transacción de CashNet    TX @42",
        "Referencia del pago",
        "0123456789abcdef0123456789abcdef",
        "-" * 32,
        "Cargos pagados",
        "Cargo por reposición de material",
        "perdido",
        "                       $1,250.50",
        "  Cien años de soledad V",
        "-" * 32,
        "Pago recibido. Su cuenta de la",
        "biblioteca se está actualizando.",
        "¿Preguntas? Circulación,",
        "555-0100",
    ]
    assert [(line.align, line.bold) for line in lines[:2]] == [("center", True), ("center", False)]
    assert all("\x1b" not in line.text and "\x1d" not in line.text for line in lines)


def test_no_receipt_for_a_payment_not_paid():
    for state in ("pending", "declined", "cancelled", "expired"):
        with pytest.raises(ValueError):
            receipt_lines(PAYMENT | {"state": state}, SlipContext("lib1"),
                          slip_strings(SITE, "en"))


# -- at the kiosk ----------------------------------------------------------------------------------


def test_a_payment_at_the_kiosk_prints_one_receipt_with_the_exact_lines(kiosk, printer):
    k = kiosk_with(kiosk, printer)
    wait_for(lambda: k.page().get("/healthz").json() == {"status": "ok", "reader": "none",
                                                         "printer": "ready"}, "the printer check")
    handle, payment = pay_at_the_kiosk(k)
    session = k.page().get("/api/session").json()
    assert (session["settings"]["printer"], session["printer"]) == (True, "ready")

    answer = print_receipt(k, handle)
    assert answer.json() == {"printed": True, "printer": "ready", "web_receipt": False}
    [receipt] = printer.wait_for(1)
    assert receipt.texts == [
        "Anytown Library",
        "Payment receipt",
        "--------------------------------",
        "Kiosk                       lib1",
        f"Date            {local_minute(payment['paid'])}",
        "--------------------------------",
        "Amount                    $15.00",
        f"CashNet transaction{payment['cashnet_tx']:>13}",
        "Payment reference",
        payment["id"],
        "--------------------------------",
        "Fees paid",
        "Overdue fine               $4.75",
        "Damaged item fine         $10.25",
        "--------------------------------",
        "Payment complete. Your library",
        "account is updated.",
        "Questions? Ask at the library's",
        "service desk.",
    ]
    assert len(payment["cashnet_tx"]) <= 12  # it fits beside its label
    text = receipt.text_file.read_text(encoding="utf-8")
    assert text.splitlines()[0] == "        Anytown Library"  # centred on the roll
    assert receipt.image_file.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    # Never the card, the patron's id or name, or a title (not asked for).
    for secret in (MARIA, MARIA[-4:], "mkowalski", "Maria", "Kowalski", "scientific"):
        assert secret not in text

    # One receipt per payment.
    again = print_receipt(k, handle)
    assert (again.status_code, again.json()["error"]["code"]) == (409, "already_printed")
    assert len(printer.receipts) == 1


def test_titles_print_only_when_the_library_asks(kiosk, printer):
    k = kiosk_with(kiosk, printer, receipt_titles=True, receipt_contact="Circulation desk")
    handle, _ = pay_at_the_kiosk(k)
    assert print_receipt(k, handle, "es").json()["printed"] is True
    [receipt] = printer.wait_for(1)
    texts = receipt.texts
    assert texts[1] == "Recibo de pago"
    fee = texts.index("Multa por retraso          $4.75")
    assert texts[fee + 1].startswith("  ") and len(texts[fee + 1]) > 2  # its title, indented
    assert texts[-1] == "¿Preguntas? Circulation desk"


def test_paper_out_is_shown_and_the_payment_still_posts(kiosk, printer):
    printer.set_state("paper_out")
    k = kiosk_with(kiosk, printer)
    handle, payment = pay_at_the_kiosk(k)  # posted, whatever the printer
    assert k.d.ledger.payment(payment["id"]).state == "posted"

    answer = print_receipt(k, handle)
    assert answer.status_code == 200
    assert answer.json() == {"printed": False, "printer": "paper_out", "web_receipt": True}
    assert printer.receipts == []
    assert k.page().get("/healthz").json()["printer"] == "paper_out"
    code = k.page().get("/api/receipt/code.svg", params={"handle": handle})
    assert code.status_code == 200 and code.headers["content-type"] == "image/svg+xml"
    assert code.text.startswith("<svg") and "<path" in code.text
    assert k.d.ledger.payment(payment["id"]).state == "posted"

    # Paper in: the patron taps again and gets the receipt.
    printer.set_state("ready")
    assert print_receipt(k, handle).json() == {"printed": True, "printer": "ready",
                                               "web_receipt": False}
    assert len(printer.wait_for(1)) == 1


@pytest.mark.parametrize("state", ["cover_open", "offline", "paper_low"])
def test_the_printers_state_on_healthz(kiosk, printer, state):
    k = kiosk_with(kiosk, printer)
    printer.set_state(state)
    assert k.app.state.receipts.printer.check() == state
    assert k.page().get("/healthz").json() == {"status": "ok", "reader": "none", "printer": state}


def test_a_printer_that_does_not_answer_is_offline(kiosk):
    # A port held but not listening: connections are refused. (A closed listener's port would
    # not do: a connection to a free port of this machine can meet itself, TCP's
    # simultaneous open, and read its own query back.)
    with socket.socket() as switched_off:
        switched_off.bind(("127.0.0.1", 0))
        port = switched_off.getsockname()[1]
        k = kiosk(printer=PrinterConnection("network", "127.0.0.1", port=port))
        assert k.app.state.receipts.printer.check() == "offline"
        wait_for(lambda: k.page().get("/healthz").json()["printer"] == "offline", "offline")
        assert k.scan(MARIA)["result"] == "accepted"
        assert print_receipt(k, k.handle()).json()["error"]["code"] == "no_payment"


def test_no_printer_no_print_button(kiosk):
    k = kiosk()
    assert "printer" not in k.page().get("/api/session").json()["settings"]
    assert k.scan(MARIA)["result"] == "accepted"
    answer = print_receipt(k, k.handle())
    assert (answer.status_code, answer.json()["error"]["code"]) == (404, "no_printer")


def test_nothing_prints_before_the_payment_is_paid(kiosk, printer):
    k = kiosk_with(kiosk, printer)
    assert k.scan(MARIA)["result"] == "accepted"
    handle = k.handle()
    assert print_receipt(k, handle).json()["error"]["code"] == "no_payment"
    created = k.page().post("/api/payments", json={"fee_ids": [OVERDUE]},
                            headers={"X-CSRF-Token": handle})
    assert created.status_code == 201
    answer = print_receipt(k, handle)
    assert (answer.status_code, answer.json()["error"]["code"]) == (409, "not_paid")
    assert printer.receipts == []
