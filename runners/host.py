"""What every runner does, whatever its hardware: load the models serving.yaml assigns to it, of any
task, and answer batches that may mix them.

A model's task (serving.yaml ``models.<name>.task``) says which :class:`bundle.task.Task` loads it; the
stored model's ``pipeline`` label says which kind. ``predict`` groups a batch by model, sorts each
group by the task's input cost, and runs forward passes of at most ``forward_batch_size`` inputs, so a
long input pads only its neighbours in length. With ``pass_threads`` > 1 the passes of a thread-safe
predictor run side by side, each on ``torch_threads`` threads: on a small CPU, two one-thread passes keep
both cores busy where one two-thread pass loses time at every operator's join.

A model declared pending (not in the store yet, while ``make serve`` trains it in the background) is
loaded by a watcher thread as soon as it appears; the entry service sees it in the next listing.
"""

from __future__ import annotations

import logging
import threading
import time
from collections import defaultdict
from concurrent.futures import ThreadPoolExecutor, wait
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
        self.pass_pool = (
            ThreadPoolExecutor(self.knobs.pass_threads, thread_name_prefix="forward-pass")
            if self.knobs.pass_threads > 1
            else None
        )
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
            parallel = self.pass_pool is not None and getattr(predictor, "thread_safe", False)
            passes = self._passes(indices, parallel)

            def run_pass(chunk: list[int], predictor: Predictor = predictor) -> None:
                for i, output in zip(chunk, predictor.predict([items[i].data for i in chunk]), strict=True):
                    out[i] = output

            if parallel and len(passes) > 1:
                futures = [self.pass_pool.submit(run_pass, chunk) for chunk in passes]  # type: ignore[union-attr]
                wait(futures)  # every pass ends before the batch answers, even when one of them failed
                for future in futures:
                    future.result()  # re-raises a pass's error
            else:
                for chunk in passes:
                    run_pass(chunk)
        return out

    def _passes(self, indices: list[int], parallel: bool) -> list[list[int]]:
        """Cost-sorted ``indices`` cut into forward passes of at most ``forward_batch_size``; when passes
        run side by side, into at least ``pass_threads`` passes (neighbours in length stay together)."""
        step = self.knobs.forward_batch_size or len(indices)
        if parallel:
            step = min(step, -(-len(indices) // self.knobs.pass_threads))
        return [indices[start : start + step] for start in range(0, len(indices), step)]
