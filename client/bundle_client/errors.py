"""Typed errors: one class per thing a caller can do something about.

======================  =====================================  ==========================================
class                   when                                   what the caller usually does
======================  =====================================  ==========================================
BadRequestError         400, 413, 422: the input was rejected  fix the input (``message`` says what)
NotFoundError           404: unknown model family or version   pick one from ``models()``
OverloadedError         429, 503 after the retries ran out     slow down; ``retry_after`` if the server
                                                               said when
UnavailableError        refused/reset connection, timeout,     check the server; it was retried already
                        502, 504 after the retries ran out
ServerError             500 and other 5xx                      report it; not retried (a bug repeats)
UnexpectedResponseError 2xx whose body is not the contract's   check ``base_url`` points at this API
======================  =====================================  ==========================================

All derive from :class:`BundleAPIError`, which carries ``status`` (None when no HTTP answer came),
``message`` (the server's sentence), ``detail`` (per-field problems) and ``attempts``.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from http import HTTPStatus
from typing import Any

import httpx


@dataclass(frozen=True)
class ErrorDetail:
    """One problem with one field of the request, as the server reported it."""

    field: str
    message: str


class BundleAPIError(Exception):
    """Base class of every error the client raises for a failed call."""

    def __init__(
        self,
        message: str,
        *,
        status: int | None = None,
        detail: list[ErrorDetail] | None = None,
        attempts: int = 1,
        retry_after: float | None = None,
        method: str | None = None,
        url: str | None = None,
    ) -> None:
        super().__init__(message)
        self.message = message
        self.status = status
        self.detail: list[ErrorDetail] = detail or []
        self.attempts = attempts
        self.retry_after = retry_after
        self.method = method
        self.url = url

    def __str__(self) -> str:
        where = f" ({self.method} {self.url})" if self.method and self.url else ""
        tries = f" after {self.attempts} attempts" if self.attempts > 1 else ""
        if self.status is None:
            return f"{self.message}{where}{tries}"
        try:
            reason = HTTPStatus(self.status).phrase
        except ValueError:
            reason = "HTTP error"
        return f"{self.status} {reason}: {self.message}{where}{tries}"

    def __repr__(self) -> str:
        return f"{type(self).__name__}(status={self.status!r}, message={self.message!r}, attempts={self.attempts})"


class BadRequestError(BundleAPIError):
    """The server rejected the input (400, 413, 422). Retrying the same request cannot succeed."""


class NotFoundError(BundleAPIError):
    """The model family or version is not served (404); ``message`` lists what is."""


class OverloadedError(BundleAPIError):
    """Too many requests in flight (429) or the server shed load (503), and the retries ran out."""


class UnavailableError(BundleAPIError):
    """No usable answer: connection refused or reset, a timeout, or 502/504, and the retries ran out."""


class ServerError(BundleAPIError):
    """The server failed (500 or another 5xx not covered above). Not retried: a bug usually repeats."""


class UnexpectedResponseError(BundleAPIError):
    """A success status whose body does not match the contract: usually ``base_url`` names another service."""


_BY_STATUS: dict[int, type[BundleAPIError]] = {
    400: BadRequestError,
    413: BadRequestError,
    422: BadRequestError,
    404: NotFoundError,
    429: OverloadedError,
    503: OverloadedError,
    502: UnavailableError,
    504: UnavailableError,
}


def error_class(status: int) -> type[BundleAPIError]:
    """The error class for an HTTP status that is not a success."""
    if status in _BY_STATUS:
        return _BY_STATUS[status]
    return ServerError if status >= 500 else BundleAPIError


def _detail(items: Any) -> list[ErrorDetail]:
    if not isinstance(items, list):
        return []
    return [
        ErrorDetail(field=str(item.get("field", "body")), message=str(item.get("message", "")))
        for item in items
        if isinstance(item, dict)
    ]


def parse_error_body(response: httpx.Response) -> tuple[str, list[ErrorDetail]]:
    """The server's ``{"error": ..., "detail": [...]}``; any other body is summarised, never raised on."""
    try:
        body: Any = response.json()
    except (json.JSONDecodeError, UnicodeDecodeError):
        body = None
    # BentoML wraps some errors in a one-element list; the service's middleware normally unwraps them.
    if isinstance(body, list) and len(body) == 1:
        body = body[0]
    if isinstance(body, dict) and isinstance(body.get("error"), str):
        return body["error"], _detail(body.get("detail"))
    text = response.text.strip()
    if text:
        return text[:500], []
    return f"request failed with status {response.status_code}", []
