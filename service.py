"""The entry service: the public, typed HTTP API in front of the model runners.

Requests flow one way: a client calls this service; it validates and normalises the input, picks the
model (family and version) that should answer, calls the runner that holds that model, and turns class
probabilities into the public response. It never loads a model itself.

    BENTOML_CONFIG=configuration.yaml bentoml serve service:SentimentService
"""

from __future__ import annotations

import logging
import time
from pathlib import Path

import bentoml
from starlette.staticfiles import StaticFiles

from contract import (
    BatchRequest,
    BatchResponse,
    EmbedRequest,
    EmbedResponse,
    ModelInfo,
    ModelsRequest,
    ModelsResponse,
    Prediction,
    SentimentRequest,
    SentimentResponse,
)
from errors import HumanErrorsMiddleware, install_log_filter
from pipelines.base import LABELS
from pipelines.text import normalize_text
from runners.contract import ClassProbabilities, LoadedModel, TextItem
from runners.cpu_sentiment import CPUSentimentRunner
from runners.transformer import TransformerRunner
from settings import load_settings

logger = logging.getLogger("bentoml.sentiment.service")
SETTINGS = load_settings()


class ModelNotServed(bentoml.exceptions.NotFound):
    """The requested model family or version is not served; the message lists what is."""


class EmbeddingNotServed(bentoml.exceptions.NotFound):
    """serving.yaml configures no embedding model."""


# A runner is started only when serving.yaml gives it something to serve.
_USES_TRANSFORMER_RUNNER = bool(SETTINGS.families_on("gpu") or SETTINGS.embedding)


@bentoml.service(workers=1)
class SentimentService:
    cpu_runner = bentoml.depends(CPUSentimentRunner)
    if _USES_TRANSFORMER_RUNNER:
        transformer_runner = bentoml.depends(TransformerRunner)

    def __init__(self) -> None:
        self._catalog: list[LoadedModel] | None = None
        self.runners = {"cpu": self.cpu_runner}
        if _USES_TRANSFORMER_RUNNER:
            self.runners["gpu"] = self.transformer_runner

    # ---- routing ---------------------------------------------------------------------------------

    async def catalog(self) -> list[LoadedModel]:
        """What the runners have loaded, asked once and cached (it changes only on restart)."""
        if self._catalog is None:
            catalog = []
            for runner in self.runners.values():
                catalog.extend(await runner.to_async.models())
            self._catalog = catalog
        return self._catalog

    async def choose(self, family: str | None, version: str | None) -> LoadedModel:
        family = family or SETTINGS.default_model
        sentiment_models = [m for m in await self.catalog() if m.family in SETTINGS.models]
        served = [m for m in sentiment_models if m.family == family]
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

    async def run(self, model: LoadedModel, texts: list[str]) -> list[Prediction]:
        # Pre-processing: one canonical form of the text, whatever the client's whitespace and Unicode.
        items = [TextItem(model_tag=model.tag, text=normalize_text(t)) for t in texts]
        runner = self.runners[SETTINGS.models[model.family].runner]
        results: list[ClassProbabilities] = await runner.to_async.predict(items)
        return [to_prediction(r.probabilities) for r in results]

    # ---- public API ------------------------------------------------------------------------------

    @bentoml.api(route="/sentiment", input_spec=SentimentRequest, output_spec=SentimentResponse)
    async def sentiment(self, text: str, model: str | None = None, version: str | None = None) -> SentimentResponse:
        """Classify one text as positive or negative."""
        started = time.perf_counter()
        chosen = await self.choose(model, version)
        (prediction,) = await self.run(chosen, [text])
        return SentimentResponse(
            **prediction.model_dump(), model=chosen.tag, family=chosen.family, elapsed_ms=_ms_since(started)
        )

    @bentoml.api(route="/sentiment/batch", input_spec=BatchRequest, output_spec=BatchResponse)
    async def sentiment_batch(
        self, texts: list[str], model: str | None = None, version: str | None = None
    ) -> BatchResponse:
        """Classify several texts from one client with one model; answers keep the input order."""
        started = time.perf_counter()
        chosen = await self.choose(model, version)
        predictions = await self.run(chosen, texts)
        return BatchResponse(
            predictions=predictions, model=chosen.tag, family=chosen.family, elapsed_ms=_ms_since(started)
        )

    @bentoml.api(route="/embed", input_spec=EmbedRequest, output_spec=EmbedResponse)
    async def embed(self, texts: list[str]) -> EmbedResponse:
        """Sentence embeddings: one L2-normalised vector per text, in input order."""
        started = time.perf_counter()
        if not SETTINGS.embedding:
            raise EmbeddingNotServed("no embedding model is configured (serving.yaml: embedding)")
        encoder = next(m for m in await self.catalog() if m.family == "embedding" and m.default)
        vectors = await self.transformer_runner.to_async.embed([normalize_text(t) for t in texts])
        return EmbedResponse(
            embeddings=[[round(float(x), 7) for x in row] for row in vectors],
            dim=len(vectors[0]),
            model=encoder.tag,
            elapsed_ms=_ms_since(started),
        )

    @bentoml.api(route="/models", input_spec=ModelsRequest, output_spec=ModelsResponse)
    async def models(self) -> ModelsResponse:
        """The models being served, with the metrics recorded when they were trained."""
        infos = [
            ModelInfo(
                family=m.family,
                name=m.tag.split(":")[0],
                version=m.tag.split(":")[1],
                default=m.default,
                runner=(SETTINGS.embedding if m.family == "embedding" else SETTINGS.models[m.family]).runner,
                pipeline=m.pipeline,
                created_at=m.created_at,
                metrics=m.metadata.get("metrics", {}),
                params=m.metadata.get("params", {}),
                data_sha256=m.metadata.get("data", {}).get("sha256"),
            )
            for m in await self.catalog()
        ]
        return ModelsResponse(default_family=SETTINGS.default_model, models=infos)


# Post-processing: probabilities → label, named classes, rounded for the wire.
def to_prediction(probabilities: list[float]) -> Prediction:
    named = {label: round(p, 6) for label, p in zip(LABELS, probabilities, strict=True)}
    return Prediction(label=max(named, key=named.__getitem__), probabilities=named)


def _ms_since(started: float) -> float:
    return round((time.perf_counter() - started) * 1000, 3)


SentimentService.add_asgi_middleware(HumanErrorsMiddleware)

# The web page, served by the service itself at /ui/ (static files, no build step); Swagger UI stays at /.
FRONTEND_DIR = Path(__file__).resolve().parent / "frontend"
SentimentService.mount_asgi_app(StaticFiles(directory=FRONTEND_DIR, html=True), path="/ui", name="frontend")
install_log_filter()
