"""What the clients retry, and how long they wait: bounded exponential backoff with jitter, ``Retry-After``."""

from __future__ import annotations

import email.utils
import random
import time
from dataclasses import dataclass

import httpx

from .errors import BundleAPIError

DEFAULT_MAX_RETRIES = 3
DEFAULT_BACKOFF_BASE = 0.25
DEFAULT_BACKOFF_MAX = 10.0


# Every call is a prediction or a listing: idempotent, so repeating one after a failure is safe.
RETRY_STATUSES = frozenset({429, 502, 503, 504})
RETRY_TRANSPORT_ERRORS: tuple[type[httpx.TransportError], ...] = (
    httpx.TimeoutException,  # connect, read, write and pool timeouts
    httpx.NetworkError,  # connection refused or reset, broken pipe
    httpx.RemoteProtocolError,  # server closed the connection without an answer
    httpx.ProxyError,
)


@dataclass(frozen=True)
class RetryPolicy:
    """Bounded retries with exponential backoff and jitter.

    Retry ``n`` (0-based) waits a random time between half and all of ``min(backoff_max, backoff_base * 2**n)``
    ("equal jitter": clients that failed together spread out, and the wait still grows). When the server
    sends ``Retry-After`` the client waits at least that long; if it asks for more than ``backoff_max``,
    the client gives up at once and the error's ``retry_after`` says when to come back.
    """

    max_retries: int = DEFAULT_MAX_RETRIES
    backoff_base: float = DEFAULT_BACKOFF_BASE
    backoff_max: float = DEFAULT_BACKOFF_MAX

    def __post_init__(self) -> None:
        if self.max_retries < 0:
            raise ValueError(f"max_retries must be 0 or more, got {self.max_retries}")
        if self.backoff_base <= 0 or self.backoff_max < self.backoff_base:
            raise ValueError(
                f"need 0 < backoff_base <= backoff_max, got backoff_base={self.backoff_base}, "
                f"backoff_max={self.backoff_max}"
            )

    def backoff(self, retry: int, rng: random.Random) -> float:
        ceiling = min(self.backoff_max, self.backoff_base * 2.0**retry)
        return ceiling * (0.5 + 0.5 * rng.random())

    def delay(self, error: BundleAPIError, retryable: bool, rng: random.Random) -> float | None:
        """Seconds to wait before the next attempt, or None to give up and raise ``error``."""
        retries_done = error.attempts - 1
        if not retryable or retries_done >= self.max_retries:
            return None
        wait = self.backoff(retries_done, rng)
        if error.retry_after is not None:
            if error.retry_after > self.backoff_max:
                return None
            wait = max(wait, error.retry_after)
        return wait


def parse_retry_after(value: str | None) -> float | None:
    """``Retry-After`` in seconds, from either of its forms (delta-seconds or an HTTP date)."""
    if not value:
        return None
    try:
        return max(0.0, float(value))
    except ValueError:
        pass
    try:
        when = email.utils.parsedate_to_datetime(value)
    except (TypeError, ValueError):
        return None
    return max(0.0, when.timestamp() - time.time())
