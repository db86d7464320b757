"""Completes BentoML's generated OpenAPI document for people using Swagger UI.

BentoML documents each API's request and success schema. This ASGI middleware adds, on the way out of
``GET /docs.json``: a one-line ``summary`` per operation (the first line of its docstring), the
error responses every endpoint can give (400, 404, 429, 503, 504) with the ``{"error": ...}`` body
that errors.py guarantees, each with an example, and ``required`` on every request body that has
required fields. It also turns pydantic's JSON-Schema ``examples``
lists into OpenAPI 3.0's ``example`` (the document declares 3.0, where ``examples`` is not a schema
keyword), which is what Swagger UI's "Try it out" fills the request body from.
"""

from __future__ import annotations

import json
from typing import Any

ERROR_SCHEMA = {
    "type": "object",
    "title": "ErrorResponse",
    "required": ["error"],
    "properties": {
        "error": {"type": "string", "description": "What went wrong, in words."},
        "detail": {
            "type": "array",
            "description": "For invalid input: one entry per problem.",
            "items": {
                "type": "object",
                "properties": {"field": {"type": "string"}, "message": {"type": "string"}},
            },
        },
    },
}

ERRORS: dict[str, tuple[str, dict[str, Any]]] = {  # status -> (meaning, example body)
    "400": (
        "Invalid input: empty or too long text, too many texts, wrong JSON type, unknown field, body not JSON.",
        {
            "error": "text: must not be empty or only whitespace",
            "detail": [{"field": "text", "message": "must not be empty or only whitespace"}],
        },
    ),
    "404": (
        "Unknown model family or version.",
        {"error": "unknown model 'gpt'; available models: logreg, naive_bayes, transformer"},
    ),
    "429": (
        "Too many requests in flight, or the runner's queue is full; retry after the seconds in Retry-After.",
        {"error": "too many requests in flight (at most 512); retry after 1 second"},
    ),
    "503": (
        "The request could not be answered within its deadline (it was shed at once, or its model's runner "
        "failed or did not answer); retry after the seconds in Retry-After.",
        {"error": "model 'transformer' did not answer within 10000 ms: its runner (gpu) is busy or not responding"},
    ),
    "504": (
        "The request took longer than traffic.timeout (a last resort above every deadline).",
        {"error": "the request took longer than the service's time limit (traffic.timeout) and was cut off"},
    ),
}

# Endpoints that take a file upload (bundle/uploads.py) can also answer these.
UPLOAD_ERRORS: dict[str, tuple[str, dict[str, Any]]] = {
    "413": (
        "The upload is larger than serving.yaml limits.max_upload_bytes (refused before it is read).",
        {"error": "the upload is larger than 25.0 MiB, the maximum (serving.yaml limits.max_upload_bytes); ..."},
    ),
    "415": (
        "Not multipart/form-data, or a file of a content type the field does not accept.",
        {"error": "audio: content type text/plain is not accepted; send one of audio/wav, ..."},
    ),
}

DOCS_PATH = "/docs.json"


def _examples_to_example(node: Any) -> None:
    """Rewrite pydantic's JSON Schema into the OpenAPI 3.0 dialect the document declares."""
    if isinstance(node, dict):
        node.pop("propertyNames", None)  # JSON Schema only; the description names the keys
        for key in ("anyOf", "oneOf"):  # `X | None`: OpenAPI 3.0 has no null type, it has `nullable`
            options = node.get(key)
            if isinstance(options, list) and {"type": "null"} in options:
                rest = [o for o in options if o != {"type": "null"}]
                node["nullable"] = True
                if len(rest) == 1 and isinstance(rest[0], dict) and "$ref" not in rest[0]:
                    del node[key]
                    node.update({k: v for k, v in rest[0].items() if k not in node})
                else:
                    node[key] = rest
        if node.get("type") == "file":  # BentoML's name for an upload; OpenAPI 3.0 says binary string
            node["type"], node["format"] = "string", "binary"
        if "const" in node:
            node["enum"] = [node.pop("const")]
        if node.get("default", 0) is None:
            node["nullable"] = True
        if isinstance(node.get("examples"), list):  # a schema's examples (a media type's are a map)
            examples = node.pop("examples")
            if examples and "example" not in node:
                node["example"] = examples[0]
        for value in node.values():
            _examples_to_example(value)
    elif isinstance(node, list):
        for value in node:
            _examples_to_example(value)


def complete(spec: dict[str, Any]) -> dict[str, Any]:
    _examples_to_example(spec.get("paths", {}))
    _examples_to_example(spec.get("components", {}))
    schemas = spec.setdefault("components", {}).setdefault("schemas", {})
    schemas["ErrorResponse"] = ERROR_SCHEMA
    for path, item in spec.get("paths", {}).items():
        for method, operation in item.items():
            if method != "post" or not isinstance(operation, dict):
                continue
            description = (operation.get("description") or "").strip()
            operation.setdefault("summary", description.splitlines()[0] if description else path)
            responses = operation.setdefault("responses", {})
            body = operation.get("requestBody") or {}
            if any((media.get("schema") or {}).get("required") for media in body.get("content", {}).values()):
                body["required"] = True  # a request without its required fields has no body to leave out
            uploads = "multipart/form-data" in body.get("content", {})
            for status, (meaning, example) in (ERRORS | UPLOAD_ERRORS if uploads else ERRORS).items():
                # replaces BentoML's generic entries: errors.py shapes every 4xx body like this
                responses[status] = {
                    "description": meaning,
                    "content": {
                        "application/json": {
                            "schema": {"$ref": "#/components/schemas/ErrorResponse"},
                            "example": example,
                        }
                    },
                }
    return spec


class OpenAPICompletionMiddleware:
    def __init__(self, app: Any, **_: Any) -> None:
        self.app = app

    async def __call__(self, scope: dict[str, Any], receive: Any, send: Any) -> None:
        if scope["type"] != "http" or scope.get("path") != DOCS_PATH or scope.get("method") != "GET":
            await self.app(scope, receive, send)
            return
        start: dict[str, Any] | None = None
        chunks: list[bytes] = []

        async def capture(message: dict[str, Any]) -> None:
            nonlocal start
            if message["type"] == "http.response.start":
                start = message
            elif message["type"] == "http.response.body":
                chunks.append(message.get("body", b""))

        await self.app(scope, receive, capture)
        assert start is not None
        body = b"".join(chunks)
        if start["status"] == 200:
            body = json.dumps(complete(json.loads(body))).encode()
        headers = [(k, v) for k, v in start.get("headers", []) if k.lower() != b"content-length"]
        headers.append((b"content-length", str(len(body)).encode()))
        await send({**start, "headers": headers})
        await send({"type": "http.response.body", "body": body})
