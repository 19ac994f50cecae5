"""The pages' money and fee labels (site/money.js, site/fees.js, site/payment_status.js), run in
node: amounts parsed to exact cents (credits too) or refused, written back exactly, shown as
a patron reads them in English and Spanish; a fee's type name and why it has no checkbox."""

from __future__ import annotations

import json
import shutil
import subprocess
from pathlib import Path

import pytest

SITE = Path(__file__).resolve().parent.parent / "site"
LOCALES = SITE / "locales"


@pytest.fixture(autouse=True)
def node_installed():
    if shutil.which("node") is None:
        pytest.fail("node is missing: install Debian's nodejs (bash .ci/run does)")


def run_js(body: str):
    """Run `body` in node with the page modules loaded; it returns a JSON-able value."""
    script = (
        f"const Money = require({json.dumps(str(SITE / 'money.js'))});\n"
        f"const FeeLabels = require({json.dumps(str(SITE / 'fees.js'))});\n"
        f"const PaymentStatus = require({json.dumps(str(SITE / 'payment_status.js'))});\n"
        f"const result = (() => {{ {body} }})();\n"
        "process.stdout.write(JSON.stringify(result === undefined ? null : result));\n")
    done = subprocess.run(["node", "-e", script], capture_output=True, text=True, timeout=30)
    assert done.returncode == 0, done.stderr
    return json.loads(done.stdout)


def cents(*amounts):
    return run_js(f"return {json.dumps(amounts)}.map(Money.cents);")


def test_amounts_become_exact_cents():
    assert cents("12.50", "12", "0.5", "0.05", "0", "0.00", "1250.00", "99999999.99") == [
        1250, 1200, 50, 5, 0, 0, 125000, 9999999999]


def test_credits_are_negative_cents():
    # The kiosk's old copy made "-5.25" into -475 (-500 + 25).
    assert cents("-5.25", "-5.00", "-0.50", "-0.01", "-12") == [-525, -500, -50, -1, -1200]
    assert run_js('return Object.is(Money.cents("-0.00"), 0);') is True  # never a "-0"


def test_no_float_drift_where_floats_go_wrong():
    # 0.1 + 0.2 and 1.15 * 100 are not what they seem in floating point; cents are.
    assert cents("0.10", "0.20", "1.15", "4.35", "19.99") == [10, 20, 115, 435, 1999]
    assert run_js('return Money.amountText(["0.10", "0.20"].map(Money.cents).reduce((a, b) => a + b));'
                  ) == "0.30"


REFUSED = ["", " ", "1e3", "12.345", "12.", ".5", "-", "+1", " 12", "12 ", "1,250", "$12",
           "12,50", "abc", "NaN", "Infinity", "0x10", "--1", "1-", "١٢", "99999999999999999999.00"]


def test_anything_else_is_refused_not_guessed():
    assert dict(zip(REFUSED, cents(*REFUSED), strict=True)) == dict.fromkeys(REFUSED)


def test_only_strings_are_amounts():
    assert run_js("return [12.5, 12, null, undefined, {}, []].map(Money.cents);") == [None] * 6


def test_cents_are_written_back_exactly():
    assert run_js("return [1250, 1200, 50, 5, 0, -525, -50, -1, 9999999999].map(Money.amountText);") == [
        "12.50", "12.00", "0.50", "0.05", "0.00", "-5.25", "-0.50", "-0.01", "99999999.99"]
    # Round trip for every cent around the sign.
    assert run_js("""
        for (let c = -1000; c <= 1000; c++) if (Money.cents(Money.amountText(c)) !== c) return c;
        return "ok";
    """) == "ok"


def test_amount_text_refuses_what_is_not_whole_cents():
    assert run_js("""
        return [12.5, NaN, null, "12"].map((value) => {
            try { return Money.amountText(value); } catch (error) { return error.name; }
        });
    """) == ["RangeError"] * 4


TYPED = {
    "12.50": 1250, "12": 1200, "12.5": 1250, "$12.50": 1250, "$ 7": 700, "  30  ": 3000,
    "1,250": 125000, "1,250.75": 125075, "0.01": 1, "-5.00": None, "12.345": None, "1e3": None,
    "": None, "12,50": None, "1,25": None, "12.": None, "€12": None, "twelve": None,
}


def test_what_a_patron_types_on_the_web_page():
    assert run_js(f"""
        return Object.fromEntries(Object.keys({json.dumps(TYPED)}).map(
            (typed) => [typed, Money.typedCents(typed)]));
    """) == TYPED


@pytest.mark.parametrize(("locale", "shown"), [
    ("en-US", ["$12.50", "-$5.25", "$0.00", "$1,250.00", "—", "—"]),
    ("es-US", ["$12.50", "-$5.25", "$0.00", "$1,250.00", "—", "—"]),
])
def test_what_a_patron_sees(locale, shown):
    assert run_js(f"""
        return ["12.50", "-5.25", "0", "1250.00", "1e3", "12.345"].map(
            (amount) => Money.formatAmount(amount, "USD", {json.dumps(locale)}));
    """) == shown


def test_big_amounts_are_shown_to_the_cent():
    # Through a float, "90071992547409.91" would show as $90,071,992,547,409.90.
    assert run_js('return Money.formatAmount("90071992547409.91", "USD", "en-US");') == (
        "$90,071,992,547,409.91")


def test_the_currency_is_the_fees_own():
    assert run_js('return Money.formatCents(-525, "EUR", "en-US");') == "-€5.25"


