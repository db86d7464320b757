"""What both clients share and that does no I/O: configuration, URLs, error mapping, retry decisions."""

from __future__ import annotations

import logging
import os
import random
from typing import Any, TypeVar

import httpx
from pydantic import ValidationError

from ._version import CONTRACT_VERSION, __version__
from .endpoints import AnswerT, Call
from .errors import BundleAPIError, UnavailableError, UnexpectedResponseError, error_class, parse_error_body
from .retry import (
    DEFAULT_BACKOFF_BASE,
    DEFAULT_BACKOFF_MAX,
    DEFAULT_MAX_RETRIES,
    RETRY_STATUSES,
    RETRY_TRANSPORT_ERRORS,
    RetryPolicy,
    parse_retry_after,
)

logger = logging.getLogger("bundle_client")

URL_ENV = "BUNDLE_API_URL"
TIMEOUT_ENV = "BUNDLE_API_TIMEOUT"
# The names before the service served several tasks; read when the new ones are unset.
LEGACY_URL_ENV = "SENTIMENT_API_URL"
LEGACY_TIMEOUT_ENV = "SENTIMENT_API_TIMEOUT"
DEFAULT_BASE_URL = "http://localhost:3000"
# A little longer than the service's own request timeout (traffic.timeout: 30 s in configuration.yaml),
# so that a slow request ends with the server's 504 rather than a client-side cut.
DEFAULT_TIMEOUT = 35.0

ClientT = TypeVar("ClientT", bound="_ClientBase")


def _payload(call: Call[Any]) -> dict[str, Any]:
    """httpx's arguments for a call's body: JSON, or form fields and files (multipart) for uploads."""
    return {"data": call.body, "files": call.files} if call.files else {"json": call.body}


def _check_base_url(base_url: str) -> str:
    url = base_url.strip().rstrip("/")
    if not url.startswith(("http://", "https://")):
        raise ValueError(f"base_url must start with http:// or https://, got {base_url!r}")
    return url


def _timeout_from_env() -> float:
    raw = (os.environ.get(TIMEOUT_ENV) or os.environ.get(LEGACY_TIMEOUT_ENV) or "").strip()
    if not raw:
        return DEFAULT_TIMEOUT
    try:
        seconds = float(raw)
    except ValueError:
        seconds = -1.0
    if not seconds > 0:
        raise ValueError(f"{TIMEOUT_ENV} must be a positive number of seconds, got {raw!r}")
    return seconds


class _ClientBase:
    """Configuration, URL building, error mapping and retry decisions; no I/O."""

    def __init__(
        self,
        base_url: str,
        timeout: float | httpx.Timeout,
        max_retries: int,
        backoff_base: float,
        backoff_max: float,
    ) -> None:
        self.base_url = _check_base_url(base_url)
        self.timeout = timeout if isinstance(timeout, httpx.Timeout) else httpx.Timeout(timeout)
        self.retry_policy = RetryPolicy(max_retries, backoff_base, backoff_max)
        self._rng = random.Random()
        self._headers = {"user-agent": f"model-bundle-client/{__version__}", "accept": "application/json"}

    @classmethod
    def from_env(
        cls: type[ClientT],
        *,
        max_retries: int = DEFAULT_MAX_RETRIES,
        backoff_base: float = DEFAULT_BACKOFF_BASE,
        backoff_max: float = DEFAULT_BACKOFF_MAX,
    ) -> ClientT:
        """A client for ``$BUNDLE_API_URL`` (default http://localhost:3000), timeout ``$BUNDLE_API_TIMEOUT``."""
        return cls(
            (os.environ.get(URL_ENV) or os.environ.get(LEGACY_URL_ENV) or "").strip() or DEFAULT_BASE_URL,
            timeout=_timeout_from_env(),
            max_retries=max_retries,
            backoff_base=backoff_base,
            backoff_max=backoff_max,
        )

    def __repr__(self) -> str:
        return f"{type(self).__name__}({self.base_url!r})"

    def _url(self, path: str) -> str:
        return self.base_url + path

    def _parse(self, call: Call[AnswerT], url: str, response: httpx.Response) -> AnswerT:
        try:
            return call.answer.model_validate_json(response.content)
        except ValidationError as exc:
            problems = "; ".join(f"{'.'.join(map(str, e['loc'])) or 'body'}: {e['msg']}" for e in exc.errors()[:5])
            raise UnexpectedResponseError(
                f"the answer does not match sentiment API contract {CONTRACT_VERSION} ({problems}); "
                "is base_url the sentiment service?",
                status=response.status_code,
                method=call.method,
                url=url,
            ) from None

    def _status_error(self, call: Call[AnswerT], url: str, response: httpx.Response, attempt: int) -> BundleAPIError:
        message, detail = parse_error_body(response)
        return error_class(response.status_code)(
            message,
            status=response.status_code,
            detail=detail,
            attempts=attempt,
            retry_after=parse_retry_after(response.headers.get("retry-after")),
            method=call.method,
            url=url,
        )

    def _transport_error(
        self, call: Call[AnswerT], url: str, exc: httpx.TransportError, attempt: int
    ) -> UnavailableError:
        error = UnavailableError(
            f"{type(exc).__name__}: {str(exc) or 'no answer'}", attempts=attempt, method=call.method, url=url
        )
        error.__cause__ = exc
        return error

    def _next_delay(self, error: BundleAPIError, cause: BaseException | None) -> float | None:
        retryable = isinstance(cause, RETRY_TRANSPORT_ERRORS) if cause is not None else error.status in RETRY_STATUSES
        delay = self.retry_policy.delay(error, retryable, self._rng)
        if delay is not None:
            logger.info(
                "%s %s failed (%s); retry %d of %d in %.3f s",
                error.method,
                error.url,
                error.status or error.message,
                error.attempts,
                self.retry_policy.max_retries,
                delay,
                extra={"retry_delay": delay, "retry_number": error.attempts, "status": error.status},
            )
        return delay
