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
_CPU = _SETTINGS.runners.get("cpu") or _IDLE
_GPU = _SETTINGS.runners.get("gpu") or _IDLE


@bentoml.service(workers=1, resources={"cpu": "1"})
@model_refs.with_models(_SETTINGS.models_on("cpu"))
class CPURunner(ModelHost):
    """Models that run well on one CPU core: the classic text models."""

    profile = "cpu"
    knobs = _CPU

    @bentoml.api(**_CPU.api_options())
    async def predict(self, items: list[ModelInput]) -> list[Any]:
        return self.run_batch(items)

    @bentoml.api
    async def models(self) -> list[LoadedModel]:
        return self.loaded


@bentoml.service(workers=1, resources={"gpu": 1})
@model_refs.with_models(_SETTINGS.models_on("gpu"))
class GPURunner(ModelHost):
    """Models that want a GPU (BentoML hands one over through CUDA_VISIBLE_DEVICES); without CUDA the
    same code runs on the CPU and says so in the log."""

    profile = "gpu"
    knobs = _GPU

    @bentoml.api(**_GPU.api_options())
    async def predict(self, items: list[ModelInput]) -> list[Any]:
        return self.run_batch(items)

    @bentoml.api
    async def models(self) -> list[LoadedModel]:
        return self.loaded


PROFILES: dict[str, type[ModelHost]] = {"cpu": CPURunner, "gpu": GPURunner}
