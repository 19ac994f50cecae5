"""Card normalisation pipeline and PCI guard (docs/kiosk.md#card-rules,
docs/kiosk.md#bank-cards-and-card-numbers)."""

from __future__ import annotations

import dataclasses
import hashlib
import hmac
import logging
import re
import string
import tomllib
from pathlib import Path

import pytest
from hypothesis import assume, given
from hypothesis import strategies as st

from kiosk import cards
from kiosk.cards import (
    CardRule,
    CardRules,
    Credential,
    Rejection,
    TrackStatus,
    credential_fingerprint,
    default_card_rules,
    load_card_rules,
    luhn_check_digit,
    luhn_valid,
    mask,
    mod11_valid,
    normalise,
)

EXAMPLE_TOML = Path(cards.__file__).with_name("cardrules.example.toml")
BARCODE = "23191000105866"
VISA_TEST_PAN = "4111111111111111"
MASTERCARD_TEST_PAN = "5555555555554444"


@pytest.fixture(scope="module")
def example_rules() -> CardRules:
    with EXAMPLE_TOML.open("rb") as handle:
        return load_card_rules(tomllib.load(handle))


def library(value: str, symbology: str | None = None, source: str = "serial") -> Credential:
    return Credential("library_barcode", value, symbology, source)


def rejected(reason: str, source: str = "serial") -> Rejection:
    return Rejection(reason, source)


# ---------------------------------------------------------------------------------------------
# Required test vectors of docs/kiosk.md#library-barcodes, with the rules of the documented example
# file


@pytest.mark.parametrize(
    ("raw", "expected"),
    [
        (b"]F023191000105866\r", library(BARCODE, "]F0")),
        (b"A23191000105866B\r\n", library(BARCODE)),
        (b"2 3191 00010 5866\r", library(BARCODE)),
        (b"23191000105867\r", rejected("check_digit")),
        (
            b";6393331234567890=4912?\r",
            Credential("campus_iso", "6393331234567890", "magstripe", "serial"),
        ),
        (
            b"%B4111111111111111^DOE/JANE^2812101?;4111111111111111=2812101?\r",
            rejected("payment_card"),
        ),
        (b";E?\r", rejected("track_error")),
    ],
)
def test_required_vectors(raw: bytes, expected: Credential | Rejection, example_rules) -> None:
    assert normalise(raw, example_rules) == expected
    wedge = dataclasses.replace(expected, source="wedge")
    assert normalise(raw.decode("ascii"), example_rules, source="wedge") == wedge


def test_example_file_loads_as_documented(example_rules: CardRules) -> None:
    library_rule, campus_rule = example_rules.rules
    assert library_rule == default_card_rules().rules[0]
    assert campus_rule == CardRule(
        kind="campus_iso", track=2, regex=r"(639333\d{10})(?:=.*)?", check_digit="luhn"
    )
    assert example_rules.iin_allow == ("639333",)
    assert example_rules.sensor_digit is False


def test_default_rules_accept_the_library_vectors() -> None:
    rules = default_card_rules()
    assert normalise(b"]F023191000105866\r", rules) == library(BARCODE, "]F0")
    assert normalise(b"A23191000105866B\r\n", rules) == library(BARCODE)
    assert normalise(b"2 3191 00010 5866\r", rules) == library(BARCODE)
    assert normalise(b"23191000105867\r", rules) == rejected("check_digit")
    assert rules.iin_allow == ()


# ---------------------------------------------------------------------------------------------
# More reads through the whole pipeline


@pytest.mark.parametrize(
    "raw",
    [
        "a23191000105866d",
        "b23191000105866c",
        "t23191000105866n",
        "*23191000105866e",
        "e23191000105866*",
        "D23191000105866A",
        "A2 3191 00010 5866B",
        "]F0t23191000105866e",
    ],
)
def test_codabar_start_stop_variants(raw: str) -> None:
    assert normalise(raw + "\r", default_card_rules()) == library(
        BARCODE, "]F0" if raw.startswith("]") else None
    )


