"""File uploads, checked before BentoML reads them: bounded in bytes, multipart only, files where files
belong, of the content types the endpoint accepts.

A request model declares an upload with :func:`upload_field` (a ``pathlib.Path`` field: BentoML then
takes ``multipart/form-data`` for the endpoint, writes the file to a per-request temporary folder and
hands the handler its path). This ASGI middleware guards every such route, generated from the tasks'
request models like the rest of the API:

- a body over ``max_bytes`` (serving.yaml ``limits.max_upload_bytes``) is refused with 413 from its
  ``Content-Length`` before a byte is read, or as soon as a chunked body passes the bound;
- anything but ``multipart/form-data`` is refused with 415 and the ``curl -F`` line that works;
- a file field sent as text is refused: BentoML would otherwise treat the text as a URL and fetch it
  (this service reaches no network on a client's behalf);
- a file whose declared content type the endpoint does not accept is refused with 415, listing those
  it does.

The body is parsed once here (bounded, in memory) and replayed to BentoML unchanged.
"""

from __future__ import annotations

import fnmatch
import json
from collections.abc import Iterable
from pathlib import PurePath
from typing import Any

from pydantic import BaseModel, Field

Scope = dict[str, Any]


def upload_field(description: str, accept: Iterable[str]) -> Any:
    """A request field that is an uploaded file of one of the ``accept`` content types (globs allowed);
    OpenAPI shows them as the schema extension ``x-accept``."""
    return Field(description=description, json_schema_extra={"x-accept": list(accept)})


def upload_fields(request: type[BaseModel]) -> dict[str, list[str]]:
    """The file fields of a request model and the content types each accepts."""
    out = {}
    for name, info in request.model_fields.items():
        annotation = info.annotation
        if isinstance(annotation, type) and issubclass(annotation, PurePath):
            extra = info.json_schema_extra if isinstance(info.json_schema_extra, dict) else {}
            out[name] = [str(t) for t in extra.get("x-accept", ["*/*"])]  # type: ignore[union-attr]
    return out


class UploadRefused(Exception):
    def __init__(self, status: int, message: str) -> None:
        super().__init__(message)
        self.status = status
        self.message = message


def _human_bytes(n: int) -> str:
    return f"{n / 2**20:.1f} MiB" if n >= 2**20 else f"{n} bytes"


async def _send_json(send: Any, status: int, message: str) -> None:
    payload = json.dumps({"error": message}).encode()
    headers = [(b"content-type", b"application/json"), (b"content-length", str(len(payload)).encode())]
    if status == 413:
        headers.append((b"connection", b"close"))  # the rest of the body is not read
    await send({"type": "http.response.start", "status": status, "headers": headers})
    await send({"type": "http.response.body", "body": payload})


class UploadGuard:
    """``routes``: route path → {file field → accepted content types}; ``max_bytes``: bound per request."""

    def __init__(self, app: Any, routes: dict[str, dict[str, list[str]]], max_bytes: int, **_: Any) -> None:
        self.app = app
        self.routes = routes
        self.max_bytes = max_bytes

    async def __call__(self, scope: Scope, receive: Any, send: Any) -> None:
        fields = self.routes.get(scope.get("path", "")) if scope["type"] == "http" else None
        if fields is None or scope.get("method") != "POST":
            await self.app(scope, receive, send)
            return
        try:
            body = await self._checked_body(scope, receive, fields)
        except UploadRefused as refused:
            await _send_json(send, refused.status, refused.message)
            return

        replayed = False

        async def replay() -> dict[str, Any]:
            nonlocal replayed
            if not replayed:
                replayed = True
                return {"type": "http.request", "body": body, "more_body": False}
            return await receive()  # after the body: wait for the disconnect, as a server would

        await self.app(scope, replay, send)

    async def _checked_body(self, scope: Scope, receive: Any, fields: dict[str, list[str]]) -> bytes:
        headers = {k.decode("latin-1").lower(): v.decode("latin-1") for k, v in scope.get("headers") or []}
        example = " ".join(f"-F {name}=@recording.wav" for name in fields)
        content_type = headers.get("content-type", "")
        if not content_type.lower().startswith("multipart/form-data"):
            raise UploadRefused(
                415,
                f"{scope['path']} takes a file upload: send multipart/form-data with the file in the "
                f"{', '.join(repr(f) for f in fields)} field (curl {example} URL), "
                f"not {content_type or 'no Content-Type'}",
            )
        too_big = (
            f"the upload is larger than {_human_bytes(self.max_bytes)}, the maximum (serving.yaml "
            "limits.max_upload_bytes); send a shorter or compressed recording"
        )
        declared = headers.get("content-length")
        if declared is not None and declared.isdigit() and int(declared) > self.max_bytes:
            raise UploadRefused(413, too_big)
        chunks, size = [], 0
        while True:
            message = await receive()
            if message["type"] == "http.disconnect":
                raise UploadRefused(400, "the client disconnected before the upload was complete")
            chunk = message.get("body", b"")
            size += len(chunk)
            if size > self.max_bytes:
                raise UploadRefused(413, too_big)
            chunks.append(chunk)
            if not message.get("more_body", False):
                break
        body = b"".join(chunks)
        await self._check_parts(headers, body, fields)
        return body

    async def _check_parts(self, headers: dict[str, str], body: bytes, fields: dict[str, list[str]]) -> None:
        from starlette.datastructures import Headers, UploadFile
        from starlette.formparsers import MultiPartException, MultiPartParser

        async def stream() -> Any:
            yield body

        try:
            form = await MultiPartParser(Headers(headers), stream()).parse()
        except MultiPartException as exc:
            raise UploadRefused(400, f"the multipart body could not be read ({exc.message})") from None
        try:
            for name, accept in fields.items():
                values = form.getlist(name)
                if not values:
                    raise UploadRefused(400, f"{name}: this field is required (a file, e.g. curl -F {name}=@clip.wav)")
                if len(values) > 1:
                    raise UploadRefused(400, f"{name}: send one file, not {len(values)}")
                value = values[0]
                if not isinstance(value, UploadFile):
                    raise UploadRefused(
                        400,
                        f"{name}: must be an uploaded file (curl -F {name}=@clip.wav), not a text value; "
                        "this service does not fetch URLs",
                    )
                declared = (value.content_type or "application/octet-stream").split(";")[0].strip().lower()
                if not any(fnmatch.fnmatch(declared, pattern) for pattern in accept):
                    raise UploadRefused(
                        415, f"{name}: content type {declared} is not accepted; send one of {', '.join(accept)}"
                    )
        finally:
            await form.close()
