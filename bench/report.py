"""The printed report: one Markdown table per benchmark (ready to paste into the README), from
the same dictionary that is written as JSON."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any


def ms(value: float | None) -> str:
    if value is None:
        return "–"
    return f"{value:.1f}" if value < 100 else f"{value:.0f}"


def pair(figures: dict[str, Any]) -> str:
    """`p50 / p99` in milliseconds."""
    return f"{ms(figures.get('p50_ms'))} / {ms(figures.get('p99_ms'))}"


def number(value: float | None, digits: int = 1) -> str:
    return "–" if value is None else f"{value:.{digits}f}"


def rate(figures: dict[str, Any]) -> str:
    """Requests per second, and how many answers were not 2xx (or failed) if any."""
    failed = figures["non_2xx"] + figures["errors"]
    return number(figures["rps"]) + (f" ({failed} failed)" if failed else "")


def table(header: list[str], rows: list[list[str]]) -> str:
    lines = ["| " + " | ".join(header) + " |", "|" + "|".join("---" for _ in header) + "|"]
    lines += ["| " + " | ".join(row) + " |" for row in rows]
    return "\n".join(lines)


def fees_table(result: dict[str, Any]) -> str:
    rows = []
    for row in result["rows"]:
        base, proxy, capped = row["baseline"], row["proxy"], row["proxy_capped"]
        rows.append([
            f"{row['alma_latency_ms']} ms", str(row["concurrency"]),
            rate(base), rate(proxy), number(row["ratios"]["rps"], 2),
            pair(base), pair(proxy),
            f"{number(base['server_cpu_ms_per_request'], 2)} / "
            f"{number(proxy['server_cpu_ms_per_request'], 2)}",
            rate(capped), pair(capped),
        ])
    return table(["Alma latency", "patrons", "baseline req/s", "proxy req/s", "ratio",
                  "baseline p50 / p99 ms", "proxy p50 / p99 ms", "CPU ms/req baseline / proxy",
                  "capped req/s", "capped p50 / p99 ms"], rows)


def roundtrip_table(result: dict[str, Any]) -> str:
    rows = [[name.replace("_", " "), str(case["payments"]),
             pair(case["notification_to_posted"]), pair(case["handler_response"])]
            for name, case in result["cases"].items()]
    return (f"Alma latency {result['alma_latency_ms']} ms, one payment at a time.\n\n"
            + table(["case", "payments", "notification → posted p50 / p99 ms",
                     "notification handler p50 / p99 ms"], rows))


def calls_table(result: dict[str, Any]) -> str:
    rows = []
    for name, case in result["cases"].items():
        phases = case["by_phase"]
        posting = ", ".join(f"{n} {kind}" for kind, n in case["phases"]["posting"].items())
        rows.append([name.replace("_", " "), str(case["fees_paid"]), str(phases["sign_in"]),
                     str(phases["fees_page"]), str(phases["reload"]),
                     str(phases["create_payment"]), f"{phases['posting']} ({posting})",
                     str(case["total"]), str(case["floor"])])
    return table(["case", "fees paid", "sign-in", "fees page", "reload within 30 s",
                  "start payment", "posting", "total", "floor 3 + N"], rows)


def throughput_table(result: dict[str, Any]) -> str:
    rows = []
    for row in result["rows"]:
        rss = row["proxy_rss_mib"]
        rows.append([
            row["proxy"], f"{row['alma_latency_ms']} ms", str(row["concurrency"]),
            number(row["payments_per_s"]), pair(row["create_to_posted"]),
            pair(row["ledger_paid_to_posted"]), pair(row["handler_from_access_log"]),
            f"{row['proxy_cpu_utilisation']:.0%}",
            f"{number(row['proxy_rss_mib_idle'])} / {number(rss['peak_vmhwm'])}",
        ])
    return table(["proxy Alma limit", "Alma latency", "patrons", "payments/s",
                  "create → posted p50 / p99 ms", "paid → posted p50 / p99 ms",
                  "handler p50 / p99 ms", "proxy CPU", "RSS idle / peak MiB"], rows)


def startup_table(result: dict[str, Any]) -> str:
    ready, imports = result["to_ready"], result["import_only"]
    return table(["runs", "launch → ready p50 / max ms", "imports alone p50 ms",
                  "idle RSS MiB"],
                 [[str(result["runs"]), f"{ms(ready['p50_ms'])} / {ms(ready['max_ms'])}",
                   ms(imports["p50_ms"]), number(result["idle_rss_mib"])]])


def posting_load_table(result: dict[str, Any]) -> str:
    pages = result["pages_under_load"]
    page_figures = f"{rate(pages)}, {pair(pages)}" if pages else "–"
    return table(["Alma latency", "payments", "notification → posted p50 / p99 ms, quiet",
                  f"… with {result['patrons_reloading']} patrons reloading",
                  "their fees pages: req/s, p50 / p99 ms"],
                 [[f"{result['alma_latency_ms']} ms", str(result["payments"]),
                   pair(result["quiet"]), pair(result["under_load"]),
                   page_figures]])


def kiosk_table(result: dict[str, Any]) -> str:
    rows = []
    for row in result["rows"]:
        calls = ", ".join(f"{number(n, 1).removesuffix('.0')} {kind}"
                          for kind, n in row["alma_calls_per_scan"].items())
        rows.append([f"{row['alma_latency_ms']} ms", str(row["scans"]),
                     pair(row["scan_to_fees_shown"]), pair(row["scan_to_fees_in_page"]),
                     calls or "–", ms(row["target_ms"])])
    return table(["Alma latency", "scans", "scan → fees on screen p50 / p99 ms",
                  "… → rows in the page p50 / p99 ms", "Alma calls a scan",
                  "target ms (150 + Alma)"], rows)


def kib(value: float) -> str:
    return f"{value / 1024:.1f}"


def page_table(result: dict[str, Any]) -> str:
    rows = []
    for row in result["rows"]:
        for visit, label in (("first", "first visit"), ("reload", "reload")):
            figures = row[visit]
            rows.append([f"{row['alma_latency_ms']} ms", label, str(row["loads"]),
                         pair(figures["to_fees_shown"]),
                         f"{kib(figures['bytes_max'])} / {kib(figures['body_bytes_max'])}",
                         str(figures["requests"]), str(figures["third_party_requests"])])
    return table(["Alma latency", "visit", "loads", "navigation → fees table p50 / p99 ms",
                  "KiB on the wire / bodies alone", "requests", "third-party requests"], rows)


def notify_rate_table(result: dict[str, Any]) -> str:
    rows = [[row["proxy"], f"{number(row['rate_per_s'], 0)}/s", str(row["notifications"]),
             pair(row["answer_from_schedule"]), pair(row["handler_from_access_log"]),
             f"{row['proxy_cpu_utilisation']:.0%}", str(row["posted_by_end"]),
             "–" if row["posted"] is None else str(row["posted"])]
            for row in result["rows"]]
    return table(["proxy Alma limit", "rate", "notifications",
                  "CashNet's wait from the scheduled send p50 / p99 ms",
                  "handler (access log) p50 / p99 ms", "proxy CPU", "posted by the last answer",
                  "posted within 2 min"], rows)


SECTIONS: dict[str, tuple[str, Callable[[dict[str, Any]], str]]] = {
    "fees": ("1. Fees page: GET /api/fees", fees_table),
    "roundtrip": ("2. Payment round trip", roundtrip_table),
    "calls": ("3. Alma calls per completed payment", calls_table),
    "throughput": ("4. End-to-end payments on one `patronpay serve`", throughput_table),
    "startup": ("5. Start-up of `patronpay serve`", startup_table),
    "posting_load": ("6. Posting while patrons reload their fees pages", posting_load_table),
    "kiosk": ("7. The kiosk from scan to fees on screen (Chromium)", kiosk_table),
    "page": ("8. The patron's fees page in the browser (Chromium)", page_table),
    "notify_rate": ("9. The notification handler at 100 payments a second", notify_rate_table),
}


def render(report: dict[str, Any]) -> str:
    machine = report["machine"]
    parts = [f"patronpay benchmarks ({report['profile']} run, {report['seconds']:.0f} s) on "
             f"{machine['cpus']} × {machine['cpu_model']}, Python {machine['python']}, "
             f"load average {machine['load_before']:.2f} before / "
             f"{machine['load_after']:.2f} after"]
    for name, (title, render_table) in SECTIONS.items():
        if name in report["results"]:
            parts.append(f"### {title}\n\n{render_table(report['results'][name])}")
        elif name in report.get("errors", {}):
            parts.append(f"### {title}\n\nFAILED: {report['errors'][name]}")
    return "\n\n".join(parts)
