"""Reading the Analytics fines report (docs/bursar.md#the-analytics-report): over loopback
against the sandbox's reports endpoint with each of its quirks turned on, and the page parser
on pages the sandbox would never send."""

from __future__ import annotations

import asyncio
from decimal import Decimal

import pytest

from patronpay.serving import ServerThread
from proxy.bursar.analytics import AnalyticsError, AnalyticsReader, parse_page
from proxy.bursar.columns import report_headings
from proxy.bursar.fines import fee_type_code, fines_from_report, report_amount
from sandbox.alma_analytics import REPORT_PATH
from sandbox.app import ALMA_API_KEY, create_sandbox_app, urls

D = Decimal
SEEDED_FEES = 18  # every fee of the seed, credits and all
EXTRA_PATRONS = 20  # two fees each: 58 rows in all, three pages of 25


@pytest.fixture(scope="module")
def server():
    app = create_sandbox_app()
    for number in range(EXTRA_PATRONS):
        app.state.alma.add_user({
            "primary_id": f"many{number:02d}", "first_name": "Many", "last_name": f"P{number}",
            "fees": [{"type": "OVERDUEFINE", "original_amount": "1.10", "owner": "MAIN",
                      "creation_time": "2025-02-01T10:00:00.000Z"},
                     {"type": "LOSTITEMREPLACEMENTFEE", "original_amount": "20.00",
                      "owner": "SCI", "title": "Lost <book> & co",
                      "creation_time": "2025-02-02T10:00:00.000Z"}]})
    with ServerThread(app) as running:
        running.app = app
        yield running


@pytest.fixture
def analytics(server):
    reports = server.app.state.alma_analytics
    reports.reset()
    server.app.state.alma.clear_requests()
    yield reports
    reports.reset()


def read(server, path=REPORT_PATH, **options):
    async def go():
        reader = AnalyticsReader(urls(server.url)["alma_api"], ALMA_API_KEY,
                                 **({"page_size": 25, "wait_seconds": 0} | options))
        try:
            return await reader.read(path)
        finally:
            await reader.aclose()
    return asyncio.run(go())


def report_calls(server):
    return [r for r in server.app.state.alma.requests()
            if r["path"] == "/almaws/v1/analytics/reports"]


def test_pages_are_followed_by_token_with_the_headings_of_the_first_page(server, analytics):
    report = read(server)
    assert report.pages == 3
    assert len(report.rows) == SEEDED_FEES + 2 * EXTRA_PATRONS
    assert "Column0" not in report.headings and "0" not in report.headings
    assert report.headings[:2] == ("Primary Identifier", "First Name")
    # Rows of the later pages are named from the first page's headings too.
    last = report.rows[-1]
    assert (last["Primary Identifier"], last["Fine Fee Type"], last["Title"]) == (
        "many19", "Lost item replacement fee", "Lost <book> & co")
    calls = report_calls(server)
    assert len(calls) == 3
    assert calls[0]["query"]["path"] == [REPORT_PATH] and "token" not in calls[0]["query"]
    token = calls[1]["query"]["token"]
    assert calls[2]["query"]["token"] == token and "path" not in calls[1]["query"]


def test_an_empty_cell_is_absent_from_its_row_and_read_as_empty(server, analytics):
    report = read(server)
    card = next(row for row in report.rows if row["Fine Fee Type"] == "Card renewal")
    assert "Title" not in card
    fines = fines_from_report(report, report_headings({}))
    line = next(fee for fee in fines.fees if fee.fee_type == "CARDRENEWAL")
    assert (line.title, line.amount, line.name) == ("", D("10.00"), "Smith, Jordan")
    # Sent as empty elements instead (the knob off), the cells read the same.
    analytics.configure(omit_empty=False)
    kept = read(server)
    assert next(row for row in kept.rows if row["Fine Fee Type"] == "Card renewal")["Title"] == ""
    assert fines_from_report(kept, report_headings({})) == fines


def test_still_loading_pages_are_waited_out_with_the_same_token(server, analytics):
    analytics.configure(still_loading=2, still_loading_later=1)
    report = read(server)
    assert (report.pages, len(report.rows)) == (3, SEEDED_FEES + 2 * EXTRA_PATRONS)
    assert len(report_calls(server)) == 3 + 2 + 2


def test_a_report_that_never_finishes_loading_is_asked_afresh_then_given_up(server, analytics):
    analytics.configure(stuck_loading=True)
    with pytest.raises(AnalyticsError, match="still loading"):
        read(server, loading_retries=3, restarts=1)
    calls = report_calls(server)
    assert len(calls) == 2 * (3 + 1)
    assert [("path" in c["query"]) for c in calls].count(True) == 2  # started afresh once


