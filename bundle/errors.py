"""Errors that a person can read, and the parts of the overload contract BentoML does not keep itself.

BentoML answers bad input with a 4xx, but its bodies are written for developers ("1 validation error for
SentimentRequestIODescriptor", pydantic URLs) and a 4xx raised from an API arrives wrapped in a list.
This ASGI middleware rewrites every 4xx JSON body into one shape:

    {"error": "<one sentence per problem>", "detail": [{"field": "text", "message": "..."}]}

It also refuses, before BentoML sees it, a ``multipart/form-data`` body without a boundary (BentoML answers
those with a 500), adds ``Retry-After`` to every 429 (BentoML's ``traffic.max_concurrency`` 429s carry
none), and gives the 5xx bodies BentoML blanks a sentence that says what the status means.

It also keeps client mistakes out of the error log: BentoML logs a full traceback for each invalid
request, which buries real failures; the filter below turns those into one warning line.
"""

from __future__ import annotations

import json
import logging
from typing import Any

from pydantic import ValidationError

Scope = dict[str, Any]
Message = dict[str, Any]


def _field(loc: list[Any]) -> str:
    return ".".join(str(p) for p in loc) if loc else "body"


def _message(err: dict[str, Any]) -> str:
    """One readable sentence for one pydantic error, without the field name."""
    kind, loc, msg = err.get("type", ""), err.get("loc") or [], str(err.get("msg", "invalid value"))
    if kind == "json_invalid":
        return f"request body is not valid JSON ({msg.removeprefix('Invalid JSON: ')})"
    if kind == "model_type" and not loc:
        return 'request body must be a JSON object, for example {"text": "a gorgeous, witty film"}'
    if kind == "missing":
        return "this field is required"
    if kind == "extra_forbidden":
        return "unknown field"
    return msg.removeprefix("Value error, ").replace(" after validation", "")


def humanize(status: int, body: Any) -> dict[str, Any]:
    """Turn any 4xx body BentoML produces into ``{"error": ..., "detail": [...]}``."""
    if isinstance(body, list) and len(body) == 1 and isinstance(body[0], dict) and "error" in body[0]:
        body = body[0]
    if isinstance(body, dict) and isinstance(body.get("detail"), list):
        details = [d for d in body["detail"] if isinstance(d, dict)]
        detail = [{"field": _field(d.get("loc") or []), "message": _message(d)} for d in details]
        sentences = [d["message"] if d["field"] == "body" else f"{d['field']}: {d['message']}" for d in detail]
        return {"error": "; ".join(sentences) or str(body.get("error", "invalid request")), "detail": detail}
    if isinstance(body, dict) and "error" in body:
        return {"error": str(body["error"])}
    return {"error": f"request failed with status {status}"}


# What a bare status means, for the bodies BentoML leaves blank or generic.
STATUS_MEANING = {
    429: "too many requests are in flight; retry after the number of seconds in Retry-After",
    500: "the service failed on this request; the server log has the details",
    503: "the service cannot answer right now; retry after the number of seconds in Retry-After",
    504: "the request took longer than the service's time limit (traffic.timeout) and was cut off",
}
RETRY_AFTER_SECONDS = b"1"


async def _answer(send: Any, status: int, body: dict[str, Any], headers: list[tuple[bytes, bytes]] = ()) -> None:  # type: ignore[assignment]
    payload = json.dumps(body).encode()
    await send(
        {
            "type": "http.response.start",
            "status": status,
            "headers": [
                (b"content-type", b"application/json"),
                (b"content-length", str(len(payload)).encode()),
                *headers,
            ],
        }
    )
    await send({"type": "http.response.body", "body": payload})


def _malformed_content_type(scope: Scope) -> str | None:
    headers = dict(scope.get("headers") or [])
    content_type = headers.get(b"content-type", b"").decode("latin-1").lower()
    if content_type.startswith("multipart/form-data") and "boundary=" not in content_type:
        return "Content-Type multipart/form-data needs a boundary parameter (multipart/form-data; boundary=...)"
    return None


