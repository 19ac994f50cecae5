"""Sandbox Alma's Analytics reports endpoint: `GET /almaws/v1/analytics/reports`.

It answers one report, a fines-and-fees list of the sandbox's own users and fees, the way the
real API does (docs/bursar.md#the-analytics-report): XML only; the first call names the
report by `path` and gets a resumption token, later calls send the token; column headings only
on the first page; a meaningless `Column0`; empty cells left out; `limit` rounded up to a
multiple of 25. The data is taken when the first page is asked for, like a report run.

Knobs (`configure(...)`, or tests through `app.state.alma_analytics`), all off by default
except `omit_empty`:

* `still_loading`: empty, unfinished answers before the first page of rows;
* `still_loading_later`: the same before every later page;
* `stuck_loading`: never anything but "still loading";
* `duplicate_rows`: every fee's row twice (a report with transaction columns repeats fees);
* `omit_empty`: leave empty cells out of a row (the real API does).
"""

from __future__ import annotations

import secrets
import threading
from dataclasses import dataclass, field
from decimal import Decimal
from typing import Any
from xml.sax.saxutils import escape, quoteattr

from starlette.requests import Request
from starlette.responses import PlainTextResponse, Response

from sandbox.alma_render import DESCRIPTIONS

REPORT_PATH = "/shared/Patronpay Sandbox University/Reports/Bursar/Fines and fees"
XML_TYPE = "application/xml;charset=UTF-8"
HEADINGS = ("Primary Identifier", "First Name", "Last Name", "User Group", "Fine Fee Id",
            "Fine Fee Type", "Original Amount", "Remaining Amount", "Fine Fee Status", "Owner",
            "Fine Fee Creation Date", "Title")
TYPES = ("varchar", "varchar", "varchar", "varchar", "varchar", "varchar", "double", "double",
         "varchar", "varchar", "date", "varchar")
MAX_RUNS = 100
KNOBS = ("still_loading", "still_loading_later", "stuck_loading", "duplicate_rows", "omit_empty")


@dataclass
class Run:
    """One report run behind a resumption token."""

    rows: list[list[str]]
    limit: int
    headings: bool = True
    position: int = 0
    loading_left: int = 0
    schema_sent: bool = False


@dataclass
class Knobs:
    still_loading: int = 0
    still_loading_later: int = 0
    stuck_loading: bool = False
    duplicate_rows: bool = False
    omit_empty: bool = True


@dataclass
class AnalyticsReports:
    """The report endpoint over one `AlmaSandbox` (its users and fees are the data)."""

    sandbox: Any
    paths: set[str] = field(default_factory=lambda: {REPORT_PATH})
    knobs: Knobs = field(default_factory=Knobs)
    runs: dict[str, Run] = field(default_factory=dict)
    calls: int = 0
    _lock: threading.Lock = field(default_factory=threading.Lock)

    def configure(self, **knobs: Any) -> None:
        """Set knobs (the rest keep their values); unknown names are refused."""
        unknown = set(knobs) - set(KNOBS)
        if unknown:
            raise ValueError(f"unknown analytics knobs: {sorted(unknown)}")
        with self._lock:
            for name, value in knobs.items():
                setattr(self.knobs, name, value)

    def reset(self) -> None:
        with self._lock:
            self.knobs = Knobs()
            self.runs.clear()
            self.calls = 0

    async def reports(self, request: Request) -> Response:
        if self.sandbox.api_key(_presented_key(request)) is None:
            return PlainTextResponse("Invalid API Key", 400)
        params = request.query_params
        with self._lock:
            self.calls += 1
            token = params.get("token", "")
            if token:
                run = self.runs.get(token)
                if run is None:
                    return _error("INVALID_TOKEN", "The resumption token is not valid.")
                return _xml(self._next_page(token, run, first=False))
            path = params.get("path", "")
            if path not in self.paths:
                return _error("INVALID_PATH", f"No report at path {path!r}.")
            limit = _limit(params.get("limit", ""))
            if limit is None:
                return _error("INVALID_LIMIT", "limit must be a number from 25 to 1000.")
            token = secrets.token_hex(24).upper()
            run = Run(rows=self._rows(), limit=limit, loading_left=self.knobs.still_loading,
                      headings=params.get("col_names", "true").lower() != "false")
            self.runs[token] = run
            while len(self.runs) > MAX_RUNS:  # runs never read to the end must not pile up
                self.runs.pop(next(iter(self.runs)))
            return _xml(self._next_page(token, run, first=True))

    # --- building pages (under the lock) ---

    def _next_page(self, token: str, run: Run, *, first: bool) -> str:
        # The token travels with the first answer only; later ones carry none.
        shown_token = token if first else ""
        if self.knobs.stuck_loading or run.loading_left > 0:
            run.loading_left -= 1
            return _page(shown_token, finished=False, schema=False, rows=[], omit_empty=True)
        page = run.rows[run.position:run.position + run.limit]
        run.position += len(page)
        finished = run.position >= len(run.rows)
        run.loading_left = self.knobs.still_loading_later
        if finished:
            self.runs.pop(token, None)
        schema = run.headings and not run.schema_sent  # headings with the first rows only
        run.schema_sent = True
        return _page(shown_token, finished=finished, schema=schema, rows=page,
                     omit_empty=self.knobs.omit_empty)

    def _rows(self) -> list[list[str]]:
        rows = []
        for user in self.sandbox.all_users():
            for fee in user["fees"]:
                row = [user["primary_id"], user["first_name"], user["last_name"],
                       DESCRIPTIONS["user_group"].get(user["user_group"], user["user_group"]),
                       fee["id"], DESCRIPTIONS["fee_type"].get(fee["type"], fee["type"]),
                       _double(fee["original_amount"]), _double(fee["balance"]),
                       DESCRIPTIONS["fee_status"].get(fee["status"], fee["status"]),
                       fee["owner"] or "", fee["creation_time"][:10], fee["title"] or ""]
                rows.append(row)
                if self.knobs.duplicate_rows:
                    rows.append(list(row))
        return rows


