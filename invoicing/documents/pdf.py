"""A document as a PDF page a customer can read: seller and buyer, the dates, a table
of lines, the tax summary, the totals with the amount due, how to pay.

ReportLab's platypus lays it out on A4; Source Sans Pro (a TrueType font shipped by
the `font-source-sans-pro` wheel) is embedded, so Zürich, Łódź and € print as such.
Deterministic: the PDF's dates are the issue date and ReportLab's invariant mode fixes
its ids, so the same document gives the same bytes. "Page n of N" needs N, so a
document of several pages is laid out twice.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from decimal import Decimal
from io import BytesIO
from typing import Any
from xml.sax.saxutils import escape

from reportlab.lib.pagesizes import A4
from reportlab.lib.styles import ParagraphStyle
from reportlab.lib.units import mm
from reportlab.pdfgen.canvas import Canvas
from reportlab.platypus import (
    BaseDocTemplate,
    Flowable,
    Frame,
    KeepTogether,
    PageTemplate,
    Paragraph,
    Spacer,
    Table,
    TableStyle,
)

from invoicing.documents.model import Document, DocumentLine, Party, long_date
from invoicing.documents.pdf_style import (
    BODY_WIDTH,
    FONT,
    FOOTER_HEIGHT,
    INK,
    MARGIN,
    MUTED,
    PAGE_HEIGHT,
    PAGE_WIDTH,
    RULE,
    SHADE,
    Styles,
    grouped,
    money,
    paragraph_styles,
    percent,
    price,
    quantity,
)


def render_pdf(document: Document) -> bytes:
    """The PDF of a document; the same document gives the same bytes."""
    look = paragraph_styles()
    first = _build(document, look, pages=None)
    if first.pages == 1:
        return first.data
    return _build(document, look, pages=first.pages).data


@dataclass(frozen=True)
class _Built:
    data: bytes
    pages: int


def _build(document: Document, styles: Styles, *, pages: int | None) -> _Built:
    out = BytesIO()
    issued = document.issue_date
    stamp = f"D:{issued:%Y%m%d}000000+00'00'"
    seen = [0]

    def footer(canvas: Canvas, _doc: BaseDocTemplate) -> None:
        seen[0] = canvas.getPageNumber()
        _footer(canvas, document, seen[0], pages)

    def canvasmaker(*args: Any, **kw: Any) -> Canvas:
        canvas = Canvas(*args, **kw)
        canvas.setDateFormatter(lambda *_: stamp)
        return canvas

    template = BaseDocTemplate(
        out,
        pagesize=A4,
        leftMargin=MARGIN,
        rightMargin=MARGIN,
        topMargin=MARGIN,
        bottomMargin=MARGIN + FOOTER_HEIGHT,
        title=f"{document.title} {document.number}",
        author=document.seller.name,
        subject=f"{document.title} {document.number} for {document.buyer.name}",
        creator="Meterline",
        invariant=1,
        lang="en",
    )
    frame = Frame(
        MARGIN,
        MARGIN + FOOTER_HEIGHT,
        BODY_WIDTH,
        PAGE_HEIGHT - 2 * MARGIN - FOOTER_HEIGHT,
        leftPadding=0,
        rightPadding=0,
        topPadding=0,
        bottomPadding=0,
        id="body",
    )
    template.addPageTemplates([PageTemplate(id="page", frames=[frame], onPage=footer)])
    canvas_factory: Callable[..., Canvas] = canvasmaker
    template.build(_story(document, styles), canvasmaker=canvas_factory)
    return _Built(out.getvalue(), seen[0])


def _footer(canvas: Canvas, document: Document, page: int, pages: int | None) -> None:
    canvas.saveState()
    canvas.setStrokeColor(RULE)
    canvas.setLineWidth(0.5)
    y = MARGIN + FOOTER_HEIGHT - 5 * mm
    canvas.line(MARGIN, y, PAGE_WIDTH - MARGIN, y)
    canvas.setFont(FONT, 7.5)
    canvas.setFillColor(MUTED)
    left = document.seller.name
    if document.seller.tax_id:
        left += f" · VAT {document.seller.tax_id}"
    canvas.drawString(MARGIN, y - 4 * mm, left)
    right = f"{document.title} {document.number}"
    if pages is not None and pages > 1:
        right += f" · Page {page} of {pages}"
    canvas.drawRightString(PAGE_WIDTH - MARGIN, y - 4 * mm, right)
    canvas.restoreState()


def _p(text: str, style: ParagraphStyle) -> Paragraph:
    return Paragraph(escape(text), style)


def _party_lines(party: Party) -> list[str]:
    lines = list(party.address_lines)
    place = " ".join(part for part in (party.postal_code, party.city) if part)
    if place:
        lines.append(place)
    if party.country:
        lines.append(party.country)
    return lines


def _party(
    party: Party, styles: Styles, *, heading: str | None, name_style: ParagraphStyle
) -> list[Flowable]:
    block: list[Flowable] = []
    if heading:
        block.append(_p(heading.upper(), styles.label))
    block.append(_p(party.name, name_style))
    block.extend(_p(line, styles.body) for line in _party_lines(party))
    if party.tax_id:
        block.append(_p(f"VAT / Tax ID: {party.tax_id}", styles.body))
    if party.email:
        block.append(_p(party.email, styles.body))
    return block


def _story(document: Document, styles: Styles) -> list[Flowable]:
    story: list[Flowable] = []
    header = Table(
        [[_party(document.seller, styles, heading=None, name_style=styles.seller),
          _p(document.title, styles.title)]],
        colWidths=[BODY_WIDTH * 0.6, BODY_WIDTH * 0.4],
    )  # fmt: skip
    header.setStyle(_plain_cells())
    story += [header, Spacer(1, 10 * mm)]

    details = [(f"{document.title} number", document.number)]
    details.append(("Issue date", long_date(document.issue_date)))
    if document.due_date is not None:
        details.append(("Due date", long_date(document.due_date)))
    if document.period is not None:
        details.append(
            (
                "Service period",
                f"{long_date(document.period.start)} – {long_date(document.period.end)}",
            )
        )
    if document.refers_to is not None:
        details.append(("Corrects invoice", document.refers_to.number))
    if document.buyer.customer_id:
        details.append(("Customer ID", document.buyer.customer_id))
    facts = Table(
        [[_p(label, styles.label), _p(value, styles.body)] for label, value in details],
        colWidths=[30 * mm, BODY_WIDTH * 0.45 - 30 * mm],
    )
    facts.setStyle(_plain_cells(padding=1.5))
    bill_to = _party(document.buyer, styles, heading="Bill to", name_style=styles.heading)
    parties = Table([[bill_to, facts]], colWidths=[BODY_WIDTH * 0.55, BODY_WIDTH * 0.45])
    parties.setStyle(_plain_cells())
    story += [parties, Spacer(1, 9 * mm)]

    story.append(_lines_table(document, styles))
    story.append(Spacer(1, 6 * mm))
    story.append(KeepTogether([_summary(document, styles)]))
    story += _payment(document, styles)
    story += _sections(document, styles)
    return story


def _plain_cells(padding: float = 0) -> TableStyle:
    return TableStyle(
        [
            ("VALIGN", (0, 0), (-1, -1), "TOP"),
            ("LEFTPADDING", (0, 0), (-1, -1), 0),
            ("RIGHTPADDING", (0, 0), (-1, -1), 4),
            ("TOPPADDING", (0, 0), (-1, -1), padding),
            ("BOTTOMPADDING", (0, 0), (-1, -1), padding),
        ]
    )


# Description, quantity, unit price, tax rate, tax, amount.
LINE_COLUMNS = (0.40, 0.11, 0.13, 0.08, 0.12, 0.16)


def _description(line: DocumentLine, styles: Styles) -> list[Flowable]:
    cell: list[Flowable] = [_p(line.description, styles.cell)]
    detail = []
    if line.metric:
        detail.append(line.metric)
    if line.period is not None:
        detail.append(f"{long_date(line.period.start)} – {long_date(line.period.end)}")
    if detail:
        cell.append(_p(" · ".join(detail), styles.detail))
    return cell


def _lines_table(document: Document, styles: Styles) -> Table:
    currency = document.currency
    head = ["Description", "Qty", "Unit price", "Tax %", "Tax", f"Amount ({currency})"]
    rows: list[list[Any]] = [
        [_p(head[0], styles.head)] + [_p(text, styles.head_right) for text in head[1:]]
    ]
    for line in document.lines:
        shown_tax = line.tax_rate is not None or line.tax_amount != 0
        rows.append(
            [
                _description(line, styles),
                _p(quantity(line.quantity), styles.cell_right),
                _p(price(line.unit_amount, currency), styles.cell_right),
                _p(percent(line.tax_rate), styles.cell_right),
                _p(money(line.tax_amount, currency) if shown_tax else "", styles.cell_right),
                _p(money(line.amount, currency), styles.cell_right),
            ]
        )
    table = Table(rows, colWidths=[BODY_WIDTH * w for w in LINE_COLUMNS], repeatRows=1)
    table.setStyle(
        TableStyle(
            [
                ("VALIGN", (0, 0), (-1, -1), "TOP"),
                ("LINEBELOW", (0, 0), (-1, 0), 0.8, INK),
                ("LINEBELOW", (0, 1), (-1, -1), 0.4, RULE),
                ("TOPPADDING", (0, 0), (-1, -1), 2.5),
                ("BOTTOMPADDING", (0, 0), (-1, -1), 3),
                ("LEFTPADDING", (0, 0), (0, -1), 0),
                ("RIGHTPADDING", (-1, 0), (-1, -1), 0),
            ]
        )
    )
    return table


def _summary(document: Document, styles: Styles) -> Table:
    """The tax summary (left) beside the totals (right)."""
    currency = document.currency
    tax_rows: list[list[Any]] = [
        [
            _p("Tax rate", styles.head),
            _p("Taxable", styles.head_right),
            _p("Tax", styles.head_right),
        ]
    ]
    for subtotal in document.taxes:
        name = percent(subtotal.rate)
        if subtotal.category == "E":
            name += " (exempt)"
        tax_rows.append(
            [
                _p(name, styles.cell),
                _p(money(subtotal.taxable_amount, currency), styles.cell_right),
                _p(money(subtotal.tax_amount, currency), styles.cell_right),
            ]
        )
    taxes = Table(tax_rows, colWidths=[22 * mm, 25 * mm, 22 * mm])
    taxes.setStyle(
        TableStyle(
            [
                ("LINEBELOW", (0, 0), (-1, 0), 0.6, RULE),
                ("LEFTPADDING", (0, 0), (0, -1), 0),
                ("TOPPADDING", (0, 0), (-1, -1), 2),
                ("BOTTOMPADDING", (0, 0), (-1, -1), 2),
            ]
        )
    )

    t = document.totals
    rows: list[tuple[str, Decimal]] = [("Subtotal", t.subtotal)]
    if t.discount:
        rows.append(("Discount", -t.discount))
    rows += [("Tax", t.tax), ("Total", t.total)]
    if t.credit:
        rows.append(("Credits applied", -t.credit))
    if t.amount_paid:
        rows.append(("Amount paid", -t.amount_paid))
    cells: list[list[Any]] = [
        [_p(label, styles.cell), _p(money(value, currency), styles.cell_right)]
        for label, value in rows
    ]
    cells.append(
        [
            _p(
                f"{'Credited' if document.kind == 'credit_note' else 'Amount due'} ({currency})",
                styles.due_label,
            ),
            _p(money(t.amount_due, currency), styles.due_value),
        ]
    )
    totals = Table(cells, colWidths=[42 * mm, 30 * mm])
    total_row = 3 if t.discount else 2
    totals.setStyle(
        TableStyle(
            [
                ("TOPPADDING", (0, 0), (-1, -1), 2),
                ("BOTTOMPADDING", (0, 0), (-1, -1), 2),
                ("LINEABOVE", (0, total_row), (-1, total_row), 0.6, RULE),
                ("BACKGROUND", (0, -1), (-1, -1), SHADE),
                ("LINEABOVE", (0, -1), (-1, -1), 1, INK),
                ("TOPPADDING", (0, -1), (-1, -1), 5),
                ("BOTTOMPADDING", (0, -1), (-1, -1), 6),
                ("RIGHTPADDING", (-1, 0), (-1, -1), 4),
            ]
        )
    )
    summary = Table([[taxes, totals]], colWidths=[BODY_WIDTH - 72 * mm, 72 * mm])
    summary.setStyle(_plain_cells())
    summary.hAlign = "LEFT"
    return summary


def _sections(document: Document, styles: Styles) -> list[Flowable]:
    """The invoice's custom sections: each heading kept with the start of its text,
    the text wrapped and, when long, carried on to the next page paragraph by
    paragraph (a paragraph itself splits between its lines)."""
    block: list[Flowable] = []
    for section in document.sections:
        heading = _p(section.heading, styles.section_heading)
        heading.keepWithNext = True
        block += [Spacer(1, 6 * mm), heading]
        for paragraph in section.text.replace("\r\n", "\n").split("\n\n"):
            if paragraph.strip():
                lines = (escape(line) for line in paragraph.strip("\n").split("\n"))
                block.append(Paragraph("<br/>".join(lines), styles.section_text))
    return block


def _payment(document: Document, styles: Styles) -> list[Flowable]:
    block: list[Flowable] = []
    payment = document.payment
    if payment.terms:
        block.append(_p(f"Payment terms: {payment.terms}.", styles.body))
    if payment.iban and document.totals.amount_due > 0:
        block.append(
            _p(
                f"Please transfer {money(document.totals.amount_due, document.currency)} "
                f"{document.currency} to IBAN {grouped(payment.iban)}, quoting {document.number}.",
                styles.body,
            )
        )
    block.extend(_p(note, styles.body) for note in document.notes)
    if not block:
        return []
    return [Spacer(1, 8 * mm), KeepTogether([_p("PAYMENT AND NOTES", styles.label), *block])]
