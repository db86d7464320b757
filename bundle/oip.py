"""The Open Inference Protocol (KServe / Triton / MLServer "v2"), REST form, for every served model of
every task, generated from the seam: a task's model takes one ``BYTES`` input (one element per text) and
answers the tensors its task declares (``Task.tensor_outputs``). Inference goes through the same gateway
as the project's own API: the same runners, batching, deadlines, records and overload answers.

    GET  /v2                                   server metadata
    GET  /v2/health/live, /v2/health/ready
    GET  /v2/models/{name}[/versions/{v}]      model metadata: inputs and outputs with datatype and shape
    GET  /v2/models/{name}[/versions/{v}]/ready
    POST /v2/models/{name}[/versions/{v}]/infer

``name`` is a model's name in serving.yaml (``logreg``, ``minilm``, ``marian_en_pt``, ...); ``v`` one of
its served store versions. Errors are the protocol's ``{"error": "..."}`` with a 4xx (503 with
``Retry-After`` when the model cannot answer now).
"""

from __future__ import annotations

import json
from typing import Any

from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from bundle.contract import MAX_BATCH_TEXTS, MAX_NAME_CHARS, clean_text
from bundle.gateway import CURRENT_DEADLINE, TaskGateway
from bundle.overload import DEADLINE_HEADER, Deadline, RequestRefused
from bundle.runner_contract import LoadedModel

SERVER_NAME = "model-bundle"
SERVER_VERSION = "0.2.0"
INPUT_NAME = "text"
MAX_DEADLINE_MS = 600_000


class ProtocolError(RequestRefused):
    def __init__(self, message: str, status: int = 400) -> None:
        super().__init__(status, message)


def _error(refused: RequestRefused) -> JSONResponse:
    return JSONResponse({"error": refused.message}, status_code=refused.status, headers=refused.headers())


def _service() -> Any:
    import bentoml

    return bentoml.get_current_service()


async def _resolve(request: Request) -> tuple[TaskGateway, LoadedModel]:
    """The gateway and served model a path names, or a 404 that lists what is served."""
    name = request.path_params["name"][:MAX_NAME_CHARS]
    version = request.path_params.get("version")
    gateways: dict[str, TaskGateway] = _service().gateways
    for gateway in gateways.values():
        if name in gateway.families:
            return gateway, await gateway.choose(name, version[:MAX_NAME_CHARS] if version else None)
    served = sorted(f for g in gateways.values() for f in g.families)
    raise ProtocolError(f"unknown model {name!r}; models served: {', '.join(served)}", 404)


def _metadata(gateway: TaskGateway, model: LoadedModel, versions: list[str]) -> dict[str, Any]:
    return {
        "name": model.family,
        "versions": versions,
        "platform": f"{SERVER_NAME}/{gateway.task.name}",
        "inputs": [{"name": INPUT_NAME, "datatype": "BYTES", "shape": [-1]}],
        "outputs": [{"name": n, "datatype": d, "shape": s} for n, d, s in gateway.task.tensor_outputs],
    }


def _texts(body: Any) -> list[str]:
    """The request's texts, checked against the protocol and the project's limits."""
    if not isinstance(body, dict) or not isinstance(body.get("inputs"), list) or len(body["inputs"]) != 1:
        raise ProtocolError(f"the request must have exactly one input, named {INPUT_NAME!r}")
    tensor = body["inputs"][0]
    if not isinstance(tensor, dict) or tensor.get("name") != INPUT_NAME:
        raise ProtocolError(
            f"unknown input {tensor.get('name') if isinstance(tensor, dict) else tensor!r}; the input is {INPUT_NAME!r}"
        )
    if tensor.get("datatype") != "BYTES":
        raise ProtocolError(f"input {INPUT_NAME!r} has datatype {tensor.get('datatype')!r}; it must be BYTES")
    data, shape = tensor.get("data"), tensor.get("shape")
    if not isinstance(data, list) or not all(isinstance(x, str) for x in data):
        raise ProtocolError(f"input {INPUT_NAME!r} must hold its texts as a list of strings")
    if not isinstance(shape, list) or shape not in ([len(data)], [len(data), 1]):
        raise ProtocolError(f"input {INPUT_NAME!r} has shape {shape!r} but {len(data)} elements; use [{len(data)}]")
    if not 1 <= len(data) <= MAX_BATCH_TEXTS:
        raise ProtocolError(f"input {INPUT_NAME!r} must hold 1 to {MAX_BATCH_TEXTS} texts, not {len(data)}")
    texts = []
    for i, text in enumerate(data):
        try:
            texts.append(clean_text(text))
        except ValueError as exc:
            raise ProtocolError(f"input {INPUT_NAME!r} element {i} {exc}") from None
    return texts