def strings(lang: str) -> dict[str, str]:
    return json.loads((LOCALES / f"{lang}.json").read_text(encoding="utf-8"))


def fee_type_labels(lang: str, types: list[tuple[str, str | None]]):
    i18n = {"lang": lang, "strings": strings(lang)}
    return run_js(f"""
        const i18n = {json.dumps(i18n)};
        return {json.dumps(types)}.map(([code, label]) => FeeLabels.feeTypeLabel(code, label, i18n));
    """)


def test_fee_types_in_english_keep_the_librarys_own_names():
    assert fee_type_labels("en", [("OVERDUEFINE", "Late fine (Main Library)"), ("CREDIT", "Credit"),
                                  ("LIBRARYSPECIAL", "Makerspace fee"), ("OTHER", None)]) == [
        "Late fine (Main Library)", "Credit", "Makerspace fee", "OTHER"]


def test_fee_types_in_spanish_are_translated_when_we_know_them():
    assert fee_type_labels("es", [("OVERDUEFINE", "Late fine (Main Library)"), ("CREDIT", "Credit"),
                                  ("LIBRARYSPECIAL", "Makerspace fee")]) == [
        strings("es")["feetype.OVERDUEFINE"], "Crédito", "Makerspace fee"]


def test_why_a_fee_has_no_checkbox():
    assert run_js("""
        return [
            { payable: true, balance: "12.50" },
            { payable: false, balance: "-5.00" },   // a credit: money owed to the patron
            { payable: false, balance: "-0.01" },
            { payable: false, balance: "12.50" },   // a type the library takes at the desk
            { payable: false, balance: "0.00" },
            { payable: false, balance: "garbled" },
        ].map(FeeLabels.feeNote);
    """) == [None, "credit", "credit", "not_payable", "not_payable", "not_payable"]
    # What the patron reads for each, in the pages' words.
    assert (strings("en")["fees.credit"], strings("es")["fees.credit"]) == ("Credit", "Crédito")
    assert strings("es")["kiosk.fees.credit"] == "Crédito"


def test_payment_states_and_polling_are_one_list_for_every_page():
    assert run_js("""
        return [PaymentStatus.PAID, PaymentStatus.NOT_PAID, PaymentStatus.POLL_EVERY_MS,
                PaymentStatus.POLL_FOR_MS, Object.isFrozen(PaymentStatus.PAID)];
    """) == [["paid", "posted", "attention", "resolved"], ["declined", "cancelled", "expired"],
             2000, 120000, True]
    # Every state has words on the web receipt and the kiosk.
    english = strings("en")
    for state in ["pending", "paid", "posted", "attention", "resolved", "declined", "cancelled",
                  "expired"]:
        assert f"receipt.state.{state}" in english and f"kiosk.state.{state}" in english


def test_what_paying_here_charges_under_each_credit_policy():
    assert run_js("""
        return [
            Money.chargeCents(1750, 400, "show"), Money.chargeCents(1750, 400, "net"),
            Money.chargeCents(350, 400, "net"), Money.chargeCents(1750, 0, "net"),
            Money.chargeCents(1750, 400, undefined),
        ];
    """) == [1750, 1350, 0, 1750, 1750]


def test_the_servers_note_says_why_a_fee_has_no_checkbox():
    assert run_js("""
        return [
            { payable: false, balance: "45.00", note: "billed" },
            { payable: false, balance: null, note: "inexact" },
            { payable: false, balance: "-4.00", note: "credit" },
            { payable: false, balance: "5.00", note: "something new" },
        ].map(FeeLabels.feeNote);
    """) == ["billed", "inexact", "credit", "not_payable"]


def test_the_lines_under_the_fees():
    keys = ('{ owed: "o", credit_show: "cs", credit_net: "cn", inexact_one: "i1", '
            'inexact_many: "in" }')
    assert run_js(f"""
        const keys = {keys};
        const money = (amount) => `$${{amount}}`;
        return [
            FeeLabels.summaryLines({{ owed_total: "17.50", credit_total: "4.00",
                                      credit_policy: "net", inexact_count: 2 }}, keys, money),
            FeeLabels.summaryLines({{ owed_total: "0.00", credit_total: "0.00",
                                      credit_policy: "show", inexact_count: 0 }}, keys, money),
        ];
    """) == [
        {"owed": ["o", {"amount": "$17.50"}], "credit": ["cn", {"amount": "$4.00"}],
         "inexact": ["in", {"count": "2"}]},
        {"owed": ["o", {"amount": "$0.00"}], "credit": None, "inexact": None},
    ]


def test_the_pages_know_exactly_the_servers_payment_states():
    """The pages' lists of states (payment_status.js for the receipts, payments.js for the
    patron's payments) are proxy/states.py's, so a state added on the server is not shown as
    "other" or polled for ever."""
    from proxy.states import PaymentState

    payments_js = json.dumps(str(SITE / "payments.js"))
    paid, not_paid, worded = run_js(f"""
        const MyPayments = require({payments_js});
        const states = {json.dumps([str(state) for state in PaymentState])};
        return [PaymentStatus.PAID, PaymentStatus.NOT_PAID,
                states.filter((state) => MyPayments.stateText({{state}})[0] !== "payments.state.other")];
    """)
    assert sorted([PaymentState.PENDING, *paid, *not_paid]) == sorted(PaymentState)
    assert worded == list(PaymentState)
    english = strings("en")
    assert all(f"payments.state.{state}" in english for state in PaymentState)