def test_codabar_start_stop_is_only_removed_at_length_16() -> None:
    # 15 characters: "A" + the barcode; left alone, so the regex does not match.
    assert normalise("A23191000105866", default_card_rules()) == rejected("no_match")
    assert cards.strip_codabar_start_stop("A23191000105866") == "A23191000105866"


@pytest.mark.parametrize("terminator", [b"", b"\r", b"\n", b"\r\n"])
@pytest.mark.parametrize("wrap", [False, True])
def test_terminators_and_stx_etx(terminator: bytes, wrap: bool) -> None:
    raw = BARCODE.encode() + terminator
    if wrap:
        raw = b"\x02\x1b" + raw + b"\x03"
    assert normalise(raw, default_card_rules()) == library(BARCODE)


PROX_RULES = CardRules(
    rules=(
        CardRule(kind="prox_fac_id", regex=r"(\d{1,3}:\d{1,5})"),
        CardRule(kind="prox_padded", regex=r"(\d{8})", min_len=8, max_len=8),
        CardRule(kind="prox_em4100_decimal", regex=r"(\d{10})"),
        CardRule(kind="prox_em4100", regex=r"([0-9A-F]{10})"),
        CardRule(kind="prox_card_number", regex=r"(\d{1,5})"),
    )
)


@pytest.mark.parametrize(
    ("raw", "kind", "value"),
    [
        (b"4567\r", "prox_card_number", "4567"),  # FC 123 / card 4567, card number only
        (b"123:4567\r", "prox_fac_id", "123:4567"),  # FAC:ID
        (b"12304567\r", "prox_padded", "12304567"),  # zero-padded 3 + 5 digits
        (b"49685422\r", "prox_padded", "49685422"),  # raw 26 bits = 0x2F623AE
        (b"\n01008E6D5D\r", "prox_em4100", "01008E6D5D"),  # EM4100: LF + 10 hex + CR
        (b"01008E6D5D", "prox_em4100", "01008E6D5D"),  # EM4100 without terminator
        (b"0009334109\r", "prox_em4100_decimal", "0009334109"),  # low 32 bits of 008E6D5D
    ],
)
def test_prox_forms(raw: bytes, kind: str, value: str) -> None:
    assert normalise(raw, PROX_RULES) == Credential(kind, value, None, "serial")


def test_em4100_decimal_form_is_the_low_32_bits() -> None:
    assert f"{0x008E6D5D:010d}" == "0009334109"
    # H10301 for FC 123 / card 4567: even-parity bit 1, 8-bit FC, 16-bit card, odd-parity bit 0
    assert 1 << 25 | 123 << 17 | 4567 << 1 | 0 == 0x2F623AE == 49685422


def test_unread_track_one() -> None:
    track1_rule = CardRules(rules=(CardRule(kind="campus_id", track=1, regex=r"A(\d{8})\^.*"),))
    assert normalise(b"%E?\r", track1_rule) == rejected("track_error")
    assert normalise(b"%A12345678^DOE/JANE^?\r", track1_rule) == Credential(
        "campus_id", "12345678", "magstripe", "serial"
    )


def test_unread_track_one_with_the_example_rules(example_rules: CardRules) -> None:
    # Nothing decoded at all: a bad swipe, even though the campus rule wants track 2.
    assert normalise(b"%E?\r", example_rules) == rejected("track_error")
    assert normalise(b"%E?;E?+E?\r", example_rules) == rejected("track_error")


def test_track_one_only_bank_card_is_refused(example_rules: CardRules) -> None:
    raw = b"%B5555555555554444^DOE/JOHN^28121010000000000000?\r"
    result = normalise(raw, example_rules)
    assert result == rejected("payment_card")
    assert_no_pan_digits(result, MASTERCARD_TEST_PAN)


