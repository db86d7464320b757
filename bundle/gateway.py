"""How the entry service answers any task's request: choose the model, call its runner, fall back,
shadow, record. Nothing here knows a task by name; a task's handlers call :meth:`TaskGateway.infer`.

Requests flow one way: a handler turns its request into model inputs; the gateway picks the model that
should answer (the request's choice, else the task's traffic policy), sends the inputs to the runner
that hosts it (:class:`~bundle.runner_pool.RunnerPool`, through the runner's coalescer) within the
request's deadline, and returns one output per input. If a routed arm fails or misses the deadline,
the task's default model answers instead. Shadows get a copy off the critical path.
"""

from __future__ import annotations

import asyncio
import contextvars
import logging
import time
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from bundle.observability import DEGRADED, FALLBACKS, ROUTING, SHADOW, record
from bundle.overload import Deadline, ModelPending, ModelUnavailable, RequestRefused, WouldMissDeadline
from bundle.routing import Decision, Router, ShadowLauncher
from bundle.runner_contract import LoadedModel
from bundle.runner_pool import RunnerPool
from bundle.settings import ServingSettings, Shadow, TaskSettings
from bundle.task import Task

logger = logging.getLogger("bentoml.bundle.gateway")

# The deadline of the request being answered; set by the API wrapper (bundle/api.py) from the
# configured default and the client's X-Deadline-Ms header.
CURRENT_DEADLINE: contextvars.ContextVar[Deadline | None] = contextvars.ContextVar("deadline", default=None)


class ModelNotServed(RequestRefused):
    """The requested model or version is not served; the message lists what is."""

    def __init__(self, message: str) -> None:
        super().__init__(404, message)


@dataclass(frozen=True)
class Answer:
    outputs: list[Any]
    model: LoadedModel
    decision: Decision
    degraded: bool = False  # answered by the task's cheaper model because the routed one was overloaded


@dataclass(frozen=True)
class MemberAnswer:
    model: LoadedModel
    weight: float  # normalised
    outputs: list[Any]


