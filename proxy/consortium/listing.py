"""The page a request naming no institution gets under path routing: the consortium's
institutions, each a link to its own pages (names escaped: they come from the configuration,
but are shown as text, never markup)."""

from __future__ import annotations

import html

from starlette.responses import HTMLResponse

from proxy.consortium.institutions import Consortium

# The page needs nothing but its own markup and the first institution's stylesheet.
HEADERS = {
    "Content-Security-Policy": "default-src 'none'; style-src 'self'; base-uri 'none'; "
                               "form-action 'none'; frame-ancestors 'none'",
    "X-Content-Type-Options": "nosniff",
    "Referrer-Policy": "same-origin",
    "Cache-Control": "no-cache",
}


def institutions_page(consortium: Consortium, status: int = 200) -> HTMLResponse:
    name = html.escape(consortium.name)
    items = "\n".join(
        f'      <li><a href="{html.escape(i.prefix)}/">{html.escape(i.name)}</a></li>'
        for i in consortium.institutions)
    lead = ("Choose your library to see and pay its fines and fees." if status == 200 else
            "There is no library at this address. Choose yours:")
    style = html.escape(consortium.institutions[0].prefix + "/style.css")
    page = f"""<!doctype html>
<html lang="en">
<head>
  <meta charset="utf-8">
  <meta name="viewport" content="width=device-width, initial-scale=1">
  <title>{name}</title>
  <link rel="stylesheet" href="{style}">
</head>
<body>
  <header class="site-header"><div class="wrap"><p class="site-name">{name}</p></div></header>
  <main id="main" class="wrap">
    <h1>{name}</h1>
    <p class="lead">{lead}</p>
    <ul class="institutions">
{items}
    </ul>
  </main>
</body>
</html>
"""
    return HTMLResponse(page, status_code=status, headers=HEADERS)
