"""Reading an Alma Analytics report through the API (`GET /analytics/reports`), whole.

The API's habits, each handled here (docs/bursar.md#the-analytics-report):

* The first call names the report by `path`; its answer carries a resumption token, and every
  later call sends that same token until `IsFinished` is true.
* Column headings come only with the first page (an XSD with `saw-sql:columnHeading`); later
  pages have bare `<Row>`s of `Column1`, `Column2`, ... which we name from the first page.
* `Column0` is a constant with no meaning: dropped.
* An empty cell is left out of its `<Row>`: cells are read by name, never by position.
* While the report is still being computed, a page comes back empty, unfinished: wait and ask
  again with the same token; after too many, start afresh from `path`.
* The answer is XML only. It is parsed from text, a size-bounded page at a time, and a page
  that declares a DTD or entities is refused (nothing legitimate needs one).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import re
import xml.etree.ElementTree as ET
from collections.abc import Awaitable, Callable
from dataclasses import dataclass

import httpx

log = logging.getLogger("patronpay.bursar")

HEADING_ATTRIBUTE = "{urn:saw-sql}columnHeading"
MAX_PAGE_BYTES = 16 * 1024 * 1024
MAX_PAGES = 500
MAX_ROWS = 65_001  # OBIEE's own cap on one report: more means the report must be sliced
THROTTLE_RETRIES = 4
_DECLARATION = re.compile(r"^\s*<\?xml[^>]*\?>")


class AnalyticsError(Exception):
    """The report could not be read (refused, malformed, too big, never finished)."""


@dataclass(frozen=True)
class Page:
    """One answer: `headings` (ColumnN -> heading) only when the page carried them."""

    token: str
    finished: bool
    headings: dict[str, str] | None
    rows: list[dict[str, str]]


@dataclass(frozen=True)
class Report:
    """The whole report: rows as {heading: text}, Column0 gone, empty cells absent."""

    headings: tuple[str, ...]
    rows: tuple[dict[str, str], ...]
    pages: int
    calls: int


def _local(tag: str) -> str:
    return tag.rsplit("}", 1)[-1]


def _child(parent: ET.Element, name: str) -> ET.Element | None:
    return next((child for child in parent if _local(child.tag) == name), None)


def parse_xml(text: str) -> ET.Element:
    """A size-bounded page (see `_get`) as an element tree. A DTD is refused outright: with
    none there are no entities to expand and nothing external to fetch, which is what
    defusedxml would otherwise guard against."""
    if "<!DOCTYPE" in text or "<!ENTITY" in text:
        raise AnalyticsError("the report page declares a DTD or entities: refused")
    # A declared encoding (Alma has been seen to claim UTF-16) means nothing for a str.
    try:
        return ET.fromstring(_DECLARATION.sub("", text, count=1))  # noqa: S314 - no DTD
    except ET.ParseError as exc:
        raise AnalyticsError(f"the report page is not well-formed XML ({exc})") from None


def parse_page(text: str) -> Page:
    """One page of the API's XML."""
    root = parse_xml(text)
    error = _error_text(root)
    if error:
        raise AnalyticsError(f"Alma refused the report: {error}")
    result = _child(root, "QueryResult") if _local(root.tag) != "QueryResult" else root
    if result is None:
        raise AnalyticsError(f"unexpected answer: <{_local(root.tag)}> without <QueryResult>")
    token_element = _child(result, "ResumptionToken")
    finished_element = _child(result, "IsFinished")
    finished = (finished_element is not None
                and (finished_element.text or "").strip().lower() == "true")
    rowset = None
    result_xml = _child(result, "ResultXml")
    if result_xml is not None:
        rowset = _child(result_xml, "rowset")
    headings = None
    rows: list[dict[str, str]] = []
    if rowset is not None:
        found = {element.get("name", ""): element.get(HEADING_ATTRIBUTE, "")
                 for element in rowset.iter() if _local(element.tag) == "element"
                 and element.get("name", "").startswith("Column")}
        headings = found or None
        for row in rowset:
            if _local(row.tag) != "Row":
                continue
            rows.append({_local(cell.tag): (cell.text or "").strip() for cell in row})
    token = (token_element.text or "").strip() if token_element is not None else ""
    return Page(token=token, finished=finished, headings=headings, rows=rows)


def _error_text(root: ET.Element) -> str:
    """`code: message` from Alma's error envelope, or "" when the page is not one."""
    exists = next((e for e in root.iter() if _local(e.tag) == "errorsExist"), None)
    if exists is None or (exists.text or "").strip().lower() != "true":
        return ""
    code = next((e.text or "" for e in root.iter() if _local(e.tag) == "errorCode"), "")
    message = next((e.text or "" for e in root.iter() if _local(e.tag) == "errorMessage"), "")
    return f"{code.strip()}: {message.strip()}".strip(": ") or "an error without a message"


def named_rows(headings: dict[str, str], rows: list[dict[str, str]]) -> list[dict[str, str]]:
    """Rows keyed by heading instead of ColumnN, Column0 dropped."""
    named = []
    for row in rows:
        named.append({headings[column]: value for column, value in row.items()
                      if column != "Column0" and column in headings})
    return named


