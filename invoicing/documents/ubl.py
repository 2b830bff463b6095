"""A document as UBL 2.1 XML in the EN 16931 core: an Invoice (type 380) or a
CreditNote (type 381, with a BillingReference to the invoice it corrects).

Mapping (docs/documents.md): the billed lines are the invoice lines at their amounts;
the discounts are document-level allowances, one per tax rate; wallet credits and
payments are the prepaid amount. So, exactly, to the minor unit:

    LineExtensionAmount = Σ line amounts                      (BR-CO-10)
    TaxExclusiveAmount  = LineExtensionAmount − AllowanceTotalAmount (BR-CO-13)
    TaxInclusiveAmount  = TaxExclusiveAmount + TaxTotal/TaxAmount    (BR-CO-15)
    PayableAmount       = TaxInclusiveAmount − PrepaidAmount         (BR-CO-16)

Written with lxml, in the schema's element order.
"""

from __future__ import annotations

from collections.abc import Iterable
from decimal import Decimal, localcontext

from lxml import etree

from invoicing.documents.model import Document, DocumentLine, Party, TaxSubtotal, unit_price
from rating.money import EXACT, ZERO, format_decimal, format_money

CBC = "urn:oasis:names:specification:ubl:schema:xsd:CommonBasicComponents-2"
CAC = "urn:oasis:names:specification:ubl:schema:xsd:CommonAggregateComponents-2"
INVOICE = "urn:oasis:names:specification:ubl:schema:xsd:Invoice-2"
CREDIT_NOTE = "urn:oasis:names:specification:ubl:schema:xsd:CreditNote-2"

CUSTOMIZATION_ID = "urn:cen.eu:en16931:2017"
INVOICE_TYPE = "380"  # UNCL 1001: commercial invoice
CREDIT_NOTE_TYPE = "381"  # UNCL 1001: credit note
UNIT_CODE = "C62"  # UN/ECE Rec. 20: one (a unit)
# UNCL 4461: 30 credit transfer (to the IBAN given), 1 not defined (no account known).
CREDIT_TRANSFER = "30"
NOT_DEFINED = "1"
DISCOUNT_REASON = ("95", "Discount")  # UNCL 5189: discount


def render_ubl(document: Document) -> bytes:
    """The UBL 2.1 XML of a document, UTF-8 with a declaration; same document, same bytes."""
    credit_note = document.kind == "credit_note"
    root_ns = CREDIT_NOTE if credit_note else INVOICE
    root = etree.Element(
        f"{{{root_ns}}}{'CreditNote' if credit_note else 'Invoice'}",
        nsmap={None: root_ns, "cac": CAC, "cbc": CBC},
    )
    writer = _Writer(document.currency, {t.rate: t.category for t in document.taxes})
    writer.text(root, "CustomizationID", CUSTOMIZATION_ID)
    writer.text(root, "ID", document.number)
    writer.text(root, "IssueDate", document.issue_date.isoformat())
    if not credit_note and document.due_date is not None:
        writer.text(root, "DueDate", document.due_date.isoformat())
    writer.text(
        root,
        "CreditNoteTypeCode" if credit_note else "InvoiceTypeCode",
        CREDIT_NOTE_TYPE if credit_note else INVOICE_TYPE,
    )
    for note in document.notes:
        writer.text(root, "Note", note)
    # The custom sections are free text of the invoice (EN 16931 BT-22), one note each.
    for section in document.sections:
        writer.text(root, "Note", f"{section.heading}: {section.text}")
    writer.text(root, "DocumentCurrencyCode", document.currency)
    if document.buyer.customer_id:
        writer.text(root, "BuyerReference", document.buyer.customer_id)
    if document.period is not None:
        period = _cac(root, "InvoicePeriod")
        writer.text(period, "StartDate", document.period.start.isoformat())
        writer.text(period, "EndDate", document.period.end.isoformat())
    if document.refers_to is not None:
        reference = _cac(_cac(root, "BillingReference"), "InvoiceDocumentReference")
        writer.text(reference, "ID", document.refers_to.number)
        writer.text(reference, "IssueDate", document.refers_to.issue_date.isoformat())
    writer.party(_cac(root, "AccountingSupplierParty"), document.seller)
    writer.party(_cac(root, "AccountingCustomerParty"), document.buyer)
    writer.payment(root, document)
    for subtotal in document.taxes:
        if subtotal.allowance:
            writer.allowance(root, subtotal)
    writer.tax_total(root, document.taxes)
    writer.monetary_total(root, document)
    billed = [line for line in document.lines if line.billed]
    for position, line in enumerate(billed, start=1):
        writer.line(root, position, line, credit_note=credit_note)
    etree.indent(root)
    xml: bytes = etree.tostring(root, encoding="UTF-8", xml_declaration=True)
    return xml + b"\n"


def _cbc(parent: etree._Element, name: str) -> etree._Element:
    return etree.SubElement(parent, f"{{{CBC}}}{name}")


def _cac(parent: etree._Element, name: str) -> etree._Element:
    return etree.SubElement(parent, f"{{{CAC}}}{name}")


def _sum(values: Iterable[Decimal]) -> Decimal:
    with localcontext(EXACT):
        return sum(values, ZERO)