def _tensors(gateway: TaskGateway, outputs: list[Any], wanted: Any) -> list[dict[str, Any]]:
    rows = gateway.task.to_tensors(outputs)
    names = [str(o.get("name")) for o in wanted if isinstance(o, dict)] if isinstance(wanted, list) else None
    unknown = sorted(set(names or []) - set(rows))
    if unknown:
        raise ProtocolError(f"unknown output {unknown[0]!r}; outputs: {', '.join(rows)}")
    tensors = []
    for name, datatype, shape in gateway.task.tensor_outputs:
        if names and name not in names:
            continue
        values = rows[name]
        flat = [x for row in values for x in row] if values and isinstance(values[0], list) else list(values)
        dims = [len(values), *([len(values[0])] if values and isinstance(values[0], list) else [])]
        tensors.append(
            {
                "name": name,
                "datatype": datatype,
                "shape": dims if len(dims) == len(shape) else [len(values)],
                "data": flat,
            }
        )
    return tensors


async def server_metadata(request: Request) -> Response:
    return JSONResponse({"name": SERVER_NAME, "version": SERVER_VERSION, "extensions": []})


async def live(request: Request) -> Response:
    return JSONResponse({"live": True})


async def ready(request: Request) -> Response:
    service = _service()
    served = {m.runner for m in await service.pool.catalog(timeout=5.0)}
    missing = sorted(set(service.pool.clients) - served)
    if missing:
        return JSONResponse({"ready": False, "error": f"runners not answering: {', '.join(missing)}"}, status_code=503)
    return JSONResponse({"ready": True})


async def model_metadata(request: Request) -> Response:
    try:
        gateway, model = await _resolve(request)
    except RequestRefused as refused:
        return _error(refused)
    versions = [m.version for m in await gateway.pool.catalog() if m.family == model.family]
    return JSONResponse(_metadata(gateway, model, versions))


async def model_ready(request: Request) -> Response:
    try:
        await _resolve(request)
    except RequestRefused as refused:
        return _error(refused)
    return JSONResponse({"name": request.path_params["name"], "ready": True})


async def infer(request: Request) -> Response:
    try:
        body = json.loads(await request.body() or b"null")
    except ValueError as exc:
        return _error(ProtocolError(f"request body is not valid JSON ({exc})"))
    try:
        deadline = Deadline.from_header(request.headers.get(DEADLINE_HEADER), _service_deadline_ms(), MAX_DEADLINE_MS)
        token = CURRENT_DEADLINE.set(deadline)
        try:
            gateway, model = await _resolve(request)
            if not gateway.task.text_inputs:
                routes = " or ".join(e.route for e in gateway.task.endpoints)
                raise ProtocolError(
                    f"model {model.family!r} takes audio files, not BYTES texts; upload them to {routes} "
                    "as multipart/form-data"
                )
            texts = _texts(body)
            answer = await gateway.infer(texts, model=model.family, version=request.path_params.get("version"))
            outputs = _tensors(gateway, answer.outputs, body.get("outputs"))
        finally:
            CURRENT_DEADLINE.reset(token)
    except RequestRefused as refused:
        return _error(refused)
    reply: dict[str, Any] = {
        "model_name": answer.model.family,
        "model_version": answer.model.version,
        "outputs": outputs,
    }
    if isinstance(body.get("id"), str):
        reply["id"] = body["id"]
    return JSONResponse(reply)


def _service_deadline_ms() -> int:
    gateways: dict[str, TaskGateway] = _service().gateways
    return next(iter(gateways.values())).settings.limits.deadline_ms


app = Starlette(
    routes=[
        Route("/", server_metadata),
        Route("/health/live", live),
        Route("/health/ready", ready),
        Route("/models/{name}", model_metadata),
        Route("/models/{name}/ready", model_ready),
        Route("/models/{name}/infer", infer, methods=["POST"]),
        Route("/models/{name}/versions/{version}", model_metadata),
        Route("/models/{name}/versions/{version}/ready", model_ready),
        Route("/models/{name}/versions/{version}/infer", infer, methods=["POST"]),
    ]
)


class ServerMetadataPath:
    """``GET /v2`` is the protocol's server metadata; a mount at ``/v2`` would redirect it to ``/v2/``,
    which clients of the protocol do not follow. This middleware routes it to the mount's root."""

    def __init__(self, app: Any, **_: Any) -> None:
        self.app = app

    async def __call__(self, scope: dict[str, Any], receive: Any, send: Any) -> None:
        if scope["type"] == "http" and scope.get("path") == "/v2":
            scope = {**scope, "path": "/v2/", "raw_path": b"/v2/"}
        await self.app(scope, receive, send)