def test_track_two_bank_card_is_refused(example_rules: CardRules) -> None:
    result = normalise(b";4111111111111111=28121010000000000000?\r", example_rules)
    assert result == rejected("payment_card")
    assert_no_pan_digits(result, VISA_TEST_PAN)


def test_allow_listed_iin_on_track_two_is_a_campus_card(example_rules: CardRules) -> None:
    payload = "639333000004242"
    number = payload + luhn_check_digit(payload)
    raw = f"%ACAMPUS^?;{number}=2812?\r"
    assert normalise(raw, example_rules) == Credential("campus_iso", number, "magstripe", "serial")


def test_eight_digit_iin_allow_list() -> None:
    rules = CardRules(
        rules=(CardRule(kind="campus_iso", track=2, regex=r"(\d{16})=.*", check_digit="luhn"),),
        iin_allow=("41111111",),
    )
    assert normalise(";4111111111111111=2812?", rules) == Credential(
        "campus_iso", VISA_TEST_PAN, "magstripe", "serial"
    )
    payload = "411111120000000"
    other = payload + luhn_check_digit(payload)
    assert normalise(f";{other}=2812?", rules) == rejected("payment_card")


def test_track_one_is_refused_even_with_an_allow_listed_iin(example_rules: CardRules) -> None:
    # docs/kiosk.md#bank-cards-and-card-numbers: the allow-list applies to track 2 only; a %B track
    # 1 with a Luhn PAN is a bank card.
    raw = ";6393331234567890=4912?"
    assert isinstance(normalise(raw, example_rules), Credential)
    assert normalise("%B6393331234567890^CAMPUS/CARD^?" + raw, example_rules) == rejected(
        "payment_card"
    )


def test_luhn_failing_track_two_is_not_a_bank_card(example_rules: CardRules) -> None:
    raw = b";4111111111111112=2812101?\r"
    assert not cards.is_payment_card(raw.decode(), ())
    assert normalise(raw, example_rules) == rejected("no_match")


def test_bank_card_wins_over_other_defects(example_rules: CardRules) -> None:
    # The guard runs before the charset and length checks: the patron hears "bank card".
    bad_byte = b"\xff%B4111111111111111^DOE/JANE^2812101?\r"
    assert normalise(bad_byte, example_rules) == rejected("payment_card")
    huge = b"x" * 10_000 + b";4111111111111111=2812101?\r"
    assert normalise(huge, example_rules) == rejected("payment_card")


def test_track_one_pan_with_spaces_is_still_a_bank_card() -> None:
    assert cards.is_payment_card("%B4111 1111 1111 1111^DOE/JANE^2812?", ())


@pytest.mark.parametrize(
    "raw",
    [b"\x80\xff\x00abc\r", b"2319\x001000105866\r", b"23191000105866\t\r", "23191000105866é"],
)
def test_garbage_is_bad_charset(raw: bytes | str) -> None:
    assert normalise(raw, default_card_rules()) == rejected("bad_charset")


def test_ten_kilobyte_line_is_too_long() -> None:
    assert normalise(b"2" * 10_000 + b"\r", default_card_rules()) == rejected("too_long")
    assert normalise(b"2" * 257, default_card_rules()) == rejected("too_long")
    # exactly 256 bytes is not too long, just not a barcode
    assert normalise(b"2" * 256, default_card_rules()) == rejected("no_match")


def test_length_rejection() -> None:
    rules = CardRules(rules=(CardRule(kind="id", regex=r"(\d+)", min_len=6, max_len=8),))
    assert normalise("12345", rules) == rejected("length")
    assert normalise("123456789", rules) == rejected("length")
    assert normalise("123456", rules) == Credential("id", "123456", None, "serial")


