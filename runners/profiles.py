"""The runner services, one per hardware profile. They differ only in the resources they ask for and
the knobs serving.yaml gives them; what they host comes from serving.yaml too (runners/host.py).

Both APIs are ``async def``: the model then runs on the thread that loaded it, not a thread-pool
thread, which on a small CPU avoids a second OpenMP thread team fighting the first for the cores; and
BentoML's dispatcher already runs one batch at a time per worker.
"""

from __future__ import annotations

from typing import Any

import bentoml

from bundle.runner_contract import LoadedModel, ModelInput
from bundle.settings import RunnerSettings, load_settings
from runners import model_refs
from runners.host import ModelHost

_SETTINGS = load_settings()
# Defaults apply only to a profile serving.yaml gives nothing to serve (the entry service then does
# not start it); the settings loader requires a section for every runner that serves a model.
_IDLE = RunnerSettings(max_batch_size=64, max_latency_ms=60_000)


def runner_service(name: str, profile: str, resources: dict[str, Any], doc: str) -> Any:
    """The ``@bentoml.service`` class of one profile, hosting the models serving.yaml assigns to it."""
    knobs = _SETTINGS.runners.get(profile) or _IDLE  # type: ignore[call-overload]

    async def predict(self: ModelHost, items: list[ModelInput]) -> list[Any]:
        return self.run_batch(items)

    async def models(self: ModelHost) -> list[LoadedModel]:
        return self.loaded

    attributes = {
        "__doc__": doc,
        "__module__": __name__,
        "__qualname__": name,
        "profile": profile,
        "knobs": knobs,
        "predict": bentoml.api(**knobs.api_options())(predict),
        "models": bentoml.api(models),
    }
    cls = type(name, (ModelHost,), attributes)
    service = bentoml.service(workers=knobs.workers, resources=resources)
    return service(model_refs.with_models(_SETTINGS.models_on(profile))(cls))


CPURunner = runner_service("CPURunner", "cpu", {"cpu": "1"}, "Models that run well on one CPU core.")
GPURunner = runner_service(
    "GPURunner",
    "gpu",
    {"gpu": 1},
    "Models that want a GPU (BentoML hands one over through CUDA_VISIBLE_DEVICES); without CUDA the same "
    "code runs on the CPU and says so in the log.",
)

PROFILES: dict[str, Any] = {"cpu": CPURunner, "gpu": GPURunner}
