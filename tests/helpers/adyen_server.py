"""A local HTTP server that answers as Adyen's Checkout API v71 documents, and checks
what it gets.

Every request must carry `X-API-Key` (401 otherwise), a JSON body, and an
`Idempotency-Key` (our rule: 422 without); a repeated key is answered with the FIRST
answer (a repeat with another body is refused). `POST /v71/payments` must be exactly
a card-on-file charge of a stored card (the fields of `PAYMENT_FIELDS`, an integer
`amount.value`, `ContAuth` / `UnscheduledCardOnFile`, the shopper's own token, a
`reference` of at most 80 characters); a shopper set up with `declines=True` is
`Refused`, one with `pending=True` is `Received` (a debit whose result comes by
notification: `settle(psp, success)`). Refunds must name a payment made here and not
refund more than it. `POST /v71/paymentLinks` must be a Pay by Link request (the fields
of `LINK_FIELDS`, `expiresAt` as `YYYY-MM-DDThh:mm:ssZ`) and is answered 201 with the
link (`id` PL…, `url` on this server, `status: active`); `pay_link(id)` is a shopper
paying on it. A link of amount 0 is taken only with `storePaymentMethodMode: enabled`
(a zero-value authorisation storing the card, which also needs shopperReference and a
recurringProcessingModel); `store_on_link(id)` is a shopper saving a card on it and
`recurring_contract(psp)` the RECURRING_CONTRACT item Adyen sends about it.
`server.script(...)` and `server.lose_answers(...)` make it fail before
or after the effect.

`notification(psp, …)` / `refund_notification(refund psp, …)` build a
NotificationRequestItem as Adyen sends it, signed here with Adyen's documented HMAC
(computed independently of the adapter), and `webhook(*items)` the post that carries
them: the raw body and headers.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import re
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any

from tests.helpers.loopback import IdempotencyKeys, LoopbackServer, Request, Response

API_KEY = "AQEyhmfxLI3MaBFLw0m_meterline_test_key"
MERCHANT = "MeterlineECOM"
HMAC_KEY = "6C0E4B2F8D1A3C5E7F90A1B2C3D4E5F60718293A4B5C6D7E8F9001122334455A"
TOKEN = "8415718415172204"
PAYMENTS = "/v71/payments"
PAYMENT_LINKS = "/v71/paymentLinks"
PAYMENT_FIELDS = {
    "merchantAccount", "amount", "reference", "merchantOrderReference", "shopperReference",
    "paymentMethod", "shopperInteraction", "recurringProcessingModel", "metadata",
}  # fmt: skip
LINK_REQUIRED = {"merchantAccount", "amount", "reference"}
LINK_FIELDS = LINK_REQUIRED | {
    "description", "expiresAt", "returnUrl", "shopperReference", "shopperEmail", "metadata",
    "storePaymentMethodMode", "recurringProcessingModel",
}  # fmt: skip
RECURRING_MODELS = ("Subscription", "CardOnFile", "UnscheduledCardOnFile")
_REFUNDS = re.compile(r"/v71/payments/(?P<psp>[A-Z0-9]+)/refunds")
_UTC_TIME = re.compile(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ")


@dataclass
class Shopper:
    token: str = TOKEN
    declines: bool = False
    pending: bool = False


def _error(status: int, code: str, message: str, kind: str = "validation") -> Response:
    return Response(
        status, {"status": status, "errorCode": code, "message": message, "errorType": kind}
    )


def _is_minor_amount(amount: Any, *, zero: bool = False) -> bool:
    # `zero`: a zero-value authorisation that only stores the card.
    return (
        isinstance(amount, dict)
        and set(amount) == {"value", "currency"}
        and type(amount["value"]) is int  # minor units: never a decimal or a string
        and (amount["value"] > 0 or (zero and amount["value"] == 0))
        and isinstance(amount["currency"], str)
        and re.fullmatch("[A-Z]{3}", amount["currency"]) is not None
    )


class FakeAdyen:
    def __init__(self) -> None:
        self.server = LoopbackServer(self.app)
        self.shoppers: dict[str, Shopper] = {}
        self.payments: dict[str, dict[str, Any]] = {}
        self.refunds: dict[str, dict[str, Any]] = {}
        self.links: dict[str, dict[str, Any]] = {}
        self._keys = IdempotencyKeys()
        self._lock = threading.Lock()

    @property
    def url(self) -> str:
        return self.server.url

    def add_shopper(
        self, reference: str, *, token: str = TOKEN, declines: bool = False, pending: bool = False
    ) -> None:
        self.shoppers[reference] = Shopper(token, declines, pending)

    def posts(self, path: str = PAYMENTS) -> list[Request]:
        return [r for r in self.server.requests if r.method == "POST" and r.path == path]

    # -- the app ------------------------------------------------------------------------

    def app(self, request: Request) -> Response:
        if request.headers.get("x-api-key") != API_KEY:
            return _error(401, "000", "HTTP Status Response - Unauthorized", "security")
        if request.method != "POST":
            return _error(405, "000", "HTTP Status Response - Method Not Allowed")
        if not request.headers.get("content-type", "").startswith("application/json"):
            return _error(415, "000", "HTTP Status Response - Unsupported Media Type")
        key = request.headers.get("idempotency-key")
        if not key:
            return _error(422, "702", "an Idempotency-Key is required (Meterline's rule)")
        try:
            body = request.json()
        except ValueError:
            return _error(400, "702", "Structure of the request is not valid JSON")
        mismatch = _error(422, "704", "request already processed with other parameters")
        return self._keys.once(
            key, (request.path, body), lambda: self._post(request, body), mismatch
        )

    def _post(self, request: Request, body: Any) -> Response:
        with self._lock:
            if request.path == PAYMENTS:
                return self._payment(body)
            if request.path == PAYMENT_LINKS:
                return self._link(body)
            if found := _REFUNDS.fullmatch(request.path):
                return self._refund(found["psp"], body)
            return _error(404, "000", f"HTTP Status Response - Not Found: {request.path}")

    def _payment(self, body: dict[str, Any]) -> Response:
        problems = [f"unexpected field {k}" for k in sorted(set(body) - PAYMENT_FIELDS)]
        problems += [f"missing field {k}" for k in sorted(PAYMENT_FIELDS - set(body))]
        if body.get("merchantAccount") != MERCHANT:
            problems.append("merchantAccount is not this account")
        if not _is_minor_amount(body.get("amount")):
            problems.append("amount must be {value: integer minor units, currency}")
        if body.get("shopperInteraction") != "ContAuth":
            problems.append("shopperInteraction must be ContAuth")
        if body.get("recurringProcessingModel") != "UnscheduledCardOnFile":
            problems.append("recurringProcessingModel must be UnscheduledCardOnFile")
        if not isinstance(body.get("reference"), str) or not 0 < len(body["reference"]) <= 80:
            problems.append("reference must be a string of at most 80 characters")
        shopper = self.shoppers.get(str(body.get("shopperReference")))
        method = body.get("paymentMethod") or {}
        if shopper is None or method != {"type": "scheme", "storedPaymentMethodId": shopper.token}:
            problems.append("paymentMethod is not a stored card of the shopper")
        if problems:
            return _error(422, "14_030", "; ".join(problems))
        assert shopper is not None
        psp = self._psp()
        result: dict[str, Any] = {
            "pspReference": psp,
            "merchantReference": body["reference"],
            "amount": body["amount"],
        }
        if shopper.declines:
            result.update(
                resultCode="Refused", refusalReason="Not enough balance", refusalReasonCode="12"
            )
        elif shopper.pending:
            result["resultCode"] = "Received"
        else:
            result["resultCode"] = "Authorised"
        self.payments[psp] = {**body, "resultCode": result["resultCode"], "refunded": 0}
        return Response(200, result)

    def _refund(self, psp: str, body: dict[str, Any]) -> Response:
        payment = self.payments.get(psp)
        if payment is None or payment["resultCode"] != "Authorised":
            return _error(422, "167", "Original pspReference required for this operation")
        if set(body) != {"merchantAccount", "amount", "reference"} or not _is_minor_amount(
            body.get("amount")
        ):
            return _error(422, "14_030", "a refund is {merchantAccount, amount, reference}")
        amount = body["amount"]
        if amount["currency"] != payment["amount"]["currency"]:
            return _error(422, "137", "Invalid amount specified: currency differs")
        if payment["refunded"] + amount["value"] > payment["amount"]["value"]:
            return _error(422, "137", "Invalid amount specified: more than was paid")
        payment["refunded"] += amount["value"]
        refund_psp = f"R{len(self.refunds) + 1:015d}"
        refund = {
            "merchantAccount": body["merchantAccount"],
            "paymentPspReference": psp,
            "pspReference": refund_psp,
            "reference": body["reference"],
            "status": "received",
            "amount": amount,
        }
        self.refunds[refund_psp] = refund
        return Response(201, refund)

    def _link(self, body: dict[str, Any]) -> Response:
        problems = [f"unexpected field {k}" for k in sorted(set(body) - LINK_FIELDS)]
        problems += [f"missing field {k}" for k in sorted(LINK_REQUIRED - set(body))]
        if body.get("merchantAccount") != MERCHANT:
            problems.append("merchantAccount is not this account")
        stores = body.get("storePaymentMethodMode")
        if stores is not None and stores not in ("enabled", "askForConsent", "disabled"):
            problems.append("storePaymentMethodMode must be enabled, askForConsent or disabled")
        if stores in ("enabled", "askForConsent") and not (
            body.get("shopperReference")
            and body.get("recurringProcessingModel") in RECURRING_MODELS
        ):
            problems.append(
                "storing a payment method needs shopperReference and a recurringProcessingModel"
            )
        zero_auth = stores == "enabled" and (body.get("amount") or {}).get("value") == 0
        if not _is_minor_amount(body.get("amount"), zero=zero_auth):
            problems.append("amount must be {value: integer minor units, currency}")
        if not isinstance(body.get("reference"), str) or not 0 < len(body["reference"]) <= 80:
            problems.append("reference must be a string of at most 80 characters")
        expires = body.get("expiresAt")
        if expires is not None and not (isinstance(expires, str) and _UTC_TIME.fullmatch(expires)):
            problems.append("expiresAt must be YYYY-MM-DDThh:mm:ssZ")
        url = body.get("returnUrl")
        if url is not None and not (isinstance(url, str) and re.match("https?://", url)):
            problems.append("returnUrl must be an http(s) URL")
        if problems:
            return _error(422, "14_030", "; ".join(problems))
        link_id = f"PL{len(self.links) + 1:016X}"
        link = {
            **body,
            "expiresAt": expires or "2026-11-02T09:00:00Z",  # Adyen's default: 24 hours
            "reusable": False,
            "id": link_id,
            "status": "active",
            "url": f"{self.url}/pay/{link_id}",
        }
        self.links[link_id] = link
        return Response(201, link)

    def _psp(self) -> str:
        return f"P{len(self.payments) + 1:015d}"

    # -- what shoppers and banks do --------------------------------------------------------

    def pay_link(self, link_id: str, *, success: bool = True) -> str:
        """A shopper pays (or is refused) on link `link_id`: the payment's pspReference."""
        with self._lock:
            link = self.links[link_id]
            assert link["status"] == "active", f"link {link_id} is {link['status']}"
            psp = self._psp()
            self.payments[psp] = {
                "reference": link["reference"],
                "amount": link["amount"],
                "resultCode": "Authorised" if success else "Refused",
                "refunded": 0,
                "paymentLinkId": link_id,
            }
            if success:
                link["status"] = "completed"
            return psp

    def store_on_link(self, link_id: str, token: str = "9915718415172299") -> str:
        """A shopper saves a card on a zero-value storing link: the zero-value payment's
        pspReference; the card is stored as `token` for the link's shopperReference."""
        with self._lock:
            link = self.links[link_id]
            assert link["status"] == "active" and link.get("storePaymentMethodMode") == "enabled"
            psp = self._psp()
            self.payments[psp] = {
                "reference": link["reference"],
                "amount": link["amount"],
                "resultCode": "Authorised",
                "refunded": 0,
                "paymentLinkId": link_id,
                "token": token,
            }
            self.shoppers[link["shopperReference"]] = Shopper(token)
            link["status"] = "completed"
            return psp

    def recurring_contract(self, psp: str) -> dict[str, Any]:
        """The RECURRING_CONTRACT item Adyen sends when payment `psp` stored a card: the
        card's storedPaymentMethodId as pspReference, the payment as originalReference."""
        payment = self.payments[psp]
        extra = {"shopperReference": "unsigned, not read", "recurring.recurringDetailReference":
                 payment["token"]}  # fmt: skip
        return _signed_item(
            payment["token"], psp, payment["reference"], payment["amount"],
            "RECURRING_CONTRACT", True, extra,
        )  # fmt: skip

    def settle(self, psp: str, *, success: bool = True) -> None:
        """A payment answered `Received` ends (the debit collected, or not)."""
        with self._lock:
            self.payments[psp]["resultCode"] = "Authorised" if success else "Refused"

    # -- notifications ------------------------------------------------------------------

    def notification(
        self, psp: str, event_code: str = "AUTHORISATION", *, success: bool = True
    ) -> dict[str, Any]:
        """The NotificationRequestItem Adyen sends about payment `psp`, signed."""
        payment = self.payments[psp]
        extra = {"paymentLinkId": payment["paymentLinkId"]} if "paymentLinkId" in payment else {}
        if event_code == "AUTHORISATION":
            return _signed_item(
                psp, "", payment["reference"], payment["amount"], event_code, success, extra
            )
        # A modification of the payment (capture, cancellation) has its own pspReference.
        own = f"M{psp[1:]}"
        return _signed_item(
            own, psp, payment["reference"], payment["amount"], event_code, success, extra
        )

    def refund_notification(
        self, refund_psp: str, event_code: str = "REFUND", *, success: bool = True
    ) -> dict[str, Any]:
        """The item Adyen sends about refund `refund_psp` (its pspReference, the payment's
        as originalReference, the refund request's reference as merchantReference)."""
        refund = self.refunds[refund_psp]
        return _signed_item(
            refund_psp,
            refund["paymentPspReference"],
            refund["reference"],
            refund["amount"],
            event_code,
            success,
            {},
        )

    def webhook(self, *items: dict[str, Any]) -> tuple[bytes, dict[str, str]]:
        """The standard notification post carrying `items`: raw body and headers."""
        post = {
            "live": "false",
            "notificationItems": [{"NotificationRequestItem": item} for item in items],
        }
        return json.dumps(post).encode(), {"Content-Type": "application/json"}


