"""The entry service's side of the runners: one :class:`RunnerPool` holds a client and a
:class:`~bundle.coalesce.Coalescer` per runner, lists the models each runner has loaded, and sends model
inputs to the runner that hosts a model within a deadline, turning a runner's failure into an answer a
person can read (:class:`~bundle.overload.ModelUnavailable`, or a 503 for an overloaded runner).
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Awaitable, Callable, Mapping, Sequence
from typing import Any

import aiohttp
import bentoml

from bundle.coalesce import Coalescer
from bundle.observability import RUNNER_FAILURES
from bundle.overload import Deadline, ModelUnavailable, RequestRefused, WouldMissDeadline
from bundle.runner_contract import LoadedModel, ModelInput
from bundle.settings import RunnerSettings

logger = logging.getLogger("bentoml.bundle.runner_pool")
CATALOG_RETRY_SECONDS = 5.0


class RunnerPool:
    """The entry service's view of its runners: their model catalogs and one coalescer each."""

    def __init__(
        self,
        clients: Mapping[str, Any],
        knobs: Mapping[Any, RunnerSettings],
        expected: Mapping[str, set[str]] | None = None,
    ) -> None:
        self.clients = dict(clients)
        # per runner, the "name:version"s it is configured to serve: a listing that lacks one (a model
        # still being trained) is asked again every CATALOG_RETRY_SECONDS until it is complete
        self.expected = {name: set(tags) for name, tags in (expected or {}).items()}
        self._catalogs: dict[str, list[LoadedModel]] = {}
        self._asked_at: dict[str, float] = {}
        self._catalog_lock = asyncio.Lock()
        self.coalescers: dict[str, Coalescer[ModelInput, Any]] = {}
        for name in clients:
            k = knobs[name]
            self.coalescers[name] = Coalescer(
                self._call(name),
                max_batch=k.max_batch_size,
                # batching off means one call per request
                max_in_flight=k.entry_calls_in_flight if k.batching else 0,
                max_queued=k.max_queued_texts,
                max_wait=k.max_latency_ms / 1000,
                name=name,
                key=lambda item: item.model_tag,  # each model's own cost per input
            )

    def _call(self, runner: str) -> Callable[[list[ModelInput]], Awaitable[list[Any]]]:
        async def call(items: list[ModelInput]) -> list[Any]:
            # looked up per call: the client binds its methods lazily, and tests swap runners
            api = self.clients[runner].to_async.predict
            try:
                return list(await api(items))
            except aiohttp.ClientConnectionError as exc:
                # The pooled connection to the runner went stale (the runner closes idle connections
                # sooner than the client drops them: "Broken pipe", "Server disconnected"). Predictions
                # have no side effects, so one retry on a fresh connection is safe.
                logger.info("retrying on a fresh runner connection after %s: %s", type(exc).__name__, exc)
                return list(await api(items))

        return call

    def listed_runners(self) -> set[str]:
        """Runners that have answered a listing."""
        return set(self._catalogs)

    def _complete(self, name: str) -> bool:
        listed = {m.requested for m in self._catalogs.get(name, [])}
        return self.expected.get(name, set()) <= listed

    async def catalog(self, timeout: float = 5.0) -> list[LoadedModel]:
        """What the runners have loaded, asked once per runner and cached (it changes only on restart,
        or when a model that was still being trained joins: an incomplete listing is asked again every
        few seconds).

        A runner that does not answer is asked again on the next call; meanwhile its models are
        unavailable (503), and routed traffic falls back to the task's default model.
        """
        async with self._catalog_lock:  # one question per runner at a time, not one per waiting request
            for name, client in self.clients.items():
                if name in self._catalogs and (
                    self._complete(name) or time.monotonic() - self._asked_at[name] < CATALOG_RETRY_SECONDS
                ):
                    continue
                try:
                    models = await asyncio.wait_for(client.to_async.models(), timeout)
                    self._catalogs[name] = [LoadedModel.model_validate(m) for m in models]
                    self._asked_at[name] = time.monotonic()
                except Exception as exc:
                    logger.warning("runner %s did not list its models: %s: %s", name, type(exc).__name__, exc)
        return [m for models in self._catalogs.values() for m in models]

    async def predict(
        self, model: LoadedModel, inputs: Sequence[Any], deadline: Deadline, max_wait: float | None = None
    ) -> list[Any]:
        """One output per input from ``model``, or :class:`ModelUnavailable` when its runner fails or
        does not answer before ``deadline``; ``max_wait``: the task's own queueing budget, if it has one."""
        items = [ModelInput(model_tag=model.tag, data=x) for x in inputs]
        coalescer = self.coalescers[model.runner]
        try:
            submitted = coalescer.submit(items, deadline.at, max_wait)
            return list(await asyncio.wait_for(submitted, max(deadline.left(), 0.001)))
        except TimeoutError:
            RUNNER_FAILURES.labels(runner=model.runner, reason="deadline").inc()
            logger.warning(
                "runner %s did not answer for %s within %.0f ms (wedged or overloaded)",
                model.runner,
                model.tag,
                deadline.seconds * 1000,
            )
            raise ModelUnavailable(
                f"model {model.family!r} did not answer within {deadline.seconds * 1000:.0f} ms: its runner "
                f"({model.runner}) is busy or not responding; retry later"
            ) from None
        except RequestRefused:
            raise
        except bentoml.exceptions.BentoMLException as exc:
            if int(exc.error_code) < 500:
                raise
            if int(exc.error_code) == 503:  # the runner's own dispatcher shed it (batching without coalescing)
                raise WouldMissDeadline(f"the {model.runner} runner is overloaded; retry later", 1.0) from None
            RUNNER_FAILURES.labels(runner=model.runner, reason="error").inc()
            raise self._unavailable(model, exc) from None
        except Exception as exc:  # connection refused, disconnected, a broken runner
            RUNNER_FAILURES.labels(runner=model.runner, reason="error").inc()
            raise self._unavailable(model, exc) from None

    @staticmethod
    def _unavailable(model: LoadedModel, exc: BaseException) -> ModelUnavailable:
        logger.warning("runner %s failed for %s: %s: %s", model.runner, model.tag, type(exc).__name__, exc)
        return ModelUnavailable(
            f"model {model.family!r} is temporarily unavailable: its runner ({model.runner}) is not answering"
        )
