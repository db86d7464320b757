"""The entry service, BentoML's entry point. It only composes:

- the runners (runners/): one service per hardware profile, started only when serving.yaml gives it a
  model to serve;
- the tasks (tasks/): each task's endpoints become typed API methods (bundle/api.py) answered through
  one gateway per task (bundle/gateway.py: model choice, routing, fallback, shadows, records);
- ``/models``, the error and OpenAPI middleware, and the web page at ``/ui/``.

    BENTOML_CONFIG=configuration.yaml bentoml serve service:BundleService
"""

from __future__ import annotations

import logging
import os
from pathlib import Path

import bentoml
from starlette.staticfiles import StaticFiles

from bundle import oip
from bundle.api import add_task_apis
from bundle.contract import ModelInfo, ModelsRequest, ModelsResponse, TaskInfo
from bundle.errors import HumanErrorsMiddleware, install_log_filter
from bundle.gateway import TaskGateway
from bundle.openapi_docs import OpenAPICompletionMiddleware
from bundle.runner_pool import RunnerPool
from bundle.settings import load_settings
from bundle.uploads import UploadGuard, upload_fields
from runners import PROFILES
from tasks.registry import TASKS

logger = logging.getLogger("bentoml.bundle.service")
SETTINGS = load_settings()
RUNNERS_IN_USE = SETTINGS.runners_in_use()
SERVED_TASKS = {name: task for name, task in TASKS.items() if SETTINGS.models_of(name)}
_unknown = sorted(set(SETTINGS.tasks) - set(TASKS))
if _unknown:
    raise bentoml.exceptions.BentoMLConfigException(
        f"serving.yaml names tasks the bundle does not have: {_unknown}; tasks: {sorted(TASKS)}"
    )

# The container image: a plain Python 3.11 base and no apt step (every dependency ships as a wheel).
# Where no registry is reachable, deploy/container/base-image.sh names a locally built base instead.
IMAGE = bentoml.images.Image(
    base_image=os.environ.get("BENTO_BASE_IMAGE", "python:3.11-slim"), distro="none", python_version="3.11"
)


class BundleService:
    """The public API of every served task."""

    def __init__(self) -> None:
        self.runner_clients: dict[str, object] = {name: getattr(self, f"{name}_runner") for name in RUNNERS_IN_USE}
        expected = {str(r): {t for d in SETTINGS.models_on(r).values() for t in d.tags()} for r in RUNNERS_IN_USE}
        self.pool = RunnerPool(self.runner_clients, SETTINGS.runners, expected)
        self.gateways = {name: TaskGateway(task, SETTINGS, self.pool) for name, task in SERVED_TASKS.items()}
        for gateway in self.gateways.values():
            gateway.peers = self.gateways

    @bentoml.api(route="/models", input_spec=ModelsRequest, output_spec=ModelsResponse)
    async def models(self) -> ModelsResponse:
        """The models being served, with the metrics recorded when they were made, and each task's routing."""
        infos = [
            ModelInfo(
                family=m.family,
                task=m.task,
                name=m.name,
                version=m.version,
                default=m.default,
                runner=m.runner,
                pipeline=m.pipeline,
                labels=m.labels,
                created_at=m.created_at,
                gate_passed=m.metadata.get("gate_passed"),
                metrics=m.metadata.get("metrics", {}),
                evaluation=m.metadata.get("evaluation"),
                params=m.metadata.get("params", {}),
                data_sha256=m.metadata.get("data", {}).get("sha256"),
                runtime=m.runtime or None,
            )
            for m in await self.pool.catalog()
        ]
        tasks = {
            name: TaskInfo(
                default_model=gateway.default_model,
                routes=[e.route for e in gateway.task.endpoints],
                routing=gateway.conf.routing.model_dump() if gateway.conf.routing else None,
            )
            for name, gateway in self.gateways.items()
        }
        sentiment = tasks.get("sentiment")
        return ModelsResponse(
            default_family=sentiment.default_model if sentiment else "",
            models=infos,
            tasks=tasks,
            routing=sentiment.routing if sentiment else None,
        )

    @bentoml.on_shutdown
    async def finish_shadows(self) -> None:
        """Let shadow calls in flight finish (or time out) so their records are written."""
        for gateway in self.gateways.values():
            if gateway.shadows is not None:
                await gateway.shadows.drain()


# Dependencies are class attributes (BentoML packages what they declare); only runners with models.
for _name in RUNNERS_IN_USE:
    setattr(BundleService, f"{_name}_runner", bentoml.depends(PROFILES[_name]))
add_task_apis(BundleService, SERVED_TASKS)
BundleService = bentoml.service(workers=1, image=IMAGE)(BundleService)  # type: ignore[misc]

BundleService.add_asgi_middleware(  # type: ignore[attr-defined]
    HumanErrorsMiddleware, max_in_flight=SETTINGS.limits.max_requests_in_flight
)
BundleService.add_asgi_middleware(OpenAPICompletionMiddleware)  # type: ignore[attr-defined]
# Endpoints that take files (audio): bounded, multipart-only, checked before BentoML reads them.
BundleService.add_asgi_middleware(  # type: ignore[attr-defined]
    UploadGuard,
    routes={e.route: f for t in SERVED_TASKS.values() for e in t.endpoints if (f := upload_fields(e.request))},
    max_bytes=SETTINGS.limits.max_upload_bytes,
)

# The Open Inference Protocol (v2) for every served model, generated from the seam (bundle/oip.py).
BundleService.mount_asgi_app(oip.app, path="/v2", name="open-inference-protocol")  # type: ignore[attr-defined]
BundleService.add_asgi_middleware(oip.ServerMetadataPath)  # type: ignore[attr-defined]

# The web page, served by the service itself at /ui/ (static files, no build step); Swagger UI stays at /.
FRONTEND_DIR = Path(__file__).resolve().parent / "frontend"
BundleService.mount_asgi_app(  # type: ignore[attr-defined]
    StaticFiles(directory=FRONTEND_DIR, html=True), path="/ui", name="frontend"
)
install_log_filter()