def test_duplicate_rows_of_one_fee_are_merged(server, analytics):
    plain = fines_from_report(read(server), report_headings({}))
    analytics.configure(duplicate_rows=True)
    doubled_report = read(server)
    doubled = fines_from_report(doubled_report, report_headings({}))
    # Rows owing nothing, doubled too: two credits, a fee sent to the bursar, a sub-cent fee.
    assert len(doubled_report.rows) == 2 * len(plain.fees) + 2 * 4
    assert doubled.fees == plain.fees
    # Every row merged once, but the sub-cent fee's rows, skipped as unreadable before that.
    assert doubled.duplicates == SEEDED_FEES - 1 + 2 * EXTRA_PATRONS


def test_only_fees_still_owed_are_kept(server, analytics):
    fines = fines_from_report(read(server), report_headings({}))
    owed = {fee.fee_id: fee.amount for fee in fines.fees if fee.primary_id == "dokafor"}
    assert owed == {"7730040020004146": D("8.00")}  # the -5.00 credit is neither billed nor netted
    assert sum(f.amount for f in fines.fees if f.primary_id == "mkowalski") == D("77.25")


def test_an_unknown_report_path_and_a_wrong_column_are_named(server, analytics):
    with pytest.raises(AnalyticsError, match="INVALID_PATH"):
        read(server, path="/shared/Nowhere/report")
    with pytest.raises(AnalyticsError, match="'EMPLID'.*PATRONPAY_BURSAR_REPORT_COLUMNS"):
        fines_from_report(read(server), report_headings({"campus_id": "EMPLID"}))


def test_a_wrong_api_key_is_refused(server, analytics):
    async def go():
        reader = AnalyticsReader(urls(server.url)["alma_api"], "not-a-key", wait_seconds=0)
        try:
            await reader.read(REPORT_PATH)
        finally:
            await reader.aclose()
    with pytest.raises(AnalyticsError, match="Alma answered 400"):
        asyncio.run(go())


# --- pages the sandbox would not send ---

ROWSET = '<rowset xmlns="urn:schemas-microsoft-com:xml-analysis:rowset">'


def test_a_page_with_a_dtd_is_refused():
    bomb = ('<?xml version="1.0"?><!DOCTYPE r [<!ENTITY a "aaaa"><!ENTITY b "&a;&a;&a;">]>'
            "<report><QueryResult><IsFinished>true</IsFinished></QueryResult></report>")
    with pytest.raises(AnalyticsError, match="DTD"):
        parse_page(bomb)


def test_alma_errors_and_broken_xml_are_reported():
    error = ("<web_service_result><errorsExist>true</errorsExist><errorList><error>"
             "<errorCode>420033</errorCode><errorMessage>No permission</errorMessage></error>"
             "</errorList></web_service_result>")
    with pytest.raises(AnalyticsError, match="420033: No permission"):
        parse_page(error)
    with pytest.raises(AnalyticsError, match="not well-formed"):
        parse_page("<report><QueryResult>")


def test_a_bogus_utf16_declaration_is_ignored_and_a_single_row_is_a_row():
    page = ('<?xml version="1.0" encoding="UTF-16"?><report><QueryResult>'
            f"<IsFinished>true</IsFinished><ResultXml>{ROWSET}"
            "<Row><Column0>0</Column0><Column1>é</Column1></Row></rowset></ResultXml>"
            "</QueryResult></report>")
    parsed = parse_page(page)
    assert (parsed.finished, parsed.rows, parsed.headings) == (
        True, [{"Column0": "0", "Column1": "é"}], None)


def test_amounts_are_exact_cents_give_or_take_a_doubles_noise():
    assert report_amount("4.5") == D("4.50")
    assert report_amount("85") == D("85.00")
    assert report_amount("4.4999999999999") == D("4.50")
    assert report_amount("1.2E2") == D("120.00")
    for bad in ("4.555", "NaN", "Infinity", "", "1,50"):
        with pytest.raises(ValueError):
            report_amount(bad)


def test_fee_type_codes_come_from_the_descriptions():
    assert fee_type_code("Lost item replacement fee") == "LOSTITEMREPLACEMENTFEE"
    assert fee_type_code("Overdue fine") == "OVERDUEFINE"
    assert fee_type_code("CUSTOMER_DEFINED_01") == "CUSTOMER_DEFINED_01"
