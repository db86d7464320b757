"""Client errors that a person can read.

BentoML answers bad input with a 4xx, but its bodies are written for developers ("1 validation error for
SentimentRequestIODescriptor", pydantic URLs) and a 4xx raised from an API arrives wrapped in a list.
This ASGI middleware rewrites every 4xx JSON body into one shape:

    {"error": "<one sentence per problem>", "detail": [{"field": "text", "message": "..."}]}

It also keeps client mistakes out of the error log: BentoML logs a full traceback for each invalid
request, which buries real failures; the filter below turns those into one warning line.
"""

from __future__ import annotations

import json
import logging
from typing import Any

from bentoml.exceptions import BentoMLException
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


class HumanErrorsMiddleware:
    def __init__(self, app: Any, **_: Any) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Any, send: Any) -> None:
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
                if 400 <= message["status"] < 500 and is_json:
                    held = message  # hold the start until the whole body is rewritten
                    return
            elif message["type"] == "http.response.body" and held is not None:
                chunks.append(message.get("body", b""))
                if message.get("more_body"):
                    return
                try:
                    body = humanize(held["status"], json.loads(b"".join(chunks) or b"null"))
                except ValueError:
                    body = {"error": b"".join(chunks).decode(errors="replace")[:500]}
                payload = json.dumps(body).encode()
                kept: list[tuple[bytes, bytes]] = [
                    (k, v) for k, v in held.get("headers", []) if k.lower() != b"content-length"
                ]
                kept.append((b"content-length", str(len(payload)).encode()))
                await send({**held, "headers": kept})
                await send({"type": "http.response.body", "body": payload})
                return
            await send(message)

        await self.app(scope, receive, send_wrapper)


class QuietClientErrors(logging.Filter):
    """Log a client's bad input as one line instead of an ERROR with a traceback."""

    def filter(self, record: logging.LogRecord) -> bool:
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
