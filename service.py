"""The entry service: the public, typed HTTP API in front of the model runners.

Requests flow one way: a client calls this service; it validates and normalises the input, picks the
model (family and version) that should answer, calls the runner that holds that model, and turns class
probabilities into the public response. It never loads a model itself.

Which model answers a request that names none is decided by serving.yaml's ``routing`` (a weighted
A/B split or a canary, sticky per ``user``), with shadow models receiving copies off the critical
path. If the routed arm fails, the default family answers instead, and the fallback is counted.

    BENTOML_CONFIG=configuration.yaml bentoml serve service:SentimentService
"""

from __future__ import annotations

import asyncio
import logging
import os
import time
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

import aiohttp
import bentoml
from starlette.staticfiles import StaticFiles

from coalesce import Coalescer
from contract import (
    BatchRequest,
    BatchResponse,
    EmbedRequest,
    EmbedResponse,
    EnsembleMember,
    EnsembleRequest,
    EnsembleResponse,
    ModelInfo,
    ModelsRequest,
    ModelsResponse,
    Prediction,
    SentimentRequest,
    SentimentResponse,
)
from errors import HumanErrorsMiddleware, install_log_filter
from observability import ROUTING, SHADOW, record
from openapi_docs import OpenAPICompletionMiddleware
from pipelines.base import LABELS
from pipelines.text import normalize_text
from routing import Decision, Router, ShadowLauncher
from runners.contract import ClassProbabilities, LoadedModel, TextItem
from runners.cpu_sentiment import CPUSentimentRunner
from runners.transformer import TransformerRunner
from settings import RunnerName, RunnerSettings, Shadow, load_settings

logger = logging.getLogger("bentoml.sentiment.service")
SETTINGS = load_settings()


class ModelNotServed(bentoml.exceptions.NotFound):
    """The requested model family or version is not served; the message lists what is."""


class ModelUnavailable(bentoml.exceptions.ServiceUnavailable):
    """The model is configured, but its runner is not answering right now."""


class EmbeddingNotServed(bentoml.exceptions.NotFound):
    """serving.yaml configures no embedding model."""


# A runner is started only when serving.yaml gives it something to serve.
_USES_TRANSFORMER_RUNNER = bool(SETTINGS.families_on("gpu") or SETTINGS.embedding)


# The container image: a plain Python 3.11 base and no apt step (every dependency ships as a wheel).
# Where no registry is reachable, deploy/container/base-image.sh names a locally built base instead.
IMAGE = bentoml.images.Image(
    base_image=os.environ.get("BENTO_BASE_IMAGE", "python:3.11-slim"), distro="none", python_version="3.11"
)


