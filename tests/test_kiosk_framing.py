"""Framer modes (docs/kiosk.md#reader-input): time is passed in, nothing sleeps."""

from __future__ import annotations

import pytest

from kiosk.framing import Framer, framer_from_setting

# ---------------------------------------------------------------------------------------------
# eol


@pytest.mark.parametrize("terminator", [b"\r", b"\n", b"\r\n"])
def test_eol_terminators_give_one_frame(terminator: bytes) -> None:
    framer = Framer("eol")
    assert framer.feed(b"23191000105866" + terminator, 0.0) == [b"23191000105866"]
    assert framer.pending == 0


def test_eol_without_terminator_waits_however_long() -> None:
    framer = Framer("eol")
    assert framer.feed(b"2319100", 0.0) == []
    assert framer.flush_if_idle(60.0) == []
    assert framer.feed(b"0105866\r", 61.0) == [b"23191000105866"]


def test_eol_several_frames_in_one_read_and_empty_frames_dropped() -> None:
    framer = Framer("eol")
    assert framer.feed(b"\r\nA\r\n\r\nB\rC\n\n", 0.0) == [b"A", b"B", b"C"]


def test_eol_split_reads() -> None:
    framer = Framer("eol")
    assert framer.feed(b"]F02319", 0.0) == []
    assert framer.feed(b"1000105866\r", 0.01) == [b"]F023191000105866"]
    assert framer.feed(b"\n", 0.02) == []  # the LF of a CRLF split across reads
    assert framer.feed(b"AB", 0.03) == []
    assert framer.feed(b"C\r\nDE", 0.04) == [b"ABC"]
    assert framer.feed(b"\r", 0.05) == [b"DE"]


def test_eol_frame_of_exactly_max_frame_is_kept() -> None:
    framer = Framer("eol", max_frame=256)
    assert framer.feed(b"x" * 256 + b"\r", 0.0) == [b"x" * 256]
    assert framer.overflows == 0


def test_eol_overflow_discards_the_whole_line() -> None:
    framer = Framer("eol")
    assert framer.feed(b"9" * 10_000, 0.0) == []
    assert framer.overflows == 1
    assert framer.pending == 0
    assert framer.feed(b"9" * 500 + b"\r", 0.1) == []  # rest of the same line: still dropped
    assert framer.overflows == 1
    assert framer.feed(b"23191000105866\r", 0.2) == [b"23191000105866"]


def test_eol_two_overlong_lines_count_twice() -> None:
    framer = Framer("eol", max_frame=4)
    assert framer.feed(b"12345\rok\r123456\n", 0.0) == [b"ok"]
    assert framer.overflows == 2


# ---------------------------------------------------------------------------------------------
# idle


def test_idle_frame_ends_after_silence() -> None:
    framer = Framer("idle", idle_ms=50)
    assert framer.feed(b"0100", 0.000) == []
    assert framer.feed(b"8E6D5D", 0.020) == []
    assert framer.flush_if_idle(0.060) == []  # 40 ms since the last byte
    assert framer.flush_if_idle(0.070) == [b"01008E6D5D"]
    assert framer.flush_if_idle(0.500) == []


def test_idle_gap_before_new_data_closes_the_previous_frame() -> None:
    framer = Framer("idle", idle_ms=50)
    assert framer.feed(b"first", 0.0) == []
    assert framer.feed(b"second", 1.0) == [b"first"]
    assert framer.flush_if_idle(1.05) == [b"second"]


def test_idle_keeps_terminators_as_data() -> None:
    framer = Framer("idle")
    framer.feed(b"\nABC\r", 0.0)
    assert framer.flush_if_idle(1.0) == [b"\nABC\r"]


def test_idle_overflow_is_discarded_until_silence() -> None:
    framer = Framer("idle", idle_ms=50, max_frame=8)
    assert framer.feed(b"123456789", 0.0) == []
    assert framer.feed(b"more of the same", 0.01) == []
    assert framer.overflows == 1
    assert framer.flush_if_idle(0.1) == []
    assert framer.feed(b"ok", 0.2) == []
    assert framer.flush_if_idle(0.3) == [b"ok"]
    assert framer.overflows == 1


# ---------------------------------------------------------------------------------------------
# stx_etx


