"""Pivota: the Python client of the Pivota agent commerce API.

    from pivota import Pivota
    p = Pivota(api_key="ak_live_...", base_url="http://127.0.0.1:8080")
    hits = p.search_products("hoodie", limit=1)

Standard library only; Python 3.9 or newer.
"""

__version__ = "1.0.0"

from .client import Pivota  # noqa: E402
from .errors import (APIConnectionError, APIError,  # noqa: E402
                     AuthenticationError, ConflictError, InvalidRequestError,
                     NotFoundError, PaymentDeclinedError,
                     PermissionDeniedError, PivotaError, RateLimitError,
                     WebhookSignatureError)
from .webhooks import (compute_signature, construct_event,  # noqa: E402
                       sign_header, verify_signature)

PivotaClient = Pivota

__all__ = [
    "Pivota", "PivotaClient", "PivotaError", "APIConnectionError",
    "APIError", "AuthenticationError", "ConflictError",
    "InvalidRequestError", "NotFoundError", "PaymentDeclinedError",
    "PermissionDeniedError", "RateLimitError", "WebhookSignatureError",
    "compute_signature", "construct_event", "sign_header",
    "verify_signature", "__version__",
]
