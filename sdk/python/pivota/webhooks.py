"""Verifying the webhooks Pivota sends to agents.

Pivota signs like Stripe: ``Pivota-Signature: t=<unix time>,v1=<hex>``
where the hex is HMAC-SHA256 of ``"<t>." + raw body`` keyed with the
endpoint's whole ``whsec_`` secret.  Several ``v1`` entries may appear
(during secret rotation); any one may match.
"""

import hashlib
import hmac
import json
import time
from typing import Any, Dict, List, Optional, Tuple, Union

from .errors import WebhookSignatureError

DEFAULT_TOLERANCE = 300
SIGNATURE_HEADER = "Pivota-Signature"


def _parse(header: str) -> Tuple[int, List[str]]:
    ts: Optional[int] = None
    sigs: List[str] = []
    for part in header.split(","):
        k, sep, v = part.strip().partition("=")
        if not sep:
            continue
        if k == "t":
            try:
                ts = int(v)
            except ValueError:
                raise WebhookSignatureError("Malformed timestamp in the "
                                            "Pivota-Signature header.")
        elif k == "v1":
            sigs.append(v.strip())
    if ts is None or not sigs:
        raise WebhookSignatureError("The Pivota-Signature header needs "
                                    "t= and v1=.")
    return ts, sigs


def compute_signature(payload: Union[bytes, str], secret: str,
                      timestamp: int) -> str:
    """The v1 signature (hex) of payload at timestamp."""
    if isinstance(payload, str):
        payload = payload.encode("utf-8")
    msg = str(int(timestamp)).encode("ascii") + b"." + payload
    return hmac.new(secret.encode("utf-8"), msg, hashlib.sha256).hexdigest()


def sign_header(payload: Union[bytes, str], secret: str,
                timestamp: Optional[int] = None) -> str:
    """A Pivota-Signature header value for payload (for tests and tools)."""
    ts = int(time.time()) if timestamp is None else int(timestamp)
    return "t=%d,v1=%s" % (ts, compute_signature(payload, secret, ts))


def verify_signature(payload: Union[bytes, str], header: Optional[str],
                     secret: str, tolerance: int = DEFAULT_TOLERANCE,
                     now: Optional[float] = None) -> int:
    """Checks header against the raw payload; returns its timestamp.

    Raises :class:`WebhookSignatureError` when the header is missing or
    malformed, no ``v1`` matches (compared in constant time), or the
    timestamp is more than ``tolerance`` seconds away from now.
    """
    if not header:
        raise WebhookSignatureError("No Pivota-Signature header.")
    if not secret:
        raise WebhookSignatureError("No webhook secret configured.")
    ts, sigs = _parse(header)
    want = compute_signature(payload, secret, ts)
    good = False
    for s in sigs:
        # Every candidate is compared, so timing reveals nothing.
        if hmac.compare_digest(want.encode("ascii"),
                               s.encode("ascii", "replace")):
            good = True
    if not good:
        raise WebhookSignatureError("No signature in Pivota-Signature "
                                    "matches the payload.")
    t = time.time() if now is None else now
    if tolerance > 0 and abs(t - ts) > tolerance:
        raise WebhookSignatureError("The webhook timestamp is outside the "
                                    "%d s tolerance." % tolerance)
    return ts


def construct_event(payload: Union[bytes, str], header: Optional[str],
                    secret: str, tolerance: int = DEFAULT_TOLERANCE,
                    now: Optional[float] = None) -> Dict[str, Any]:
    """Verifies the signature, then parses the event (a JSON object)."""
    verify_signature(payload, header, secret, tolerance, now)
    if isinstance(payload, bytes):
        payload = payload.decode("utf-8")
    event = json.loads(payload)
    if not isinstance(event, dict):
        raise WebhookSignatureError("The webhook body is not a JSON object.")
    return event