def test_stx_etx_frames_and_noise() -> None:
    framer = Framer("stx_etx")
    assert framer.feed(b"noise\x02\x1b%A?\r\x03junk\x02B\x03", 0.0) == [b"\x1b%A?\r", b"B"]


def test_stx_etx_split_reads_and_empty_frame() -> None:
    framer = Framer("stx_etx")
    assert framer.feed(b"\x02AB", 0.0) == []
    assert framer.flush_if_idle(10.0) == []
    assert framer.feed(b"C\x03\x02\x03", 10.1) == [b"ABC"]


def test_stx_restarts_an_unfinished_frame() -> None:
    framer = Framer("stx_etx")
    assert framer.feed(b"\x02lost\x02kept\x03", 0.0) == [b"kept"]


def test_stx_etx_overflow_discarded_until_etx() -> None:
    framer = Framer("stx_etx", max_frame=4)
    assert framer.feed(b"\x0212345678\x03\x02ok\x03", 0.0) == [b"ok"]
    assert framer.overflows == 1


# ---------------------------------------------------------------------------------------------
# fixed


def test_fixed_frames() -> None:
    framer = Framer("fixed", fixed_len=12)
    assert framer.feed(b"01008E6D5D", 0.0) == []
    assert framer.feed(b"B6" + b"0A00112233" + b"44", 0.01) == [b"01008E6D5DB6", b"0A0011223344"]


def test_fixed_drops_a_stale_partial_frame() -> None:
    framer = Framer("fixed", fixed_len=4, idle_ms=50)
    assert framer.feed(b"12", 0.0) == []
    assert framer.flush_if_idle(0.1) == []
    assert framer.pending == 0
    assert framer.feed(b"ABC", 0.2) == []
    assert framer.feed(b"DEFGH", 1.0) == [b"DEFG"]  # "ABC" was stale when "DEFGH" came


# ---------------------------------------------------------------------------------------------
# shared behaviour and construction


def test_reset_drops_partial_frame() -> None:
    framer = Framer("eol")
    framer.feed(b"partial", 0.0)
    framer.reset()
    assert framer.pending == 0
    assert framer.feed(b"new\r", 0.1) == [b"new"]


def test_reset_ends_overflow_discarding() -> None:
    framer = Framer("eol", max_frame=2)
    framer.feed(b"abc", 0.0)
    framer.reset()
    assert framer.feed(b"ok\r", 0.1) == [b"ok"]
    assert framer.overflows == 1


def test_empty_feed_only_flushes() -> None:
    framer = Framer("idle")
    framer.feed(b"x", 0.0)
    assert framer.feed(b"", 0.01) == []
    assert framer.feed(b"", 1.0) == [b"x"]


@pytest.mark.parametrize(
    ("setting", "mode", "fixed_len"),
    [
        ("eol", "eol", None),
        ("idle", "idle", None),
        ("stx_etx", "stx_etx", None),
        ("fixed:12", "fixed", 12),
    ],
)
def test_framer_from_setting(setting: str, mode: str, fixed_len: int | None) -> None:
    framer = framer_from_setting(setting, idle_ms=80)
    assert (framer.mode, framer.fixed_len, framer.idle_s, framer.max_frame) == (
        mode,
        fixed_len,
        0.08,
        256,
    )


@pytest.mark.parametrize(
    ("setting", "message"),
    [
        ("fixed", "framing: use fixed:<n> with n a number of bytes"),
        ("fixed:x", "framing: use fixed:<n> with n a number of bytes"),
        ("fixed:0", "framing: fixed needs a length between 1 and 256"),
        ("fixed:300", "framing: fixed needs a length between 1 and 256"),
        ("eol:2", "framing: must be eol, idle, stx_etx or fixed:<n>"),
        ("crlf", "framing: must be eol, idle, stx_etx or fixed:<n>"),
    ],
)
def test_bad_settings(setting: str, message: str) -> None:
    with pytest.raises(ValueError, match="^" + message.replace("(", r"\(") + "$"):
        framer_from_setting(setting)


def test_bad_constructor_arguments() -> None:
    with pytest.raises(
        ValueError, match="^framing: mode must be one of eol, idle, stx_etx, fixed$"
    ):
        Framer("lines")  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="^framing: idle_ms must be positive$"):
        Framer("idle", idle_ms=0)
    with pytest.raises(ValueError, match="^framing: max_frame must be positive$"):
        Framer("eol", max_frame=0)
