"""The `comment` of each Alma payment (issue 13 item 5, docs/alma.md#paying-a-fee): CashNet's
transaction, the payment reference and the channel, within the 255 characters patronpay keeps
to; a long configured text gives way first, the facts a desk traces a payment by never do."""

from types import SimpleNamespace

import pytest

from proxy.allocation_posting import ALMA_COMMENT_LIMIT, alma_comment

REF = "3f9c0d2a7b1f48e3a6d5c8b7e2f1a0d9"


def payment(channel: str = "web", tx: str | None = "100234"):
    # alma_comment reads only these three fields of a PaymentRecord.
    return SimpleNamespace(id=REF, cashnet_tx=tx, channel=channel)


def test_the_configured_text_then_tx_reference_and_channel():
    assert alma_comment("CashNet payment", payment("kiosk:lobby-1")) == (
        f"CashNet payment: tx 100234; ref {REF}; kiosk:lobby-1")
    assert alma_comment("  ", payment()) == f"tx 100234; ref {REF}; web"
    assert alma_comment("CashNet payment", payment(tx=None)) == (
        f"CashNet payment: tx -; ref {REF}; web")


@pytest.mark.parametrize("prefix_length", [200, 220, 230, 240, 1000])
def test_a_long_configured_text_gives_way_and_the_facts_stay_whole(prefix_length):
    facts = f"tx 100234; ref {REF}; kiosk:lobby-1"
    comment = alma_comment("x" * prefix_length, payment("kiosk:lobby-1"))
    assert len(comment) <= ALMA_COMMENT_LIMIT == 255
    assert comment.endswith(facts)
    head = comment.removesuffix(facts)
    assert head in ("", "x" * (len(head) - 2) + ": ")