class AnalyticsReader:
    """Reads one report through the API, all its pages, with the quirks above handled."""

    def __init__(
        self,
        api_url: str,
        api_key: str,
        *,
        page_size: int = 1000,
        wait_seconds: float = 5.0,
        loading_retries: int = 12,
        restarts: int = 2,
        timeout: float = 60.0,
        transport: httpx.AsyncBaseTransport | None = None,
        sleep: Callable[[float], Awaitable[None]] = asyncio.sleep,
    ) -> None:
        self.url = api_url.rstrip("/") + "/analytics/reports"
        self.page_size = page_size
        self.wait_seconds = wait_seconds
        self.loading_retries = loading_retries
        self.restarts = restarts
        self.sleep = sleep
        self.calls = 0
        self._http = httpx.AsyncClient(
            headers={"Authorization": f"apikey {api_key}", "Accept": "application/xml"},
            timeout=httpx.Timeout(timeout, connect=10.0), follow_redirects=False,
            transport=transport)

    async def aclose(self) -> None:
        await self._http.aclose()

    async def read(self, path: str) -> Report:
        """Every row of the report at `path`."""
        for attempt in range(self.restarts + 1):
            report = await self._read_once(path)
            if report is not None:
                return report
            log.warning("analytics still loading; asking afresh", extra={
                "event": "analytics_restart", "attempt": attempt + 1})
        raise AnalyticsError(f"the report was still loading after {self.restarts + 1} tries of "
                             f"{self.loading_retries} waits")

    async def _read_once(self, path: str) -> Report | None:
        """The report, or None when it stayed "still loading" too long (start afresh)."""
        token = ""
        headings: dict[str, str] | None = None
        rows: list[dict[str, str]] = []
        pages = loading = 0
        while True:
            page = await self._page(path, token)
            token = token or page.token  # only the first answer issues the token
            if headings is None and page.headings:
                headings = page.headings
            if not page.rows and not page.finished:
                loading += 1
                if loading > self.loading_retries:
                    return None
                if not token:
                    raise AnalyticsError("an unfinished page without a resumption token")
                await self.sleep(self.wait_seconds)
                continue
            loading = 0
            pages += 1
            rows.extend(page.rows)
            if len(rows) > MAX_ROWS:
                raise AnalyticsError(f"the report has more than {MAX_ROWS} rows: slice it with a "
                                     "filter (Analytics caps one report there)")
            if page.finished:
                break
            if not token:
                raise AnalyticsError("more rows to come but no resumption token")
            if pages >= MAX_PAGES:
                raise AnalyticsError(f"the report did not finish within {MAX_PAGES} pages")
        if headings is None:
            if rows:
                raise AnalyticsError("the report came without column headings")
            headings = {}
        named = named_rows(headings, rows)
        shown = tuple(h for column, h in sorted(headings.items(), key=_column_number)
                      if column != "Column0")
        return Report(headings=shown, rows=tuple(named), pages=pages, calls=self.calls)

    async def _page(self, path: str, token: str) -> Page:
        params = {"limit": str(self.page_size)}
        if token:
            params["token"] = token
        else:
            params |= {"path": path, "col_names": "true"}
        for attempt in range(THROTTLE_RETRIES + 1):
            status, text = await self._get(params)
            if status == 429 and attempt < THROTTLE_RETRIES:
                await self.sleep(min(10.0, 0.5 * 2 ** attempt))
                continue
            if status != 200:
                detail = ""
                with contextlib.suppress(AnalyticsError):
                    detail = _error_text(parse_xml(text))
                raise AnalyticsError(f"Alma answered {status}" + (f": {detail}" if detail else ""))
            return parse_page(text)
        raise AnalyticsError("Alma kept throttling the report")  # pragma: no cover

    async def _get(self, params: dict[str, str]) -> tuple[int, str]:
        """(status, text) of one call, refusing a body over MAX_PAGE_BYTES."""
        self.calls += 1
        try:
            async with self._http.stream("GET", self.url, params=params) as response:
                chunks, size = [], 0
                async for chunk in response.aiter_bytes():
                    size += len(chunk)
                    if size > MAX_PAGE_BYTES:
                        raise AnalyticsError(f"a report page is larger than {MAX_PAGE_BYTES} "
                                             "bytes: ask for fewer rows per page")
                    chunks.append(chunk)
                encoding = response.charset_encoding or "utf-8"
                try:
                    text = b"".join(chunks).decode(encoding)
                except (LookupError, UnicodeDecodeError):
                    raise AnalyticsError("a report page is not valid text") from None
                return response.status_code, text
        except httpx.HTTPError as exc:
            raise AnalyticsError(f"Alma could not be reached: {type(exc).__name__}") from None


def _column_number(item: tuple[str, str]) -> int:
    digits = item[0][len("Column"):]
    return int(digits) if digits.isdigit() else 1_000_000