class _Writer:
    """Writes the parts of one document, amounts in its currency."""

    def __init__(self, currency: str, categories: dict[Decimal, str]) -> None:
        self.currency = currency
        # A line's tax category is its rate's in the breakdown (E for an exempt buyer).
        self.categories = categories

    def text(self, parent: etree._Element, name: str, value: str) -> etree._Element:
        element = _cbc(parent, name)
        element.text = value
        return element

    def amount(self, parent: etree._Element, name: str, value: Decimal) -> None:
        element = self.text(parent, name, format_money(value, self.currency))
        element.set("currencyID", self.currency)

    def party(self, parent: etree._Element, who: Party) -> None:
        party = _cac(parent, "Party")
        if who.customer_id:
            self.text(_cac(party, "PartyIdentification"), "ID", who.customer_id)
        self.text(_cac(party, "PartyName"), "Name", who.name)
        if who.has_address:
            address = _cac(party, "PostalAddress")
            if who.address_lines:
                self.text(address, "StreetName", who.address_lines[0])
            if len(who.address_lines) > 1:
                self.text(address, "AdditionalStreetName", ", ".join(who.address_lines[1:]))
            if who.city:
                self.text(address, "CityName", who.city)
            if who.postal_code:
                self.text(address, "PostalZone", who.postal_code)
            self.text(_cac(address, "Country"), "IdentificationCode", who.country or "")
        if who.tax_id:
            scheme = _cac(party, "PartyTaxScheme")
            self.text(scheme, "CompanyID", who.tax_id)
            self.text(_cac(scheme, "TaxScheme"), "ID", "VAT")
        self.text(_cac(party, "PartyLegalEntity"), "RegistrationName", who.name)
        if who.email:
            self.text(_cac(party, "Contact"), "ElectronicMail", who.email)

    def payment(self, root: etree._Element, document: Document) -> None:
        means = _cac(root, "PaymentMeans")
        iban = document.payment.iban
        self.text(means, "PaymentMeansCode", CREDIT_TRANSFER if iban else NOT_DEFINED)
        if document.kind == "credit_note" and document.due_date is not None:
            self.text(means, "PaymentDueDate", document.due_date.isoformat())
        self.text(means, "PaymentID", document.number)
        if iban:
            self.text(_cac(means, "PayeeFinancialAccount"), "ID", iban)
        if document.payment.terms:
            self.text(_cac(root, "PaymentTerms"), "Note", document.payment.terms)

    def tax_category(self, parent: etree._Element, name: str, subtotal: TaxSubtotal) -> None:
        category = _cac(parent, name)
        self.text(category, "ID", subtotal.category)
        self.text(category, "Percent", format_decimal(subtotal.rate))
        if subtotal.exemption_reason:
            self.text(category, "TaxExemptionReason", subtotal.exemption_reason)
        self.text(_cac(category, "TaxScheme"), "ID", "VAT")

    def allowance(self, root: etree._Element, subtotal: TaxSubtotal) -> None:
        element = _cac(root, "AllowanceCharge")
        self.text(element, "ChargeIndicator", "false")
        code, reason = DISCOUNT_REASON
        self.text(element, "AllowanceChargeReasonCode", code)
        self.text(element, "AllowanceChargeReason", reason)
        self.amount(element, "Amount", subtotal.allowance)
        self.tax_category(element, "TaxCategory", subtotal)

    def tax_total(self, root: etree._Element, taxes: tuple[TaxSubtotal, ...]) -> None:
        total = _cac(root, "TaxTotal")
        self.amount(total, "TaxAmount", _sum(t.tax_amount for t in taxes))
        for subtotal in taxes:
            element = _cac(total, "TaxSubtotal")
            self.amount(element, "TaxableAmount", subtotal.taxable_amount)
            self.amount(element, "TaxAmount", subtotal.tax_amount)
            self.tax_category(element, "TaxCategory", subtotal)

    def monetary_total(self, root: etree._Element, document: Document) -> None:
        totals = document.totals
        with localcontext(EXACT):
            lines = _sum(line.amount for line in document.lines if line.billed)
            allowances = _sum(t.allowance for t in document.taxes)
            exclusive = lines - allowances
            inclusive = exclusive + _sum(t.tax_amount for t in document.taxes)
            prepaid = totals.credit + totals.amount_paid
        element = _cac(root, "LegalMonetaryTotal")
        self.amount(element, "LineExtensionAmount", lines)
        self.amount(element, "TaxExclusiveAmount", exclusive)
        self.amount(element, "TaxInclusiveAmount", inclusive)
        self.amount(element, "AllowanceTotalAmount", allowances)
        self.amount(element, "PrepaidAmount", prepaid)
        self.amount(element, "PayableAmount", totals.amount_due)

    def line(
        self, root: etree._Element, position: int, line: DocumentLine, *, credit_note: bool
    ) -> None:
        element = _cac(root, "CreditNoteLine" if credit_note else "InvoiceLine")
        self.text(element, "ID", str(position))
        quantity, price = line.quantity, line.unit_amount
        if price < 0:  # BR-27: a price is never negative; the sign moves to the quantity
            quantity, price = -quantity, -price
        counted = self.text(
            element,
            "CreditedQuantity" if credit_note else "InvoicedQuantity",
            format_decimal(quantity),
        )
        counted.set("unitCode", UNIT_CODE)
        self.amount(element, "LineExtensionAmount", line.amount)
        if line.period is not None:
            period = _cac(element, "InvoicePeriod")
            self.text(period, "StartDate", line.period.start.isoformat())
            self.text(period, "EndDate", line.period.end.isoformat())
        item = _cac(element, "Item")
        self.text(item, "Name", line.description)
        if line.metric:
            self.text(_cac(item, "SellersItemIdentification"), "ID", line.metric)
        category = _cac(item, "ClassifiedTaxCategory")
        rate = line.tax_rate if line.tax_rate is not None else ZERO
        self.text(category, "ID", self.categories.get(rate, "S" if rate > 0 else "Z"))
        self.text(category, "Percent", format_decimal(rate))
        self.text(_cac(category, "TaxScheme"), "ID", "VAT")
        price_element = _cac(element, "Price")
        unit = self.text(price_element, "PriceAmount", str(unit_price(price, self.currency)))
        unit.set("currencyID", self.currency)