def _presented_key(request: Request) -> str | None:
    scheme, _, key = request.headers.get("authorization", "").partition(" ")
    if scheme.lower() == "apikey" and key.strip():
        return key.strip()
    return request.query_params.get("apikey")


def _limit(text: str) -> int | None:
    """Analytics hands rows out by 25: a limit is rounded up to a multiple of 25."""
    if not text:
        return 25
    if not text.isdigit() or not 1 <= int(text) <= 1000:
        return None
    return max(25, -(-int(text) // 25) * 25)


def _double(amount: Decimal) -> str:
    """How Analytics prints a double: 60 not 60.00, 12.5 not 12.50."""
    text = format(amount.normalize(), "f")
    return text


def _page(token: str, *, finished: bool, schema: bool, rows: list[list[str]],
          omit_empty: bool) -> str:
    parts = ["<?xml version=\"1.0\" encoding=\"UTF-8\" standalone=\"yes\"?>",
             "<report><QueryResult>"]
    if token:
        parts.append(f"<ResumptionToken>{escape(token)}</ResumptionToken>")
    parts.append(f"<IsFinished>{'true' if finished else 'false'}</IsFinished>")
    if not rows and not schema:
        parts.append("<ResultXml/></QueryResult></report>")
        return "".join(parts)
    parts.append('<ResultXml><rowset xmlns="urn:schemas-microsoft-com:xml-analysis:rowset">')
    if schema:
        parts.append('<xsd:schema xmlns:xsd="http://www.w3.org/2001/XMLSchema" '
                     'xmlns:saw-sql="urn:saw-sql" '
                     'targetNamespace="urn:schemas-microsoft-com:xml-analysis:rowset">'
                     '<xsd:complexType name="Row"><xsd:sequence>'
                     '<xsd:element name="Column0" type="xsd:int" saw-sql:type="integer" '
                     'saw-sql:columnHeading="0"/>')
        for number, (heading, kind) in enumerate(zip(HEADINGS, TYPES, strict=True), start=1):
            parts.append(f'<xsd:element name="Column{number}" type="xsd:string" '
                         f'saw-sql:type="{kind}" saw-sql:columnHeading={quoteattr(heading)}/>')
        parts.append("</xsd:sequence></xsd:complexType></xsd:schema>")
    for row in rows:
        cells = ["<Column0>0</Column0>"]
        for number, value in enumerate(row, start=1):
            if value == "" and omit_empty:
                continue
            cells.append(f"<Column{number}>{escape(value)}</Column{number}>")
        parts.append("<Row>" + "".join(cells) + "</Row>")
    parts.append("</rowset></ResultXml></QueryResult></report>")
    return "".join(parts)


def _xml(text: str) -> Response:
    return Response(text, media_type=XML_TYPE)


def _error(code: str, message: str) -> Response:
    body = ("<?xml version=\"1.0\" encoding=\"UTF-8\"?><web_service_result "
            "xmlns=\"http://com/exlibris/urm/general/xmlbeans\"><errorsExist>true</errorsExist>"
            f"<errorList><error><errorCode>{escape(code)}</errorCode><errorMessage>"
            f"{escape(message)}</errorMessage></error></errorList></web_service_result>")
    return Response(body, status_code=400, media_type=XML_TYPE)