@bentoml.service(workers=1, image=IMAGE)
class SentimentService:
    cpu_runner = bentoml.depends(CPUSentimentRunner)
    if _USES_TRANSFORMER_RUNNER:
        transformer_runner = bentoml.depends(TransformerRunner)

    def __init__(self) -> None:
        self._catalogs: dict[str, list[LoadedModel]] = {}
        self.runners: dict[RunnerName, Any] = {"cpu": self.cpu_runner}
        if _USES_TRANSFORMER_RUNNER:
            self.runners["gpu"] = self.transformer_runner
        # Concurrent requests for one runner share one call (coalesce.py); batching off means one each.
        self.predictors: dict[RunnerName, Coalescer[TextItem, ClassProbabilities]] = {
            name: _coalescer(SETTINGS.runners[name], self.runner_call(name, "predict")) for name in self.runners
        }
        if SETTINGS.embedding:  # the embedding model lives on the transformer runner
            self.embedder = _coalescer(SETTINGS.runners["gpu"], self.runner_call("gpu", "embed"))
        routing = SETTINGS.routing
        self.router = Router(routing) if routing else None
        self.shadows = ShadowLauncher(routing.shadows, routing.max_shadows_in_flight) if routing else None

    def runner_call(self, runner: RunnerName, method: str) -> Callable[[list[Any]], Awaitable[Any]]:
        """One runner API as an async callable, with one retry on a stale connection."""

        async def call(items: list[Any]) -> Any:
            # looked up per call: the client binds its methods lazily, and tests swap runners
            api = getattr(self.runners[runner].to_async, method)
            try:
                return await api(items)
            except aiohttp.ClientConnectionError as exc:
                # The pooled connection to the runner went stale (the runner closes idle connections
                # sooner than the client drops them: "Broken pipe", "Server disconnected"). Predictions
                # and embeddings have no side effects, so one retry on a fresh connection is safe.
                logger.info("retrying on a fresh runner connection after %s: %s", type(exc).__name__, exc)
                return await api(items)

        return call

    # ---- model choice ----------------------------------------------------------------------------

    async def catalog(self) -> list[LoadedModel]:
        """What the runners have loaded, asked once per runner and cached (it changes only on restart).

        A runner that does not answer is asked again on the next call; meanwhile its models are
        unavailable (503), and routed traffic falls back to the default family.
        """
        for name, runner in self.runners.items():
            if name not in self._catalogs:
                try:
                    self._catalogs[name] = list(await runner.to_async.models())
                except Exception as exc:
                    logger.warning("runner %s did not list its models: %s: %s", name, type(exc).__name__, exc)
        return [m for models in self._catalogs.values() for m in models]

    async def choose(self, family: str | None, version: str | None) -> LoadedModel:
        family = family or SETTINGS.default_model
        sentiment_models = [m for m in await self.catalog() if m.family in SETTINGS.models]
        served = [m for m in sentiment_models if m.family == family]
        if not served and family in SETTINGS.models:
            runner = SETTINGS.models[family].runner
            raise ModelUnavailable(
                f"model {family!r} is temporarily unavailable: its runner ({runner}) is not answering"
            )
        if not served:
            families = sorted({m.family for m in sentiment_models})
            raise ModelNotServed(f"unknown model {family!r}; available models: {', '.join(families)}")
        if version is None:
            return next(m for m in served if m.default)
        for m in served:
            if m.tag.split(":", 1)[1] == version or m.requested == f"{m.tag.split(':')[0]}:{version}":
                return m
        versions = ", ".join(m.tag.split(":", 1)[1] for m in served)
        raise ModelNotServed(
            f"version {version!r} of model {family!r} is not in the model store or not deployed; "
            f"served versions: {versions}"
        )

    def decide(self, model: str | None, version: str | None, user: str | None) -> Decision:
        if model is not None or version is not None:
            family = model or SETTINGS.default_model
            return Decision("explicit", family if version is None else f"{family}:{version}", family, version, False)
        if self.router is not None:
            return self.router.decide(user)
        return Decision("single", SETTINGS.default_model, SETTINGS.default_model, None, False)

    async def run(self, model: LoadedModel, texts: list[str]) -> list[Prediction]:
        items = [TextItem(model_tag=model.tag, text=t) for t in texts]
        results = await self.predictors[SETTINGS.models[model.family].runner].submit(items)
        return [to_prediction(r.probabilities) for r in results]

    async def classify(
        self, texts: list[str], model: str | None, version: str | None, user: str | None
    ) -> tuple[LoadedModel, Decision, list[Prediction]]:
        """Route, predict, record; and copy the request to the shadows when the policy routed it."""
        started = time.perf_counter()
        # Pre-processing: one canonical form of the text, whatever the client's whitespace and Unicode.
        texts = [normalize_text(t) for t in texts]
        decision = self.decide(model, version, user)
        try:
            chosen = await self.choose(decision.family, decision.version)
            predictions = await self.run(chosen, texts)
        except Exception as exc:  # the runner is down, overloaded or broken: not the caller's fault
            if decision.policy == "explicit" or _is_client_error(exc):
                raise
            predictions, chosen, decision = await self.fall_back(texts, decision, exc)
        ROUTING.labels(policy=decision.policy, arm=decision.arm, model=chosen.tag).inc()
        record(
            texts,
            [p.label for p in predictions],
            [p.probabilities["positive"] for p in predictions],
            family=chosen.family,
            model=chosen.tag,
            arm=decision.arm,
            policy=decision.policy,
            role="primary",
            latency_ms=_ms_since(started),
            settings=SETTINGS.monitoring,
        )
        if decision.policy != "explicit" and self.shadows is not None and self.shadows.shadows:
            self.shadows.launch(
                call=lambda shadow: self.shadow_call(shadow, texts),
                on_done=lambda shadow, outcome, result, seconds: self.shadow_done(
                    shadow, outcome, result, seconds, texts, predictions
                ),
            )
        return chosen, decision, predictions

    async def fall_back(
        self, texts: list[str], decision: Decision, exc: Exception
    ) -> tuple[list[Prediction], LoadedModel, Decision]:
        """The routed arm failed on the server side: the default family answers instead."""
        logger.warning("arm %s failed (%s: %s); the default model answers", decision.arm, type(exc).__name__, exc)
        ROUTING.labels(policy=decision.policy, arm=f"{decision.arm} (failed)", model="").inc()
        default = await self.choose(SETTINGS.default_model, None)
        if default.family == decision.family and decision.version is None:
            raise exc
        fallback = Decision(decision.policy, f"fallback:{default.family}", default.family, None, decision.sticky)
        return await self.run(default, texts), default, fallback

    async def shadow_call(self, shadow: Shadow, texts: list[str]) -> tuple[LoadedModel, list[Prediction], float]:
        started = time.perf_counter()
        chosen = await self.choose(shadow.family, shadow.version)
        return chosen, await self.run(chosen, texts), _ms_since(started)

    def shadow_done(
        self,
        shadow: Shadow,
        outcome: str,
        result: tuple[LoadedModel, list[Prediction], float] | None,
        seconds: float,
        texts: list[str],
        primary: list[Prediction],
    ) -> None:
        if outcome != "ok" or result is None:
            SHADOW.labels(shadow=shadow.label(), outcome=outcome).inc()
            return
        chosen, predictions, latency_ms = result
        for mine, theirs in zip(predictions, primary, strict=True):
            SHADOW.labels(shadow=shadow.label(), outcome="agree" if mine.label == theirs.label else "disagree").inc()
        record(
            texts,
            [p.label for p in predictions],
            [p.probabilities["positive"] for p in predictions],
            family=chosen.family,
            model=chosen.tag,
            arm=f"shadow:{shadow.label()}",
            policy="shadow",
            role="shadow",
            latency_ms=latency_ms,
            settings=SETTINGS.monitoring,
        )

    # ---- public API ------------------------------------------------------------------------------

    @bentoml.api(route="/sentiment", input_spec=SentimentRequest, output_spec=SentimentResponse)
    async def sentiment(
        self, text: str, model: str | None = None, version: str | None = None, user: str | None = None
    ) -> SentimentResponse:
        """Classify one text as positive or negative."""
        started = time.perf_counter()
        chosen, decision, (prediction,) = await self.classify([text], model, version, user)
        return SentimentResponse(
            **prediction.model_dump(),
            model=chosen.tag,
            family=chosen.family,
            arm=decision.arm,
            policy=decision.policy,
            elapsed_ms=_ms_since(started),
        )

    @bentoml.api(route="/sentiment/batch", input_spec=BatchRequest, output_spec=BatchResponse)
    async def sentiment_batch(
        self, texts: list[str], model: str | None = None, version: str | None = None, user: str | None = None
    ) -> BatchResponse:
        """Classify several texts from one client with one model; answers keep the input order."""
        started = time.perf_counter()
        chosen, decision, predictions = await self.classify(texts, model, version, user)
        return BatchResponse(
            predictions=predictions,
            model=chosen.tag,
            family=chosen.family,
            arm=decision.arm,
            policy=decision.policy,
            elapsed_ms=_ms_since(started),
        )

    @bentoml.api(route="/sentiment/ensemble", input_spec=EnsembleRequest, output_spec=EnsembleResponse)
    async def sentiment_ensemble(self, text: str) -> EnsembleResponse:
        """An inference graph: every ensemble member classifies the text concurrently; their class
        probabilities are averaged with the weights from serving.yaml (``ensemble``)."""
        started = time.perf_counter()
        if SETTINGS.ensemble is None:
            raise ModelNotServed("no ensemble is configured (serving.yaml: ensemble)")
        clean = normalize_text(text)
        members = SETTINGS.ensemble.members
        chosen = [await self.choose(m.family, m.version) for m in members]
        answers = await asyncio.gather(*(self.run(c, [clean]) for c in chosen))
        total = sum(m.weight for m in members)
        combined: list[float] = [
            float(sum(m.weight / total * a[0].probabilities[label] for m, a in zip(members, answers, strict=True)))  # type: ignore[index, misc]
            for label in LABELS
        ]
        prediction = to_prediction(combined)
        record(
            [clean],
            [prediction.label],
            [prediction.probabilities["positive"]],
            family="ensemble",
            model="+".join(c.tag for c in chosen),
            arm="ensemble",
            policy="ensemble",
            role="primary",
            latency_ms=_ms_since(started),
            settings=SETTINGS.monitoring,
        )
        return EnsembleResponse(
            **prediction.model_dump(),
            members=[
                EnsembleMember(family=c.family, model=c.tag, weight=m.weight / total, **a[0].model_dump())
                for m, c, a in zip(members, chosen, answers, strict=True)
            ],
            elapsed_ms=_ms_since(started),
        )

    @bentoml.api(route="/embed", input_spec=EmbedRequest, output_spec=EmbedResponse)
    async def embed(self, texts: list[str]) -> EmbedResponse:
        """Sentence embeddings: one L2-normalised vector per text, in input order."""
        started = time.perf_counter()
        if not SETTINGS.embedding:
            raise EmbeddingNotServed("no embedding model is configured (serving.yaml: embedding)")
        encoder = next(m for m in await self.catalog() if m.family == "embedding" and m.default)
        vectors = await self.embedder.submit([normalize_text(t) for t in texts])
        return EmbedResponse(
            embeddings=[[round(float(x), 7) for x in row] for row in vectors],
            dim=len(vectors[0]),
            model=encoder.tag,
            elapsed_ms=_ms_since(started),
        )

    @bentoml.api(route="/models", input_spec=ModelsRequest, output_spec=ModelsResponse)
    async def models(self) -> ModelsResponse:
        """The models being served, with the metrics recorded when they were trained, and the routing."""
        infos = [
            ModelInfo(
                family=m.family,
                name=m.tag.split(":")[0],
                version=m.tag.split(":")[1],
                default=m.default,
                runner=_runner_of(m.family),
                pipeline=m.pipeline,
                created_at=m.created_at,
                gate_passed=m.metadata.get("gate_passed"),
                metrics=m.metadata.get("metrics", {}),
                params=m.metadata.get("params", {}),
                data_sha256=m.metadata.get("data", {}).get("sha256"),
            )
            for m in await self.catalog()
        ]
        routing = SETTINGS.routing.model_dump() if SETTINGS.routing else None
        return ModelsResponse(default_family=SETTINGS.default_model, models=infos, routing=routing)