def test_last_applicable_rule_gives_the_reason() -> None:
    strict = CardRule(kind="a", regex=r"(2\d{13})", check_digit="luhn")
    other = CardRule(kind="b", regex=r"(X\d+)")
    track_only = CardRule(kind="c", track=2, regex=r"(\d+)")
    assert normalise("23191000105867", CardRules((other, strict))) == rejected("check_digit")
    assert normalise("23191000105867", CardRules((strict, other))) == rejected("no_match")
    # a track rule does not apply to a barcode read, so the barcode rule's reason stands
    assert normalise("23191000105867", CardRules((strict, track_only))) == rejected("check_digit")
    # no rule applies at all (barcode rules only, a magstripe read)
    assert normalise(";123=4?", CardRules((strict,))) == rejected("no_match")


def test_first_accepting_rule_wins() -> None:
    first = CardRule(kind="first", regex=r"(\d+)")
    second = CardRule(kind="second", regex=r"(\d+)")
    assert normalise("1234", CardRules((first, second))).kind == "first"


def test_prefix_and_suffix_with_mod11() -> None:
    rule = CardRule(
        kind="spydus", prefix="L", suffix="Z", regex=r"(\d{9}[0-9X])", check_digit="mod11"
    )
    rules = CardRules((rule,))
    assert normalise("L080442957XZ\r", rules) == Credential("spydus", "080442957X", None, "serial")
    assert normalise("0306406152", rules) == Credential("spydus", "0306406152", None, "serial")
    assert normalise("L0306406153Z", rules) == rejected("check_digit")


def test_mod11_with_configured_weights_and_map() -> None:
    nhs = load_card_rules(
        {
            "credential_rule": [
                {
                    "kind": "nhs",
                    "regex": r"(\d{10})",
                    "check_digit": "mod11",
                    "mod11_weights": [2, 3, 4, 5, 6, 7, 8, 9, 10],
                    "mod11_map": {"1": ""},
                }
            ]
        }
    )
    assert normalise("9434765919", nhs) == Credential("nhs", "9434765919", None, "serial")
    assert normalise("9434765918", nhs) == rejected("check_digit")


def test_sensor_digit_is_dropped_when_configured(example_rules: CardRules) -> None:
    raw = b"\x02\x1b;6393331234567890=4912?0\r\x03"
    with_sensor = CardRules(example_rules.rules, example_rules.iin_allow, sensor_digit=True)
    campus = Credential("campus_iso", "6393331234567890", "magstripe", "serial")
    assert normalise(raw, with_sensor) == campus
    # a status-only frame ("card inserted") is not a read
    assert normalise(b"\x021\x03", with_sensor) == rejected("no_match")
    assert normalise(b"\x02\x1b%E?;E?1\r\x03", with_sensor) == rejected("track_error")


def test_lrc_after_end_sentinel_is_ignored(example_rules: CardRules) -> None:
    assert normalise(";6393331234567890=4912?:\r", example_rules) == Credential(
        "campus_iso", "6393331234567890", "magstripe", "serial"
    )


def test_auto_track_prefers_two_then_one_then_three() -> None:
    auto = CardRules((CardRule(kind="any", track="auto", regex=r"[A-Z]?(\d+)(?:[=^].*)?"),))
    assert normalise("%A111^X?;222=9?+333?", auto).value == "222"
    assert normalise("%A111^X?;E?+333?", auto) == Credential("any", "111", "magstripe", "serial")
    assert normalise("+333?", auto).value == "333"
    assert normalise("%E?;E?", auto) == rejected("track_error")


# ---------------------------------------------------------------------------------------------
# Each step on its own


def test_decode_frame() -> None:
    assert cards.decode_frame(b"\xffA") == "\xffA"
    assert cards.decode_frame("abc") == "abc"


def test_strip_framing() -> None:
    assert cards.strip_framing("\x02\x1b%A?\r\x03") == "%A?"
    assert cards.strip_framing("\nABC\r\n") == "ABC"
    assert cards.strip_framing("A\rB") == "A\rB"  # inner control characters stay (bad_charset)
    assert cards.strip_framing(";1=2?1") == ";1=2?1"
    assert cards.strip_framing(";1=2?1\r", sensor_digit=True) == ";1=2?"
    assert cards.strip_framing("0", sensor_digit=True) == ""
    assert cards.strip_framing("12341", sensor_digit=True) == "12341"  # not after "?"