class TaskGateway:
    """Model choice, routing, fallback, shadows and records for one task."""

    def __init__(self, task: Task, settings: ServingSettings, pool: RunnerPool) -> None:
        self.task = task
        self.settings = settings
        self.conf: TaskSettings = settings.tasks[task.name]
        self.families = settings.models_of(task.name)
        self._said_pending: set[str] = set()
        self.pool = pool
        self.peers: dict[str, TaskGateway] = {}  # every task's gateway, for graphs across tasks
        routing = self.conf.routing
        self.router = Router(routing) if routing else None
        self.shadows = ShadowLauncher(routing.shadows, routing.max_shadows_in_flight) if routing else None

    @property
    def default_model(self) -> str:
        return self.conf.default_model

    def peer(self, task: str) -> TaskGateway:
        """Another task's gateway, for a graph that runs it first (a 404 when it is not served)."""
        if task not in self.peers:
            raise ModelNotServed(f"this request needs the {task} task, which is not served (serving.yaml: tasks)")
        return self.peers[task]

    def deadline(self) -> Deadline:
        return CURRENT_DEADLINE.get() or Deadline(self.deadline_ms / 1000)

    @property
    def deadline_ms(self) -> int:
        """The default deadline of this task's requests: its own, else the service's."""
        return self.conf.deadline_ms or self.settings.limits.deadline_ms

    @property
    def max_wait(self) -> float | None:
        return self.conf.max_wait_ms / 1000 if self.conf.max_wait_ms else None

    # ---- model choice ----------------------------------------------------------------------------

    async def choose(self, family: str | None, version: str | None) -> LoadedModel:
        family = family or self.default_model
        if family not in self.families:
            raise ModelNotServed(f"unknown model {family!r}; available models: {', '.join(sorted(self.families))}")
        served = [m for m in await self.pool.catalog(timeout=max(self.deadline().left(), 0.001)) if m.family == family]
        if not served:
            runner = self.families[family].runner
            if runner in self.pool.listed_runners():
                raise ModelPending(
                    f"model {family!r} is not loaded yet: its runner ({runner}) is up, the model is not in the "
                    "store yet (still being trained?); it joins as soon as it is there"
                )
            raise ModelUnavailable(
                f"model {family!r} is temporarily unavailable: its runner ({runner}) is not answering"
            )
        if version is None:
            return next(m for m in served if m.default)
        for m in served:
            if version in (m.version, m.requested.split(":", 1)[1]):
                return m
        versions = ", ".join(m.version for m in served)
        raise ModelNotServed(
            f"version {version!r} of model {family!r} is not in the model store or not deployed; "
            f"served versions: {versions}"
        )

    def decide(self, model: str | None, version: str | None, user: str | None) -> Decision:
        if model is not None or version is not None:
            family = model or self.default_model
            return Decision("explicit", family if version is None else f"{family}:{version}", family, version)
        if self.router is not None:
            return self.router.decide(user)
        return Decision("single", self.default_model, self.default_model, None)

    # ---- inference -------------------------------------------------------------------------------

    async def infer(
        self, inputs: Sequence[Any], *, model: str | None = None, version: str | None = None, user: str | None = None
    ) -> Answer:
        """Route, predict, record; and copy the request to the shadows when the policy routed it."""
        started = time.perf_counter()
        decision = self.decide(model, version, user)
        chosen: LoadedModel | None = None
        try:
            chosen = await self.choose(decision.family, decision.version)
            outputs = await self.pool.predict(chosen, inputs, self.deadline(), self.max_wait)
        except (ModelUnavailable, WouldMissDeadline) as exc:  # not a full queue: that is the caller's 429
            answered = None if decision.policy == "explicit" else await self.fall_back(inputs, decision, exc)
            if answered is None and isinstance(exc, WouldMissDeadline) and decision.policy != "explicit":
                answered = await self.degrade(inputs, chosen, decision.policy)
            if answered is None:
                raise
            outputs, chosen, decision = answered
        ROUTING.labels(task=self.task.name, policy=decision.policy, arm=decision.arm, model=chosen.tag).inc()
        self.record(inputs, outputs, chosen, decision.arm, decision.policy, "primary", _ms_since(started))
        if decision.policy != "explicit" and self.shadows is not None and self.shadows.shadows:
            self.shadows.launch(
                call=lambda shadow: self.shadow_call(shadow, inputs),
                on_done=lambda shadow, outcome, result, seconds: self.shadow_done(
                    shadow, outcome, result, inputs, outputs
                ),
            )
        return Answer(outputs, chosen, decision, degraded=decision.arm.startswith("degraded:"))

    async def degrade(
        self, inputs: Sequence[Any], routed: LoadedModel | None, policy: str
    ) -> tuple[list[Any], LoadedModel, Decision] | None:
        """The routed model would break the request's deadline (its runner is saturated): answer with the
        task's configured cheaper model instead of a 503 (serving.yaml ``tasks.<task>.degrade_to``, off by
        default). ``None`` when not configured, or when that model cannot answer in time either."""
        cheaper = self.conf.degrade_to
        if cheaper is None or routed is None or cheaper == routed.family:
            return None
        try:
            chosen = await self.choose(cheaper, None)
            outputs = await self.pool.predict(chosen, inputs, self.deadline(), self.max_wait)
        except RequestRefused:
            return None  # the caller gets the first refusal, which names the routed model
        DEGRADED.labels(task=self.task.name, routed=routed.family, answered=chosen.family).inc()
        return outputs, chosen, Decision(policy, f"degraded:{chosen.family}", chosen.family, None)

    async def fall_back(
        self, inputs: Sequence[Any], decision: Decision, exc: RequestRefused
    ) -> tuple[list[Any], LoadedModel, Decision] | None:
        """The routed arm failed or missed its deadline: the default model answers, with a deadline of
        its own, if it is another model. A model not loaded yet (being trained) is passed over for the
        task's next model in serving.yaml's order. ``None`` when there is nothing to fall back to."""
        routed_default = decision.family == self.default_model and decision.version is None
        if routed_default and not isinstance(exc, ModelPending):
            return None
        reason = "deadline" if isinstance(exc, WouldMissDeadline) or "did not answer within" in exc.message else "error"
        if isinstance(exc, ModelPending):
            reason = "pending"
            if decision.family not in self._said_pending:  # once, not on every request while it trains
                self._said_pending.add(decision.family)
                logger.warning("%s; the task's next model answers meanwhile", exc.message)
        else:
            logger.warning("arm %s of %s could not answer (%s); falling back", decision.arm, self.task.name, exc)
        FALLBACKS.labels(task=self.task.name, arm=decision.arm, reason=reason).inc()
        others = [f for f in self.families if f not in (self.default_model, decision.family)]
        candidates = ([] if routed_default else [self.default_model]) + others
        for family in candidates:
            fresh = Deadline(self.deadline_ms / 1000)
            token = CURRENT_DEADLINE.set(fresh)
            try:
                chosen = await self.choose(family, None)
                outputs = await self.pool.predict(chosen, inputs, fresh, self.max_wait)
            except ModelPending:
                continue  # being trained too: the next one
            finally:
                CURRENT_DEADLINE.reset(token)
            return outputs, chosen, Decision(decision.policy, f"fallback:{chosen.family}", chosen.family, None)
        return None

    async def ensemble(self, inputs: Sequence[Any]) -> tuple[list[Any], list[MemberAnswer]]:
        """An inference graph: every member of the task's ensemble answers concurrently; the task
        combines their outputs per input with the normalised weights from serving.yaml."""
        started = time.perf_counter()
        if self.conf.ensemble is None:
            raise ModelNotServed(
                f"no ensemble is configured for {self.task.name} (serving.yaml: tasks.{self.task.name}.ensemble)"
            )
        members = self.conf.ensemble.members
        chosen = [await self.choose(m.family, m.version) for m in members]
        deadline = self.deadline()
        answers = await asyncio.gather(*(self.pool.predict(c, inputs, deadline) for c in chosen))
        total = sum(m.weight for m in members)
        weights = [m.weight / total for m in members]
        combined = [self.task.combine([a[i] for a in answers], weights) for i in range(len(inputs))]
        model = "+".join(c.tag for c in chosen)
        self.record(inputs, combined, None, "ensemble", "ensemble", "primary", _ms_since(started), model=model)
        return combined, [MemberAnswer(c, w, a) for c, w, a in zip(chosen, weights, answers, strict=True)]

    # ---- shadows and records ---------------------------------------------------------------------

    async def shadow_call(self, shadow: Shadow, inputs: Sequence[Any]) -> tuple[LoadedModel, list[Any], float]:
        started = time.perf_counter()
        chosen = await self.choose(shadow.family, shadow.version)
        return chosen, await self.pool.predict(chosen, inputs, Deadline(shadow.timeout_ms / 1000)), _ms_since(started)

    def shadow_done(
        self,
        shadow: Shadow,
        outcome: str,
        result: tuple[LoadedModel, list[Any], float] | None,
        inputs: Sequence[Any],
        primary: list[Any],
    ) -> None:
        labels = {"task": self.task.name, "shadow": shadow.label()}
        if outcome != "ok" or result is None:
            SHADOW.labels(**labels, outcome=outcome).inc(len(inputs))
            return
        chosen, outputs, latency_ms = result
        agree = sum(self.task.agree(mine, theirs) for mine, theirs in zip(outputs, primary, strict=True))
        SHADOW.labels(**labels, outcome="agree").inc(agree)
        SHADOW.labels(**labels, outcome="disagree").inc(len(inputs) - agree)
        self.record(inputs, outputs, chosen, f"shadow:{shadow.label()}", "shadow", "shadow", latency_ms)

    def record(
        self,
        inputs: Sequence[Any],
        outputs: Sequence[Any],
        chosen: LoadedModel | None,
        arm: str,
        policy: str,
        role: str,
        latency_ms: float,
        model: str | None = None,
    ) -> None:
        record(
            task=self.task.name,
            inputs=self.task.describe_inputs(inputs, self.settings.monitoring),
            outputs=self.task.describe_outputs(outputs),
            labels=self.task.output_labels(outputs),
            family=chosen.family if chosen else policy,
            model=chosen.tag if chosen else (model or ""),
            arm=arm,
            policy=policy,
            role=role,
            latency_ms=latency_ms,
        )


def _ms_since(started: float) -> float:
    return round((time.perf_counter() - started) * 1000, 3)