class HumanErrorsMiddleware:
    """``max_in_flight``: POST requests answered at once; more get 429 with ``Retry-After`` at once.

    This is the service's capacity limit (serving.yaml ``limits.max_requests_in_flight``). BentoML's own
    ``traffic.max_concurrency`` sits outside every middleware of the service, so its 429s cannot be
    given a ``Retry-After``; configuration.yaml keeps it above this one, as a backstop only."""

    def __init__(self, app: Any, max_in_flight: int = 1_000_000, **_: Any) -> None:
        self.app = app
        self.max_in_flight = max_in_flight
        self.in_flight = 0

    async def __call__(self, scope: Scope, receive: Any, send: Any) -> None:
        if scope["type"] != "http" or scope.get("method") != "POST":
            await self._rewrite(scope, receive, send)
            return
        if problem := _malformed_content_type(scope):
            await _answer(send, 400, {"error": problem})
            return
        if self.in_flight >= self.max_in_flight:
            await _answer(
                send,
                429,
                {"error": f"too many requests in flight (at most {self.max_in_flight}); retry after 1 second"},
                [(b"retry-after", RETRY_AFTER_SECONDS)],
            )
            return
        self.in_flight += 1
        try:
            await self._rewrite(scope, receive, send)
        finally:
            self.in_flight -= 1

    async def _rewrite(self, scope: Scope, receive: Any, send: Any) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        held: Message | None = None
        chunks: list[bytes] = []

        async def send_wrapper(message: Message) -> None:
            nonlocal held
            if message["type"] == "http.response.start":
                headers = dict(message.get("headers") or [])
                is_json = headers.get(b"content-type", b"").startswith(b"application/json")
                status = message["status"]
                if (400 <= status < 500 and is_json) or status in STATUS_MEANING:
                    held = message  # hold the start until the whole body is rewritten
                    return
            elif message["type"] == "http.response.body" and held is not None:
                chunks.append(message.get("body", b""))
                if message.get("more_body"):
                    return
                body = _readable_body(held["status"], b"".join(chunks))
                payload = json.dumps(body).encode()
                kept: list[tuple[bytes, bytes]] = [
                    (k, v) for k, v in held.get("headers", []) if k.lower() not in (b"content-length", b"content-type")
                ]
                kept += [(b"content-length", str(len(payload)).encode()), (b"content-type", b"application/json")]
                if held["status"] == 429 and not any(k.lower() == b"retry-after" for k, _ in kept):
                    kept.append((b"retry-after", RETRY_AFTER_SECONDS))
                await send({**held, "headers": kept})
                await send({"type": "http.response.body", "body": payload})
                return
            await send(message)

        await self.app(scope, receive, send_wrapper)


def _readable_body(status: int, raw: bytes) -> dict[str, Any]:
    """The project's own bodies pass through; BentoML's are made readable; blank or generic ones
    get the sentence of their status."""
    try:
        parsed = json.loads(raw or b"null")
    except ValueError:
        parsed = None
    if status >= 500 or status == 429:
        message = parsed.get("error") if isinstance(parsed, dict) else None
        generic = not message or str(message).startswith("An unexpected error has occurred")
        return {"error": STATUS_MEANING.get(status, "the service failed") if generic else str(message)}
    if parsed is None and raw:
        return {"error": raw.decode(errors="replace")[:500]}
    return humanize(status, parsed)


class QuietClientErrors(logging.Filter):
    """Log a client's bad input as one line instead of an ERROR with a traceback."""

    def filter(self, record: logging.LogRecord) -> bool:
        from bentoml.exceptions import BentoMLException  # here: humanize() is used without BentoML too

        exc = record.exc_info[1] if record.exc_info else None
        client_error = isinstance(exc, ValidationError) or (
            isinstance(exc, BentoMLException) and int(exc.error_code) < 500
        )
        if client_error:
            record.msg = f"{record.getMessage()}: {type(exc).__name__}: {str(exc).splitlines()[0]}"
            record.args = ()
            record.exc_info = None
            record.exc_text = None
            record.levelno, record.levelname = logging.WARNING, "WARNING"
        return True


def install_log_filter() -> None:
    logging.getLogger("bentoml._internal.server.http_app").addFilter(QuietClientErrors())
