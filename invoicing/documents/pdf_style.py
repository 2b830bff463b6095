"""How the PDF documents look: the embedded font, colours, paragraph styles, page
geometry, and how amounts, prices and quantities are written on the page."""

from __future__ import annotations

from dataclasses import dataclass
from decimal import Decimal
from functools import cache
from pathlib import Path
from typing import Any

import font_source_sans_pro
from reportlab.lib import colors
from reportlab.lib.enums import TA_LEFT, TA_RIGHT
from reportlab.lib.pagesizes import A4
from reportlab.lib.styles import ParagraphStyle
from reportlab.lib.units import mm
from reportlab.pdfbase import pdfmetrics
from reportlab.pdfbase.ttfonts import TTFont

from invoicing.documents.model import unit_price
from rating.money import canonical, round_money

FONT = "MeterlineSans"
BOLD = "MeterlineSans-Bold"

INK = colors.HexColor("#1f2933")
MUTED = colors.HexColor("#616e7c")
RULE = colors.HexColor("#cbd2d9")
SHADE = colors.HexColor("#f0f4f8")
ACCENT = colors.HexColor("#0b4f8a")

PAGE_WIDTH, PAGE_HEIGHT = A4
MARGIN = 18 * mm
BODY_WIDTH = PAGE_WIDTH - 2 * MARGIN
FOOTER_HEIGHT = 14 * mm


@cache
def _fonts() -> None:
    """Register the embedded fonts once per process."""
    files = Path(font_source_sans_pro.font_directory)
    pdfmetrics.registerFont(TTFont(FONT, str(files / "SourceSansPro-Regular.ttf")))
    pdfmetrics.registerFont(TTFont(BOLD, str(files / "SourceSansPro-Semibold.ttf")))
    pdfmetrics.registerFontFamily(FONT, normal=FONT, bold=BOLD, italic=FONT, boldItalic=BOLD)


def style(name: str, size: float = 9, leading: float = 1.3, **kw: Any) -> ParagraphStyle:
    kw.setdefault("fontName", FONT)
    kw.setdefault("textColor", INK)
    return ParagraphStyle(name, fontSize=size, leading=size * leading, **kw)


@dataclass(frozen=True)
class Styles:
    body: ParagraphStyle
    small: ParagraphStyle
    label: ParagraphStyle
    seller: ParagraphStyle
    title: ParagraphStyle
    cell: ParagraphStyle
    cell_right: ParagraphStyle
    detail: ParagraphStyle
    head: ParagraphStyle
    head_right: ParagraphStyle
    heading: ParagraphStyle
    due_label: ParagraphStyle
    due_value: ParagraphStyle
    section_heading: ParagraphStyle
    section_text: ParagraphStyle


@cache
def paragraph_styles() -> Styles:
    _fonts()
    return Styles(
        body=style("body"),
        small=style("small", 7.5, textColor=MUTED),
        label=style("label", 7.5, textColor=MUTED, fontName=BOLD),
        seller=style("seller", 13, fontName=BOLD),
        title=style("title", 22, fontName=BOLD, alignment=TA_RIGHT, textColor=ACCENT),
        cell=style("cell", 8.5, 1.18),
        cell_right=style("cell_right", 8.5, 1.18, alignment=TA_RIGHT),
        detail=style("detail", 7, 1.15, textColor=MUTED),
        head=style("head", 7.5, fontName=BOLD, textColor=MUTED),
        head_right=style("head_right", 7.5, fontName=BOLD, textColor=MUTED, alignment=TA_RIGHT),
        heading=style("heading", 9, fontName=BOLD, alignment=TA_LEFT),
        due_label=style("due_label", 11, fontName=BOLD),
        due_value=style("due_value", 11, fontName=BOLD, alignment=TA_RIGHT),
        section_heading=style("section_heading", 9.5, fontName=BOLD, spaceAfter=1.5 * mm),
        section_text=style("section_text", 8.5, 1.35, spaceAfter=2 * mm, splitLongWords=1),
    )


def money(amount: Decimal, currency: str) -> str:
    """An amount in the currency's minor units, thousands grouped: 1,234.50; JPY 1,235."""
    return format(round_money(amount, currency), ",f")


def price(amount: Decimal, currency: str) -> str:
    return format(unit_price(amount, currency), ",f")


def grouped(iban: str) -> str:
    """An IBAN in its printed form: groups of four (CH93 0076 2011 …)."""
    return " ".join(iban[i : i + 4] for i in range(0, len(iban), 4))


def quantity(value: Decimal) -> str:
    return format(canonical(value), ",f")


def percent(rate: Decimal | None) -> str:
    return "" if rate is None else f"{format(canonical(rate), 'f')}%"
