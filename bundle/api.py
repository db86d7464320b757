"""Turns each task's endpoints into BentoML API methods of the entry service, generated from the seam.

Every generated method does the same few things: it takes the validated request (BentoML parsed it
with the endpoint's request model), sets the request's deadline (serving.yaml ``tasks.<task>.deadline_ms``
or ``limits.deadline_ms``, or less when the client's ``X-Deadline-Ms`` header asks), runs the task's
handler, and answers a
refusal (bundle/overload.py) with its status, ``Retry-After`` and a JSON body that says what happened.
BentoML would blank the body of a 5xx it raised itself, so those responses are built here.
"""

from __future__ import annotations

import logging
from typing import Any

import bentoml
from starlette.responses import JSONResponse

from bundle.gateway import CURRENT_DEADLINE
from bundle.overload import DEADLINE_HEADER, Deadline, RequestRefused
from bundle.task import Endpoint, Task

logger = logging.getLogger("bentoml.bundle.api")

# A client may ask for a shorter deadline than the default, never for longer than this.
MAX_DEADLINE_MS = 600_000


def refusal_response(refused: RequestRefused, ctx: Any = None) -> JSONResponse:
    if ctx is not None:  # BentoML copies the context's status and headers onto whatever the API returns
        ctx.response.status_code = refused.status
        ctx.response.metadata.update(refused.headers())
    return JSONResponse({"error": refused.message}, status_code=refused.status, headers=refused.headers())


def api_method(task: Task, endpoint: Endpoint) -> Any:
    """A ``@bentoml.api`` method for one endpoint; the service instance holds ``gateways[task.name]``."""

    async def method(self: Any, ctx=None, **fields: Any) -> Any:  # BentoML finds ctx by name, unannotated
        request = endpoint.request.model_construct(**fields)  # validated by BentoML already
        gateway = self.gateways[task.name]
        default_deadline_ms = gateway.deadline_ms
        headers = ctx.request.headers if ctx is not None and ctx.request is not None else {}
        try:
            token = CURRENT_DEADLINE.set(
                Deadline.from_header(headers.get(DEADLINE_HEADER), default_deadline_ms, MAX_DEADLINE_MS)
            )
        except RequestRefused as refused:
            return refusal_response(refused, ctx)
        try:
            return await endpoint.handler(gateway, request)
        except RequestRefused as refused:
            if refused.status >= 500:
                logger.warning("%s answered %d: %s", endpoint.route, refused.status, refused.message)
            return refusal_response(refused, ctx)
        finally:
            CURRENT_DEADLINE.reset(token)

    method.__name__ = method.__qualname__ = endpoint.method_name()
    method.__doc__ = endpoint.handler.__doc__
    return bentoml.api(route=endpoint.route, input_spec=endpoint.request, output_spec=endpoint.response)(method)


def add_task_apis(cls: type, tasks: dict[str, Task]) -> None:
    """Attach every endpoint of every task to the (not yet decorated) service class."""
    for task in tasks.values():
        for endpoint in task.endpoints:
            name = endpoint.method_name()
            if hasattr(cls, name):
                raise ValueError(f"two endpoints want the method name {name!r} ({endpoint.route})")
            setattr(cls, name, api_method(task, endpoint))
