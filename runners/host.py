"""What every runner does, whatever its hardware: load the models serving.yaml assigns to it, of any
task, and answer batches that may mix them.

A model's task (serving.yaml ``models.<name>.task``) says which :class:`bundle.task.Task` loads it; the
stored model's ``pipeline`` label says which kind. ``predict`` groups a batch by model, sorts each
group by the task's input cost, and runs forward passes of at most ``forward_batch_size`` inputs, so a
long input pads only its neighbours in length.

A model declared pending (not in the store yet, while ``make serve`` trains it in the background) is
loaded by a watcher thread as soon as it appears; the entry service sees it in the next listing.
"""

from __future__ import annotations

import logging
import threading
import time
from collections import defaultdict
from typing import Any

import bentoml

from bundle.runner_contract import LoadedModel, ModelInput
from bundle.settings import RunnerSettings
from bundle.task import Predictor, Task
from runners import batch_metrics, model_refs

logger = logging.getLogger("bentoml.bundle.runner")
PENDING_POLL_SECONDS = 5.0


def pick_device(profile: str) -> str:
    """``cuda`` on the gpu profile when a GPU is visible, else ``cpu``."""
    if profile != "gpu":
        return "cpu"
    import torch

    return "cuda" if torch.cuda.is_available() else "cpu"


class ModelHost:
    """Base of the runner services in runners/profiles.py (which add the BentoML decorators)."""

    profile: str
    knobs: RunnerSettings
    declared_models: list[model_refs.Declared]

    def __init__(self) -> None:
        if self.knobs.torch_threads:
            import torch

            torch.set_num_threads(self.knobs.torch_threads)
        self.device = pick_device(self.profile)
        if self.profile == "gpu" and self.device == "cpu":
            logger.warning("no CUDA device available: the gpu runner runs on the CPU")
        self.predictors: dict[str, Predictor] = {}
        self.tasks: dict[str, Task] = {}
        self.loaded: list[LoadedModel] = []
        self.pending = [d for d in self.declared_models if d.pending]
        for declared in self.declared_models:
            if not declared.pending:
                self._load(declared, model_refs.resolve(type(self), declared))
        if self.pending:
            threading.Thread(target=self._watch_pending, name="pending-models", daemon=True).start()

    def _load(self, declared: model_refs.Declared, stored: bentoml.Model) -> None:
        from tasks.registry import TASKS

        task = TASKS[declared.task]
        kind = stored.info.labels.get("pipeline", "")
        if declared.runtime != "auto" and declared.runtime not in task.runtimes:
            raise bentoml.exceptions.BentoMLConfigException(
                f"serving.yaml models.{declared.family}.runtime is {declared.runtime!r}, but task {task.name!r} "
                f"offers {['auto', *task.runtimes]}"
            )
        predictor = task.load_model(kind, stored.path, self.device, runtime=declared.runtime)
        # the predictor first, then the listing: the entry routes to a model only once it is listed
        self.predictors[str(stored.tag)] = predictor
        self.tasks[str(stored.tag)] = task
        runtime = getattr(predictor, "runtime", "")
        self.loaded.append(model_refs.describe(declared, stored).model_copy(update={"runtime": runtime}))
        logger.info(
            "loaded %s as %s (%s, task %s) on %s%s",
            declared.requested,
            stored.tag,
            kind,
            task.name,
            self.device,
            f", runtime {runtime}" if runtime else "",
        )

    def _watch_pending(self) -> None:
        """Load each pending model as soon as it is in the store (it is being trained meanwhile)."""
        while self.pending:
            time.sleep(PENDING_POLL_SECONDS)
            for declared in list(self.pending):
                if not model_refs.in_store(declared.requested):
                    continue
                try:
                    self._load(declared, bentoml.models.get(declared.requested))
                except Exception:  # a half-written or broken model: say so, keep serving the rest
                    logger.exception("could not load %s; it stays pending", declared.requested)
                    continue
                self.pending.remove(declared)

    def run_batch(self, items: list[ModelInput]) -> list[Any]:
        """One output per item, in input order; items of one model go through it together."""
        by_model: dict[str, list[int]] = defaultdict(list)
        for i, item in enumerate(items):
            by_model[item.model_tag].append(i)
        out: list[Any] = [None] * len(items)
        for tag, indices in by_model.items():
            predictor = self.predictors.get(tag)
            if predictor is None:  # the entry service only sends tags this runner listed
                raise bentoml.exceptions.NotFound(f"model {tag} is not loaded in this runner")
            task = self.tasks[tag]
            batch_metrics.observe(self.profile, task.name, len(indices))
            indices.sort(key=lambda i: task.input_cost(items[i].data))
            step = self.knobs.forward_batch_size or len(indices)
            for start in range(0, len(indices), step):
                chunk = indices[start : start + step]
                outputs = predictor.predict([items[i].data for i in chunk])
                for i, output in zip(chunk, outputs, strict=True):
                    out[i] = output
        return out