def test_is_payment_card() -> None:
    assert cards.is_payment_card("%B4111111111111111^X^?", ())
    assert cards.is_payment_card("junk;4111111111111111=junk", ())
    assert not cards.is_payment_card(";4111111111111111=", ("411111",))
    assert not cards.is_payment_card("%A4111111111111111^X^?", ())  # format A: issuer's own
    assert not cards.is_payment_card("%B41111111111^X^?", ())  # 11 digits
    assert not cards.is_payment_card(";41111111111111111111=", ())  # 20 digits
    assert not cards.is_payment_card("4111111111111111", ())  # no sentinels
    payload = "4" * 11
    assert cards.is_payment_card(f";{payload}{luhn_check_digit(payload)}=", ())  # 12 digits


def test_is_printable_ascii() -> None:
    assert cards.is_printable_ascii(" ~AZaz09%;?=^")
    assert cards.is_printable_ascii("")
    assert not cards.is_printable_ascii("\x7f")
    assert not cards.is_printable_ascii("a\x1fb")


def test_strip_aim() -> None:
    assert cards.strip_aim("]F023191000105866") == ("23191000105866", "]F0")
    assert cards.strip_aim("]C1abc") == ("abc", "]C1")
    assert cards.strip_aim("23191000105866") == ("23191000105866", None)
    assert cards.strip_aim("]0F1") == ("]0F1", None)


def test_strip_affixes() -> None:
    assert cards.strip_affixes("L123Z", "L", "Z") == "123"
    assert cards.strip_affixes("123Z", "L", "Z") == "123"
    assert cards.strip_affixes("L123", "L", "") == "123"
    assert cards.strip_affixes("123", "", "") == "123"


def test_is_magstripe_and_split_tracks() -> None:
    assert cards.is_magstripe(";1=2?")
    assert not cards.is_magstripe("23191000105866")
    assert not cards.is_magstripe(";no end sentinel")
    assert cards.split_tracks("%A^B?X;12=3?+E?") == {1: "A^B", 2: "12=3", 3: None}
    assert cards.split_tracks("#DL?!x?") == {3: "DL"}  # first segment for a track wins


def test_select_track() -> None:
    tracks = {1: "one", 2: None, 3: "three"}
    assert cards.select_track(tracks, 1) == "one"
    assert cards.select_track(tracks, 2) is TrackStatus.UNREAD
    assert cards.select_track({1: "one"}, 2) is TrackStatus.MISSING
    assert cards.select_track(tracks, "auto") == "one"
    assert cards.select_track({3: "three"}, "auto") == "three"


def test_remove_spaces_and_extract_value() -> None:
    assert cards.remove_spaces("2 3191 00010 5866") == BARCODE
    pattern = re.compile(r"(639333\d{10})(?:=.*)?")
    assert cards.extract_value("6393331234567890=4912", pattern) == "6393331234567890"
    assert cards.extract_value("x6393331234567890", pattern) is None
    assert cards.extract_value("anything", None) == "anything"
    assert cards.extract_value("", re.compile(r"(\d*)")) == ""


def test_length_ok_and_check_digit_ok() -> None:
    assert cards.length_ok("1234", 4, 4)
    assert not cards.length_ok("123", 4, None)
    assert cards.length_ok("123", None, None)
    assert cards.check_digit_ok(BARCODE, CardRule(kind="x", check_digit="luhn"))
    assert not cards.check_digit_ok("23191000105867", CardRule(kind="x", check_digit="luhn"))
    assert cards.check_digit_ok("23191000105867", CardRule(kind="x"))