# Post-processing: probabilities → label, named classes, rounded for the wire.
def to_prediction(probabilities: list[float]) -> Prediction:
    named: dict[str, float] = {label: round(p, 6) for label, p in zip(LABELS, probabilities, strict=True)}
    return Prediction.model_validate({"label": max(named, key=named.__getitem__), "probabilities": named})


def _coalescer(knobs: RunnerSettings, call: Callable[[list[Any]], Awaitable[Any]]) -> Coalescer[Any, Any]:
    in_flight = knobs.entry_calls_in_flight if knobs.batching else 0
    return Coalescer(call, max_batch=knobs.max_batch_size, max_in_flight=in_flight)


def _runner_of(family: str) -> str:
    if family == "embedding" and SETTINGS.embedding is not None:
        return SETTINGS.embedding.runner
    return SETTINGS.models[family].runner


def _is_client_error(exc: Exception) -> bool:
    return isinstance(exc, bentoml.exceptions.BentoMLException) and int(exc.error_code) < 500


def _ms_since(started: float) -> float:
    return round((time.perf_counter() - started) * 1000, 3)


SentimentService.add_asgi_middleware(HumanErrorsMiddleware)  # type: ignore[attr-defined]
SentimentService.add_asgi_middleware(OpenAPICompletionMiddleware)  # type: ignore[attr-defined]

# The web page, served by the service itself at /ui/ (static files, no build step); Swagger UI stays at /.
FRONTEND_DIR = Path(__file__).resolve().parent / "frontend"
SentimentService.mount_asgi_app(  # type: ignore[attr-defined]
    StaticFiles(directory=FRONTEND_DIR, html=True), path="/ui", name="frontend"
)
install_log_filter()
