"""Typed errors of the Pivota client.

Every error the API answers carries the wire shape of API.md:
``{"status": "error", "detail": ..., "error": {"type", "code",
"message", "param", "request_id"}}``.  :class:`PivotaError` exposes
those fields; the subclasses let callers catch what they can act on.
"""

from typing import Any, Dict, Mapping, Optional


class PivotaError(Exception):
    """An error answered by the API, or a failure to reach it.

    ``status`` is the HTTP status (``None`` when no response arrived),
    ``detail`` the human sentence, ``code``/``type``/``param`` the
    machine-readable parts of ``error``, ``request_id`` the id to quote
    to support, ``body`` the whole decoded body (or ``None``).
    """

    def __init__(self, detail: str, status: Optional[int] = None,
                 code: Optional[str] = None, type: Optional[str] = None,
                 param: Optional[str] = None,
                 request_id: Optional[str] = None,
                 body: Optional[Dict[str, Any]] = None,
                 headers: Optional[Mapping[str, str]] = None) -> None:
        super().__init__(detail)
        self.detail = detail
        self.status = status
        self.code = code
        self.type = type
        self.param = param
        self.request_id = request_id
        self.body = body
        self.headers = dict(headers or {})

    def __str__(self) -> str:
        parts = [self.detail]
        if self.status is not None:
            parts.append("(HTTP %d" % self.status +
                         (", %s" % self.code if self.code else "") + ")")
        if self.request_id:
            parts.append("[request %s]" % self.request_id)
        return " ".join(parts)


class APIConnectionError(PivotaError):
    """The server could not be reached, or the connection broke."""


class InvalidRequestError(PivotaError):
    """400, 411, 413, 414, 422: the request itself is wrong."""


class AuthenticationError(PivotaError):
    """401: missing, malformed, unknown or revoked API key."""


class PermissionDeniedError(PivotaError):
    """403: the key is valid but may not do this."""


class NotFoundError(PivotaError):
    """404: no such resource (or it belongs to another agent)."""


class ConflictError(PivotaError):
    """409: out of stock, price changed, not cancellable, in flight..."""


class PaymentDeclinedError(PivotaError):
    """402: the payment provider declined; see ``decline_code``."""

    def __init__(self, *args: Any, decline_code: Optional[str] = None,
                 payment_id: Optional[str] = None,
                 order_id: Optional[str] = None, **kw: Any) -> None:
        super().__init__(*args, **kw)
        self.decline_code = decline_code
        self.payment_id = payment_id
        self.order_id = order_id


class RateLimitError(PivotaError):
    """429: per-minute limit or daily quota; ``retry_after`` seconds."""

    def __init__(self, *args: Any, retry_after: Optional[float] = None,
                 **kw: Any) -> None:
        super().__init__(*args, **kw)
        self.retry_after = retry_after


class APIError(PivotaError):
    """5xx: the server failed; the message names the request id."""


class WebhookSignatureError(PivotaError):
    """A webhook's Pivota-Signature did not verify."""


_BY_STATUS = {
    400: InvalidRequestError,
    401: AuthenticationError,
    402: PaymentDeclinedError,
    403: PermissionDeniedError,
    404: NotFoundError,
    405: InvalidRequestError,
    409: ConflictError,
    411: InvalidRequestError,
    413: InvalidRequestError,
    414: InvalidRequestError,
    422: InvalidRequestError,
    429: RateLimitError,
}


def retry_after_seconds(headers: Mapping[str, str]) -> Optional[float]:
    """The Retry-After header as seconds, or None (dates are ignored)."""
    for k, v in headers.items():
        if k.lower() == "retry-after":
            try:
                s = float(v.strip())
            except ValueError:
                return None
            return s if s >= 0 else None
    return None


def error_from_response(status: int, body: Optional[Dict[str, Any]],
                        headers: Mapping[str, str]) -> PivotaError:
    """The typed error for an HTTP error response."""
    err = body.get("error") if isinstance(body, dict) else None
    if not isinstance(err, dict):
        err = {}
    detail = None
    if isinstance(body, dict) and isinstance(body.get("detail"), str):
        detail = body["detail"]
    if detail is None:
        detail = err.get("message") or "HTTP %d" % status
    request_id = err.get("request_id")
    if request_id is None:
        for k, v in headers.items():
            if k.lower() == "x-request-id":
                request_id = v
    kw: Dict[str, Any] = dict(status=status, code=err.get("code"),
                              type=err.get("type"), param=err.get("param"),
                              request_id=request_id, body=body,
                              headers=headers)
    cls = _BY_STATUS.get(status)
    if cls is None:
        cls = APIError if status >= 500 else PivotaError
    if cls is PaymentDeclinedError:
        src = body if isinstance(body, dict) else {}
        return PaymentDeclinedError(
            detail,
            decline_code=src.get("decline_code") or err.get("decline_code"),
            payment_id=src.get("payment_id") or err.get("payment_id"),
            order_id=src.get("order_id") or err.get("order_id"), **kw)
    if cls is RateLimitError:
        return RateLimitError(detail, retry_after=retry_after_seconds(headers),
                              **kw)
    return cls(detail, **kw)
