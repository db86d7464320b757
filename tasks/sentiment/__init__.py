"""Sentiment: is a text positive or negative?

Models: NLTK Naive Bayes and TF-IDF + logistic regression (CPU), a fine-tuned MiniLM transformer (GPU
runner, CPU fallback), all trained by ``train/`` on the VADER ground-truth snippets; VADER itself (rules,
the baseline); and the default, a gated stack of VADER, the TF-IDF and Naive Bayes models and the
transformer that is at least as accurate as VADER on every domain and within a point of the transformer
on movie snippets (``train/stacked.py``; ``make evaluate`` prints the table). Endpoints:
``/sentiment`` (one text), ``/sentiment/batch`` (several texts, one model), ``/sentiment/ensemble``
(every member of serving.yaml's ensemble, probabilities averaged by weight).

The whole path: train/{naive_bayes,tfidf_logreg,transformer,import_vader,stacked}.py → Bento store → runners (via
``load_model`` below) → the handlers below → clients.
"""

from __future__ import annotations

import time
from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

from bundle.contract import answered
from bundle.task import Endpoint, Predictor, Task
from tasks.embedding.runtimes import RUNTIMES
from tasks.sentiment.contract import (
    BatchRequest,
    BatchResponse,
    EnsembleMember,
    EnsembleRequest,
    EnsembleResponse,
    Prediction,
    SentimentRequest,
    SentimentResponse,
)
from tasks.sentiment.pipelines.base import LABELS, SentimentPipeline

if TYPE_CHECKING:  # the gateway needs BentoML; the task's contract and pipelines do not
    from bundle.gateway import TaskGateway


class ProbabilitiesPredictor:
    """A stored sentiment pipeline as the runners see it: texts in, class probabilities out."""

    # Every pipeline predicts without changing what it learned (the transformer tokenizes under a lock),
    # so a runner may run several passes at once.
    thread_safe = True

    def __init__(self, pipeline: SentimentPipeline) -> None:
        self.pipeline = pipeline
        self.runtime = encoder_runtime(pipeline)

    def predict(self, inputs: Sequence[Any]) -> list[list[float]]:
        return [[float(p) for p in row] for row in self.pipeline.predict_proba(list(inputs))]


def encoder_runtime(pipeline: Any) -> str:
    """The runtime of the pipeline's transformer encoder and why it was chosen ("" for the classic ones)."""
    from tasks.sentiment.pipelines import encoder_of

    encoder = encoder_of(pipeline)
    return f"{encoder.runtime}: {encoder.runtime_reason}" if encoder is not None else ""


def to_prediction(probabilities: Sequence[float]) -> Prediction:
    """Post-processing: probabilities → label, named classes, rounded for the wire."""
    named = {label: round(float(p), 6) for label, p in zip(LABELS, probabilities, strict=True)}
    return Prediction.model_validate({"label": max(named, key=named.__getitem__), "probabilities": named})


def _ms_since(started: float) -> float:
    return round((time.perf_counter() - started) * 1000, 3)


async def in_english(gateway: TaskGateway, texts: list[str], lang: str) -> tuple[list[str], str | None]:
    """The texts in English, and the model that translated them (None when they were English already).

    An inference graph across tasks: text in another language goes through the translation task first."""
    if lang == "en":
        return texts, None
    from tasks.translation import translate_texts

    answer = await translate_texts(gateway.peer("translation"), texts, lang, "en")
    return answer.outputs, answer.model.tag


async def classify(gateway: TaskGateway, request: SentimentRequest) -> SentimentResponse:
    """Classify one text as positive or negative (in English, or another language through translation)."""
    started = time.perf_counter()
    (text,), translated_by = await in_english(gateway, [request.text], request.lang)
    answer = await gateway.infer([text], model=request.model, version=request.version, user=request.user)
    return SentimentResponse(
        **to_prediction(answer.outputs[0]).model_dump(),
        translation=text if translated_by else None,
        translation_model=translated_by,
        **answered(answer, started),
    )


async def classify_batch(gateway: TaskGateway, request: BatchRequest) -> BatchResponse:
    """Classify several texts from one client with one model; answers keep the input order."""
    started = time.perf_counter()
    texts, translated_by = await in_english(gateway, request.texts, request.lang)
    answer = await gateway.infer(texts, model=request.model, version=request.version, user=request.user)
    return BatchResponse(
        predictions=[to_prediction(p) for p in answer.outputs],
        translations=texts if translated_by else [],
        translation_model=translated_by,
        **answered(answer, started),
    )


async def classify_ensemble(gateway: TaskGateway, request: EnsembleRequest) -> EnsembleResponse:
    """An inference graph: every ensemble member classifies the text concurrently; their class
    probabilities are averaged with the weights from serving.yaml (``tasks.sentiment.ensemble``)."""
    started = time.perf_counter()
    (combined,), members = await gateway.ensemble([request.text])
    return EnsembleResponse(
        **to_prediction(combined).model_dump(),
        members=[
            EnsembleMember(
                family=m.model.family, model=m.model.tag, weight=m.weight, **to_prediction(m.outputs[0]).model_dump()
            )
            for m in members
        ],
        elapsed_ms=_ms_since(started),
    )


class SentimentTask(Task):
    name = "sentiment"
    store_models = {
        "sentiment_nb": "train.naive_bayes",
        "sentiment_logreg": "train.tfidf_logreg",
        "sentiment_transformer": "train.transformer",
        "sentiment_vader": "train.import_vader",
        "sentiment_stacked": "train.stacked",
    }
    # minutes of fine-tuning; until they are made, requests fall back to the next model of the task
    slow_store_models = frozenset({"sentiment_transformer", "sentiment_stacked"})

    @property
    def endpoints(self) -> list[Endpoint]:
        return [
            Endpoint("/sentiment", SentimentRequest, SentimentResponse, classify, name="sentiment"),
            Endpoint("/sentiment/batch", BatchRequest, BatchResponse, classify_batch),
            Endpoint("/sentiment/ensemble", EnsembleRequest, EnsembleResponse, classify_ensemble),
        ]

    tensor_outputs = [("label", "BYTES", [-1]), ("probabilities", "FP32", [-1, len(LABELS)])]

    def to_tensors(self, outputs: Sequence[Any]) -> dict[str, list[Any]]:
        return {"label": self.output_labels(outputs), "probabilities": [list(p) for p in outputs]}

    runtimes = RUNTIMES  # of the transformer encoder; the classic families have one way to run

    def load_model(self, kind: str, path: str, device: str, runtime: str = "auto") -> Predictor:
        from tasks.sentiment.pipelines import load_pipeline

        return ProbabilitiesPredictor(load_pipeline(kind, path, device=device, runtime=runtime))

    def describe_outputs(self, outputs: Sequence[Any]) -> dict[str, Any]:
        return {"label": self.output_labels(outputs), "p_positive": [round(float(p[1]), 6) for p in outputs]}

    def output_labels(self, outputs: Sequence[Any]) -> list[str]:
        return [LABELS[max(range(len(p)), key=p.__getitem__)] for p in outputs]

    def agree(self, ours: Any, theirs: Any) -> bool:
        return self.output_labels([ours]) == self.output_labels([theirs])

    def combine(self, outputs: Sequence[Any], weights: Sequence[float]) -> list[float]:
        return [sum(w * out[k] for out, w in zip(outputs, weights, strict=True)) for k in range(len(LABELS))]
