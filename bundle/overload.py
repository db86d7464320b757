"""The overload and failure contract, free of BentoML: what the gateway refuses, with which status.

| situation                                                    | status | Retry-After |
|--------------------------------------------------------------|--------|-------------|
| too many requests in flight (``traffic.max_concurrency``)    | 429    | yes         |
| the runner's queue in the entry service is full              | 429    | yes         |
| the request cannot meet its deadline (predicted wait)        | 503    | yes         |
| the model's runner fails, or misses the deadline, no fallback| 503    | yes         |
| ``traffic.timeout`` passes (last resort, BentoML's own)      | 504    |             |

Every refusal carries ``{"error": "<what happened, in words>"}``. BentoML blanks the body of every
5xx it produces itself, so the project answers its 503s with a response of its own.
"""

from __future__ import annotations

import math
import time

DEADLINE_HEADER = "x-deadline-ms"


class RequestRefused(Exception):
    """A request the service cannot answer now; ``status`` and ``retry_after`` go to the client."""

    def __init__(self, status: int, message: str, retry_after: float | None = None) -> None:
        super().__init__(message)
        self.status = status
        self.message = message
        self.retry_after = retry_after

    def headers(self) -> dict[str, str]:
        if self.retry_after is None:
            return {}
        return {"Retry-After": str(max(1, math.ceil(self.retry_after)))}


class QueueFull(RequestRefused):
    def __init__(self, message: str, retry_after: float) -> None:
        super().__init__(429, message, retry_after)


class WouldMissDeadline(RequestRefused):
    def __init__(self, message: str, retry_after: float) -> None:
        super().__init__(503, message, retry_after)


class ModelUnavailable(RequestRefused):
    def __init__(self, message: str, retry_after: float = 5.0) -> None:
        super().__init__(503, message, retry_after)


class ModelPending(ModelUnavailable):
    """The model's runner is up but the model is not in the store yet (``make serve`` is training it)."""

    def __init__(self, message: str) -> None:
        super().__init__(message, retry_after=30.0)


class Deadline:
    """When a request must be answered by (``time.monotonic()`` seconds)."""

    def __init__(self, seconds: float) -> None:
        self.at = time.monotonic() + seconds
        self.seconds = seconds

    def left(self) -> float:
        return self.at - time.monotonic()

    @classmethod
    def from_header(cls, value: str | None, default_ms: int, max_ms: int) -> Deadline:
        """The client's ``X-Deadline-Ms`` if it is a sensible number of milliseconds, else the default.

        A client may ask for less time than the default, never for more than ``max_ms``."""
        if value is None:
            return cls(default_ms / 1000)
        try:
            asked = float(value)
        except ValueError:
            raise RequestRefused(
                400, f"header X-Deadline-Ms must be a number of milliseconds, not {value[:40]!r}"
            ) from None
        if not math.isfinite(asked) or asked < 1:
            raise RequestRefused(400, f"header X-Deadline-Ms must be at least 1 millisecond, not {value[:40]!r}")
        return cls(min(asked, max_ms) / 1000)
