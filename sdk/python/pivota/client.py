"""The Pivota agent API client (standard library only).

One :class:`Pivota` object holds the key and the base URL and is safe
to reuse for many calls (not across threads at once).  Every method
returns the decoded JSON object of the 200 answer; every error is a
:class:`pivota.errors.PivotaError` subclass.

Retries: connection failures, 409 ``idempotency_in_flight``, 429 and
5xx are retried with exponential backoff and full jitter, or after
``Retry-After`` when the server sends one.  Every POST carries an
``Idempotency-Key`` (a fresh uuid4 unless the caller passes one) that
is reused by all its retries, so a retried POST never creates a second
order or charges twice.
"""

import http.client
import json
import os
import random
import socket
import time
import urllib.error
import urllib.parse
import urllib.request
import uuid
from decimal import Decimal
from typing import Any, Callable, Dict, Iterable, List, Mapping, Optional, Union

from . import __version__
from .errors import (APIConnectionError, PivotaError, error_from_response,
                     retry_after_seconds)
from .webhooks import construct_event

Amount = Union[str, int, Decimal]
JSON = Dict[str, Any]

DEFAULT_BASE_URL = "http://127.0.0.1:8080"


def _amount(value: Optional[Amount], name: str) -> Optional[str]:
    """A money amount as the wire's decimal string; floats are refused."""
    if value is None:
        return None
    if isinstance(value, bool) or isinstance(value, float):
        raise TypeError("%s must be a decimal string, int or Decimal, "
                        "never a float" % name)
    if isinstance(value, (int, Decimal)):
        return str(value)
    if isinstance(value, str):
        return value
    raise TypeError("%s must be a decimal string" % name)


def _query(params: Mapping[str, Any]) -> str:
    """A query string of the params that are not None; bools as true/false."""
    out = []
    for k, v in params.items():
        if v is None:
            continue
        if isinstance(v, bool):
            v = "true" if v else "false"
        elif isinstance(v, float):
            raise TypeError("%s must not be a float" % k)
        out.append((k, str(v)))
    return urllib.parse.urlencode(out)


def _seg(value: str, name: str) -> str:
    """One path segment, percent-encoded (slashes too)."""
    if not isinstance(value, str) or value == "":
        raise ValueError("%s must be a non-empty string" % name)
    return urllib.parse.quote(value, safe="")