@pytest.mark.parametrize(
    ("payload", "check"),
    [
        ("3023400051786", "1"),  # JerseyCat
        ("5819800094399", "6"),  # NC Cardinal
        ("3319100010586", "4"),  # Dynix description
        ("2319100010586", "6"),  # the spec's library barcode
    ],
)
def test_luhn_worked_examples(payload: str, check: str) -> None:
    assert luhn_check_digit(payload) == check
    assert luhn_valid(payload + check)


@pytest.mark.parametrize("sample", ["22390000027896", "35555000012349", "23191000105867"])
def test_published_samples_that_fail_luhn(sample: str) -> None:
    assert not luhn_valid(sample)


def test_luhn_rejects_non_digits_without_raising() -> None:
    assert not luhn_valid("")
    assert not luhn_valid("1")
    assert not luhn_valid("4111-1111")
    assert not luhn_valid("٤١١١")  # Arabic-Indic digits are not ASCII digits
    with pytest.raises(ValueError, match="^Luhn payload must be ASCII digits$"):
        luhn_check_digit("12a")


def test_mod11_valid() -> None:
    assert mod11_valid("0306406152")  # ISBN-10
    assert mod11_valid("080442957X")
    assert mod11_valid("080442957x")
    assert not mod11_valid("0306406153")
    assert mod11_valid("1234567890125", weights=[2, 3, 4, 5, 6, 7])
    assert not mod11_valid("1234567890124", weights=[2, 3, 4, 5, 6, 7])
    nhs_map = {**cards.default_mod11_map(), 1: ""}
    assert mod11_valid("9434765919", weights=range(2, 11), remainder_map=nhs_map)
    assert not mod11_valid("12", remainder_map={r: "" for r in range(11)})
    assert not mod11_valid("")
    assert not mod11_valid("12a4")


# ---------------------------------------------------------------------------------------------
# Nothing from a read leaks


def assert_no_pan_digits(result: object, pan: str) -> None:
    for text in (repr(result), str(result)):
        for start in range(len(pan) - 3):
            assert pan[start : start + 4] not in text
        assert not re.search(r"\d", text)


def test_credential_repr_is_masked() -> None:
    credential = library(BARCODE)
    assert repr(credential) == (
        "Credential(kind='library_barcode', value='••••5866', symbology=None, source='serial')"
    )
    assert str(credential) == repr(credential)
    assert BARCODE[:10] not in repr(credential)


def test_bank_card_read_logs_nothing(example_rules: CardRules, caplog) -> None:
    caplog.set_level(logging.DEBUG)
    normalise(b"%B4111111111111111^DOE/JANE^2812101?\r", example_rules)
    normalise(b"\xff\x00garbage", example_rules)
    assert caplog.records == []


def test_internal_error_becomes_no_match_without_data(monkeypatch, caplog) -> None:
    caplog.set_level(logging.DEBUG)

    def broken(text: str, pattern: object) -> str:
        raise ValueError(f"cannot parse {text}")

    monkeypatch.setattr(cards, "extract_value", broken)
    assert normalise(BARCODE, default_card_rules()) == rejected("no_match")
    assert [r.getMessage() for r in caplog.records] == [
        "card normalisation failed internally (ValueError)"
    ]


def test_mask() -> None:
    assert mask(BARCODE) == "••••5866"
    assert mask("6393331234567890") == "••••7890"
    assert mask("4567") == "••••"
    assert mask("123:4567") == "••••4567"
    assert mask("") == "••••"


def test_credential_fingerprint() -> None:
    key = b"k" * 32
    expected = hmac.new(key, b"library_barcode:23191000105866", hashlib.sha256).hexdigest()[:16]
    assert credential_fingerprint(key, library(BARCODE)) == expected
    assert re.fullmatch(r"[0-9a-f]{16}", expected)
    other_kind = Credential("campus_iso", BARCODE, None, "serial")
    assert credential_fingerprint(key, other_kind) != expected
    assert credential_fingerprint(b"other key", library(BARCODE)) != expected


