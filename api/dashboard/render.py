"""The dashboard's HTML: jinja2 templates (autoescaped), the filters that show money and
instants, and the headers every page carries (a strict CSP: scripts and styles from
this origin only, so chart data travels as JSON data blocks, never inline script)."""

from __future__ import annotations

from datetime import UTC, datetime
from decimal import Decimal
from pathlib import Path
from typing import Any

import jinja2
from fastapi import Request
from fastapi.responses import HTMLResponse

from rating.money import format_money

HERE = Path(__file__).parent
STATIC = HERE / "static"

_env = jinja2.Environment(
    loader=jinja2.FileSystemLoader(HERE / "templates"),
    autoescape=True,
    undefined=jinja2.StrictUndefined,
    trim_blocks=True,
    lstrip_blocks=True,
)


def _money(amount: Decimal | None, currency: str) -> str:
    """'1,234.50 USD': rounded once to the currency's minor unit, grouped for reading."""
    if amount is None:
        return "—"
    text = format_money(amount, currency)
    whole, dot, decimals = text.partition(".")
    sign = "-" if whole.startswith("-") else ""
    return f"{sign}{int(whole.lstrip('-')):,}{dot}{decimals} {currency}"


def _instant(value: datetime | None) -> str:
    if value is None:
        return "—"
    return value.astimezone(UTC).strftime("%Y-%m-%d %H:%M UTC")


def _day(value: datetime | None) -> str:
    return "—" if value is None else value.astimezone(UTC).strftime("%Y-%m-%d")


_env.filters["money"] = _money
_env.filters["instant"] = _instant
_env.filters["day"] = _day

SECURITY_HEADERS = {
    "Content-Security-Policy": (
        "default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data:; "
        "connect-src 'self'; form-action 'self'; frame-ancestors 'none'; base-uri 'none'"
    ),
    "X-Frame-Options": "DENY",
    "X-Content-Type-Options": "nosniff",
    "Referrer-Policy": "same-origin",
    "Cache-Control": "no-store",
}


def page(request: Request, template: str, status_code: int = 200, **context: Any) -> HTMLResponse:
    """A rendered template with the dashboard's security headers."""
    html = _env.get_template(template).render(request=request, **context)
    return HTMLResponse(html, status_code=status_code, headers=SECURITY_HEADERS)