class Pivota:
    """A client of the Pivota agent API v1.

    ``api_key`` defaults to ``$PIVOTA_API_KEY`` and ``base_url`` to
    ``$PIVOTA_API_URL`` (then ``http://127.0.0.1:8080``).  Paths are
    served at the host root, so any path in ``base_url`` is dropped.
    ``max_retries`` counts retries after the first attempt; waits grow
    from ``backoff_base`` seconds up to ``backoff_max``; a
    ``Retry-After`` longer than ``max_retry_after`` is not waited for
    (the :class:`RateLimitError` is raised instead).
    """

    def __init__(self, api_key: Optional[str] = None,
                 base_url: Optional[str] = None, *, timeout: float = 30.0,
                 max_retries: int = 3, backoff_base: float = 0.5,
                 backoff_max: float = 8.0, max_retry_after: float = 60.0,
                 bearer: bool = False,
                 sleep: Callable[[float], None] = time.sleep) -> None:
        key = api_key if api_key is not None else os.environ.get(
            "PIVOTA_API_KEY")
        if not key:
            raise ValueError("an API key is needed (api_key= or "
                             "$PIVOTA_API_KEY)")
        url = base_url or os.environ.get("PIVOTA_API_URL") or DEFAULT_BASE_URL
        parts = urllib.parse.urlsplit(url)
        if parts.scheme not in ("http", "https") or not parts.netloc:
            raise ValueError("base_url must be http(s)://host[:port]")
        self.api_key = key
        self.base_url = "%s://%s" % (parts.scheme, parts.netloc)
        self.timeout = timeout
        self.max_retries = max(0, int(max_retries))
        self.backoff_base = backoff_base
        self.backoff_max = backoff_max
        self.max_retry_after = max_retry_after
        self.bearer = bearer
        self._sleep = sleep
        self.last_response: Optional[Dict[str, Any]] = None

    # Webhooks Pivota sends: construct_event(raw_body, signature_header,
    # "whsec_...") verifies and parses one (see pivota.webhooks).
    verify_webhook = staticmethod(construct_event)

    # The transport.

    def _headers(self, idem: Optional[str], has_body: bool) -> Dict[str, str]:
        h = {"Accept": "application/json",
             "User-Agent": "pivota-python/%s" % __version__}
        if self.bearer:
            h["Authorization"] = "Bearer " + self.api_key
        else:
            h["X-API-Key"] = self.api_key
        if has_body:
            h["Content-Type"] = "application/json"
        if idem is not None:
            h["Idempotency-Key"] = idem
        return h

    def _backoff(self, attempt: int) -> float:
        cap = min(self.backoff_max, self.backoff_base * (2 ** attempt))
        return random.uniform(0, cap)

    def _once(self, method: str, url: str, data: Optional[bytes],
              headers: Dict[str, str]):
        """One attempt: (status, headers, body bytes); raises on no answer."""
        req = urllib.request.Request(url, data=data, headers=headers,
                                     method=method)
        try:
            with urllib.request.urlopen(req, timeout=self.timeout) as r:
                return r.status, dict(r.headers.items()), r.read()
        except urllib.error.HTTPError as e:
            try:
                body = e.read()
            finally:
                e.close()
            return e.code, dict(e.headers.items()), body

    def request(self, method: str, path: str, *,
                params: Optional[Mapping[str, Any]] = None,
                body: Optional[JSON] = None,
                idempotency_key: Optional[str] = None,
                ok: Iterable[int] = (200,), retry: bool = True) -> JSON:
        """Calls ``method path`` and returns the decoded JSON answer.

        POSTs always send a JSON body (``{}`` when there is none) and an
        ``Idempotency-Key``.  Statuses in ``ok`` are answers; any other
        is raised as a typed error after retries.
        """
        url = self.base_url + path
        if params:
            q = _query(params)
            if q:
                url += "?" + q
        data = None
        idem = None
        if method == "POST":
            data = json.dumps(body if body is not None else {},
                              separators=(",", ":")).encode()
            idem = idempotency_key or str(uuid.uuid4())
        elif body is not None:
            data = json.dumps(body, separators=(",", ":")).encode()
        headers = self._headers(idem, data is not None)
        attempt = 0
        while True:
            wait: Optional[float] = None
            try:
                status, rh, raw = self._once(method, url, data, headers)
            except (urllib.error.URLError, http.client.HTTPException,
                    socket.timeout, OSError) as e:
                reason = getattr(e, "reason", e)
                if not retry or attempt >= self.max_retries:
                    raise APIConnectionError(
                        "Could not reach Pivota at %s: %s" %
                        (self.base_url, reason)) from e
                self._sleep(self._backoff(attempt))
                attempt += 1
                continue
            try:
                decoded = json.loads(raw.decode("utf-8")) if raw else None
            except (UnicodeDecodeError, ValueError):
                decoded = None
            self.last_response = {"status": status, "headers": rh,
                                  "body": decoded}
            if status in ok and isinstance(decoded, dict):
                return decoded
            if status in ok:
                raise PivotaError("The server answered %d with a body that "
                                  "is not a JSON object." % status,
                                  status=status, headers=rh)
            err = error_from_response(status, decoded, rh)
            retryable = (status == 429 or status >= 500 or
                         (status == 409 and err.code ==
                          "idempotency_in_flight"))
            if not retry or not retryable or attempt >= self.max_retries:
                raise err
            after = retry_after_seconds(rh)
            if after is not None:
                if after > self.max_retry_after:
                    raise err
                wait = after + random.uniform(0, 0.1)
            else:
                wait = self._backoff(attempt)
            self._sleep(wait)
            attempt += 1

    def _get(self, path: str, **params: Any) -> JSON:
        return self.request("GET", path, params=params)

    def _post(self, path: str, body: Optional[JSON] = None,
              idempotency_key: Optional[str] = None) -> JSON:
        return self.request("POST", path, body=body,
                            idempotency_key=idempotency_key)

    # Service.

    def health_check(self) -> JSON:
        """GET /health: ``status`` is "ok", or "degraded" (HTTP 503)."""
        return self.request("GET", "/health", ok=(200, 503), retry=False)

    def get_rate_limits(self) -> JSON:
        """GET /agent/v1/rate-limits."""
        return self._get("/agent/v1/rate-limits")

    def get_analytics(self, days: int = 30) -> JSON:
        """GET /agent/v1/analytics/summary for the last ``days`` days."""
        return self._get("/agent/v1/analytics/summary", days=days)

    # Catalog.

    def list_merchants(self, limit: int = 20, offset: int = 0,
                       status: Optional[str] = None) -> JSON:
        """GET /agent/v1/merchants: the merchants this agent may buy from."""
        return self._get("/agent/v1/merchants", limit=limit, offset=offset,
                         status=status)

    def search_products(self, query: Optional[str] = None,
                        merchant_id: Optional[str] = None,
                        category: Optional[str] = None,
                        min_price: Optional[Amount] = None,
                        max_price: Optional[Amount] = None,
                        in_stock_only: Optional[bool] = None,
                        limit: int = 20, offset: Optional[int] = None,
                        cursor: Optional[str] = None) -> JSON:
        """GET /agent/v1/products/search; all merchants if none is named."""
        return self._get("/agent/v1/products/search", query=query,
                         merchant_id=merchant_id, category=category,
                         min_price=_amount(min_price, "min_price"),
                         max_price=_amount(max_price, "max_price"),
                         in_stock_only=in_stock_only, limit=limit,
                         offset=offset, cursor=cursor)

    def get_product(self, merchant_id: str, product_id: str) -> JSON:
        """GET /agent/v1/products/{merchant_id}/{product_id}."""
        return self._get("/agent/v1/products/%s/%s" % (
            _seg(merchant_id, "merchant_id"), _seg(product_id, "product_id")))

    def validate_cart(self, merchant_id: str, items: List[JSON],
                      shipping_country: str,
                      shipping_state: Optional[str] = None,
                      idempotency_key: Optional[str] = None) -> JSON:
        """POST /agent/v1/cart/validate: prices, stock, shipping and tax."""
        body: JSON = {"merchant_id": merchant_id, "items": items,
                      "shipping_country": shipping_country}
        if shipping_state is not None:
            body["shipping_state"] = shipping_state
        return self._post("/agent/v1/cart/validate", body, idempotency_key)

    # Orders and payments.

    def create_order(self, merchant_id: str, items: List[JSON],
                     customer_email: str, shipping_address: JSON,
                     currency: Optional[str] = None,
                     metadata: Optional[JSON] = None,
                     agent_session_id: Optional[str] = None,
                     preferred_psp: Optional[str] = None,
                     idempotency_key: Optional[str] = None) -> JSON:
        """POST /agent/v1/orders/create: a pending order, priced by Pivota."""
        body: JSON = {"merchant_id": merchant_id,
                      "customer_email": customer_email, "items": items,
                      "shipping_address": shipping_address}
        for k, v in (("currency", currency), ("metadata", metadata),
                     ("agent_session_id", agent_session_id),
                     ("preferred_psp", preferred_psp)):
            if v is not None:
                body[k] = v
        return self._post("/agent/v1/orders/create", body, idempotency_key)

    def pay(self, order_id: str, token: str,
            payment_method_type: str = "card",
            return_url: Optional[str] = None,
            idempotency_key: Optional[str] = None) -> JSON:
        """POST /agent/v1/payments with a PSP payment-method token.

        A decline raises :class:`PaymentDeclinedError` (HTTP 402) with
        ``decline_code``; 3-D Secure answers ``payment_status``
        "requires_action" with ``next_action``.
        """
        body: JSON = {"order_id": order_id,
                      "payment_method": {"type": payment_method_type,
                                         "token": token}}
        if return_url is not None:
            body["return_url"] = return_url
        return self._post("/agent/v1/payments", body, idempotency_key)

    def get_payment(self, payment_id: str) -> JSON:
        """GET /agent/v1/payments/{payment_id}."""
        return self._get("/agent/v1/payments/" +
                         _seg(payment_id, "payment_id"))

    def get_order(self, order_id: str) -> JSON:
        """GET /agent/v1/orders/{order_id}."""
        return self._get("/agent/v1/orders/" + _seg(order_id, "order_id"))

    def list_orders(self, merchant_id: Optional[str] = None,
                    status: Optional[str] = None, limit: int = 20,
                    offset: Optional[int] = None,
                    cursor: Optional[str] = None) -> JSON:
        """GET /agent/v1/orders: this agent's orders, newest first."""
        return self._get("/agent/v1/orders", merchant_id=merchant_id,
                         status=status, limit=limit, offset=offset,
                         cursor=cursor)

    def cancel_order(self, order_id: str, reason: Optional[str] = None,
                     idempotency_key: Optional[str] = None) -> JSON:
        """POST /agent/v1/orders/{id}/cancel (409 once paid: refund)."""
        body: JSON = {} if reason is None else {"reason": reason}
        return self._post("/agent/v1/orders/%s/cancel" %
                          _seg(order_id, "order_id"), body, idempotency_key)

    def refund(self, order_id: str, amount: Optional[Amount] = None,
               reason: Optional[str] = None,
               items: Optional[List[JSON]] = None,
               idempotency_key: Optional[str] = None) -> JSON:
        """POST /agent/v1/orders/{id}/refund; no amount and no items: all."""
        body: JSON = {}
        if amount is not None:
            body["amount"] = _amount(amount, "amount")
        if reason is not None:
            body["reason"] = reason
        if items is not None:
            body["items"] = items
        return self._post("/agent/v1/orders/%s/refund" %
                          _seg(order_id, "order_id"), body, idempotency_key)

    def track_order(self, order_id: str) -> JSON:
        """GET /agent/v1/fulfillment/track/{order_id}."""
        return self._get("/agent/v1/fulfillment/track/" +
                         _seg(order_id, "order_id"))

    def list_in_transit(self, merchant_id: Optional[str] = None,
                        limit: int = 20, offset: Optional[int] = None) -> JSON:
        """GET /agent/v1/fulfillment/orders/in-transit."""
        return self._get("/agent/v1/fulfillment/orders/in-transit",
                         merchant_id=merchant_id, limit=limit, offset=offset)

    # Outbound webhooks and events.

    def register_webhook(self, url: str,
                         events: Optional[List[str]] = None,
                         idempotency_key: Optional[str] = None) -> JSON:
        """POST /agent/v1/webhooks; the whsec_ ``secret`` is shown once."""
        body: JSON = {"url": url}
        if events is not None:
            body["events"] = events
        return self._post("/agent/v1/webhooks", body, idempotency_key)

    def list_webhooks(self) -> JSON:
        """GET /agent/v1/webhooks."""
        return self._get("/agent/v1/webhooks")

    def delete_webhook(self, webhook_id: str) -> JSON:
        """DELETE /agent/v1/webhooks/{id}."""
        return self.request("DELETE", "/agent/v1/webhooks/" +
                            _seg(webhook_id, "webhook_id"))

    def list_events(self, after: Optional[str] = None,
                    limit: Optional[int] = None) -> JSON:
        """GET /agent/v1/events?after=: the order events after one id."""
        return self._get("/agent/v1/events", after=after, limit=limit)
