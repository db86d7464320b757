"""CPU runner: the classic sentiment models (Naive Bayes, TF-IDF + logistic regression).

One ``predict`` API takes a batch of (model, text) items, adaptively batched by BentoML across
concurrent callers. Which models and versions load, and the batching knobs, come from serving.yaml.
"""

from __future__ import annotations

import logging

import bentoml

from runners import batch_metrics, model_refs
from runners.contract import ClassProbabilities, LoadedModel, TextItem
from settings import load_settings

logger = logging.getLogger("bentoml.sentiment.cpu_runner")

_SETTINGS = load_settings()
_BATCHING = _SETTINGS.runners["cpu"]


@bentoml.service(workers=1, resources={"cpu": "1"})
@model_refs.with_models(_SETTINGS.families_on("cpu"))
class CPUSentimentRunner:
    declared_models: list[model_refs.Declared]

    def __init__(self) -> None:
        from pipelines import load_pipeline

        self.pipelines = {}
        self.loaded: list[LoadedModel] = []
        for declared in self.declared_models:
            stored = model_refs.resolve(type(self), declared)
            kind = stored.info.labels.get("pipeline", "")
            self.pipelines[str(stored.tag)] = load_pipeline(kind, stored.path)
            self.loaded.append(model_refs.describe(declared, stored))
            logger.info("loaded %s as %s (%s)", declared.requested, stored.tag, kind)

    # ``async def`` keeps inference on the event loop's thread: no thread hand-off per batch, and the
    # dispatcher already runs only one batch at a time per worker.
    @bentoml.api(**_BATCHING.api_options())
    async def predict(self, items: list[TextItem]) -> list[ClassProbabilities]:
        batch_metrics.observe("CPUSentimentRunner", "predict", len(items))
        return model_refs.predict_by_model(
            items, lambda tag, texts: model_refs.loaded_pipeline(self.pipelines, tag).predict_proba(texts)
        )

    @bentoml.api
    async def models(self) -> list[LoadedModel]:
        return self.loaded