def _signed_item(
    psp: str,
    original: str,
    reference: str,
    amount: dict[str, Any],
    event_code: str,
    success: bool,
    extra: dict[str, str],
) -> dict[str, Any]:
    # Adyen's HMAC, per docs.adyen.com "Verify HMAC signatures": base64 of HMAC-SHA256,
    # keyed with the hex-decoded key, over the eight fields joined by ":".
    flag = "true" if success else "false"
    item: dict[str, Any] = {
        "eventCode": event_code,
        "success": flag,
        "pspReference": psp,
        "merchantAccountCode": MERCHANT,
        "merchantReference": reference,
        "amount": amount,
        "eventDate": "2026-11-03T10:00:00+01:00",
        "paymentMethod": "visa",
        "operations": ["CANCEL", "CAPTURE", "REFUND"] if event_code == "AUTHORISATION" else [],
    }
    if original:
        item["originalReference"] = original
    if not success:
        item["reason"] = "Refused"
    signed = ":".join(
        [psp, original, MERCHANT, reference, str(amount["value"]), amount["currency"],
         event_code, flag]
    )  # fmt: skip
    mac = hmac.new(bytes.fromhex(HMAC_KEY), signed.encode(), hashlib.sha256).digest()
    item["additionalData"] = {**extra, "hmacSignature": base64.b64encode(mac).decode()}
    return item


@contextmanager
def fake_adyen() -> Iterator[FakeAdyen]:
    fake = FakeAdyen()
    with fake.server.running():
        yield fake