def test_card_rule_checks_its_choices() -> None:
    with pytest.raises(ValueError, match="^check_digit must be one of luhn, mod11, none$"):
        CardRule(kind="x", check_digit="Luhn")  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="^track must be 1, 2, 3 or 'auto'$"):
        CardRule(kind="x", track=4)  # type: ignore[arg-type]


def test_rejection_reasons_are_checked() -> None:
    with pytest.raises(ValueError, match="^unknown rejection reason$"):
        Rejection("something", "serial")


# ---------------------------------------------------------------------------------------------
# Configuration errors name the key


@pytest.mark.parametrize(
    ("data", "message"),
    [
        ({}, "credential_rule: at least one [[credential_rule]] table is required"),
        ({"credential_rule": []}, "credential_rule: at least one"),
        ({"credential_rule": ["x"]}, "credential_rule #1: must be a table"),
        ({"credential_rule": [{}]}, "credential_rule #1.kind: required"),
        ({"credential_rule": [{"kind": "a"}, {"kind": "b", "colour": 1}]},
         "credential_rule #2.colour: unknown key"),
        ({"credential_rule": [{"kind": "a", "check_digit": "crc"}]},
         "credential_rule #1.check_digit: must be one of 'luhn', 'mod11', 'none'"),
        ({"credential_rule": [{"kind": "a", "track": 4}]},
         "credential_rule #1.track: must be one of 1, 2, 3, 'auto'"),
        ({"credential_rule": [{"kind": "a", "track": True}]}, "credential_rule #1.track:"),
        ({"credential_rule": [{"kind": "a", "strip_aim": "yes"}]},
         "credential_rule #1.strip_aim: must be a bool"),
        ({"credential_rule": [{"kind": "a", "min_len": True}]},
         "credential_rule #1.min_len: must be a int"),
        ({"credential_rule": [{"kind": "a", "min_len": 9, "max_len": 8}]},
         "credential_rule #1.min_len: must not exceed max_len"),
        ({"credential_rule": [{"kind": "a", "max_len": 999}]},
         "credential_rule #1.max_len: must be between 0 and 256"),
        ({"credential_rule": [{"kind": "a", "regex": r"\d+"}]},
         "credential_rule #1.regex: needs exactly one capture group"),
        ({"credential_rule": [{"kind": "a", "regex": r"(\d)(\d)"}]},
         "credential_rule #1.regex: needs exactly one capture group"),
        ({"credential_rule": [{"kind": "a", "regex": "(unclosed"}]},
         "credential_rule #1.regex: not a valid regular expression"),
        ({"credential_rule": [{"kind": "a", "mod11_weights": [2, 0]}]},
         "credential_rule #1.mod11_weights: must be a non-empty list of positive integers"),
        ({"credential_rule": [{"kind": "a", "mod11_map": {"11": "X"}}]},
         "credential_rule #1.mod11_map: keys must be remainders"),
        ({"credential_rule": [{"kind": "a", "mod11_map": {"10": "XX"}}]},
         "credential_rule #1.mod11_map: values must be one character"),
        ({"credential_rule": [{"kind": "a"}], "pci": {"enabled": False}},
         "pci: the payment-card guard cannot be configured off"),
        ({"credential_rule": [{"kind": "a"}], "pci": {"iin_allow": ["63933"]}},
         "pci.iin_allow: every entry must be a 6- or 8-digit string"),
        ({"credential_rule": [{"kind": "a"}], "pci": {"iin_allow": "639333"}},
         "pci.iin_allow: must be a list"),
        ({"credential_rule": [{"kind": "a"}], "pci": {"iin_deny": []}},
         "pci.iin_deny: unknown key"),
        ({"credential_rule": [{"kind": "a"}], "magstripe": {"sensor_digit": 1}},
         "magstripe.sensor_digit: must be a bool"),
    ],
)  # fmt: skip
def test_load_card_rules_errors(data: dict, message: str) -> None:
    with pytest.raises(ValueError, match="^" + re.escape(message)):
        load_card_rules(data)


def test_load_card_rules_ignores_other_tables_and_builds_mod11_map() -> None:
    rules = load_card_rules(
        {
            "reader": {"path": "/dev/serial/by-id/x"},
            "credential_rule": [{"kind": "a", "check_digit": "mod11", "mod11_map": {"1": ""}}],
            "magstripe": {"sensor_digit": True},
        }
    )
    assert rules.sensor_digit is True
    assert dict(rules.rules[0].mod11_map)[1] == ""
    assert dict(rules.rules[0].mod11_map)[0] == "0"
    assert dict(rules.rules[0].mod11_map)[10] == "1"


# ---------------------------------------------------------------------------------------------
# Properties


@given(st.one_of(st.binary(max_size=400), st.text(max_size=400)))
def test_normalise_never_raises(raw: bytes | str) -> None:
    rules = load_card_rules(tomllib.loads(EXAMPLE_TOML.read_text()))
    # The private function has no safety net, so a bug would surface here as an exception.
    result = cards._normalise(raw, rules, "serial")
    assert isinstance(result, Credential | Rejection)
    assert normalise(raw, rules) == result


track1_name = st.text(alphabet=string.ascii_uppercase + "/ ", max_size=26)
framing = st.sampled_from([("", ""), ("", "\r"), ("", "\n"), ("", "\r\n"), ("\x02\x1b", "\r\x03")])


@given(
    payload=st.integers(min_value=11, max_value=18).flatmap(
        lambda n: st.text(alphabet=string.digits, min_size=n, max_size=n)
    ),
    track=st.sampled_from([1, 2]),
    name=track1_name,
    discretionary=st.text(alphabet=string.digits, max_size=20),
    frame=framing,
    as_bytes=st.booleans(),
)
def test_any_luhn_valid_pan_on_a_track_is_refused(
    payload: str, track: int, name: str, discretionary: str, frame: tuple[str, str], as_bytes: bool
) -> None:
    pan = payload + luhn_check_digit(payload)
    assume(not pan.startswith("639333"))
    if track == 1:
        data = f"%B{pan}^{name}^2812101{discretionary}?"
    else:
        data = f";{pan}=2812101{discretionary}?"
    raw: bytes | str = frame[0] + data + frame[1]
    if as_bytes:
        raw = raw.encode("ascii")
    rules = load_card_rules(tomllib.loads(EXAMPLE_TOML.read_text()))
    result = normalise(raw, rules)
    assert result == rejected("payment_card")
    assert not re.search(r"\d", repr(result))


@given(
    middle=st.text(alphabet=string.digits, min_size=12, max_size=12),
    clsi=st.booleans(),
    codabar=st.one_of(st.none(), st.tuples(*[st.sampled_from("ABCDabcdtn*e")] * 2)),
    aim=st.one_of(
        st.none(),
        st.tuples(
            st.sampled_from(string.ascii_letters),
            st.sampled_from(string.ascii_letters + string.digits),
        ).map(lambda t: "]" + t[0] + t[1]),
    ),
    frame=framing,
    as_bytes=st.booleans(),
)
def test_library_barcode_round_trips(
    middle: str,
    clsi: bool,
    codabar: tuple[str, str] | None,
    aim: str | None,
    frame: tuple[str, str],
    as_bytes: bool,
) -> None:
    payload = "2" + middle
    barcode = payload + luhn_check_digit(payload)
    text = f"{barcode[0]} {barcode[1:5]} {barcode[5:10]} {barcode[10:]}" if clsi else barcode
    if codabar:
        text = codabar[0] + text + codabar[1]
    text = frame[0] + (aim or "") + text + frame[1]
    raw: bytes | str = text.encode("ascii") if as_bytes else text
    assert normalise(raw, default_card_rules(), "wedge") == library(barcode, aim, "wedge")
