"""Model code shared by training (``train/``) and serving (``runners/``).

A *pipeline* turns raw texts into class probabilities and knows how to save itself into, and load
itself from, a folder (a Bento model's ``ref.path``). Training scripts fit and save pipelines; runners
load them. Each stored model records which pipeline made it in its ``pipeline`` label, so a runner can
load any stored sentiment model without knowing its kind in advance. A model stored with a fitted
temperature (``calibration.json``) is loaded with it applied.
"""

from __future__ import annotations

from typing import Any

from tasks.sentiment.pipelines.base import LABELS, SentimentPipeline
from tasks.sentiment.pipelines.calibration import calibrated
from tasks.sentiment.pipelines.naive_bayes import NaiveBayesPipeline
from tasks.sentiment.pipelines.stacked import StackedPipeline
from tasks.sentiment.pipelines.tfidf_logreg import TfidfLogRegPipeline
from tasks.sentiment.pipelines.transformer import TransformerPipeline  # torch/transformers are imported lazily
from tasks.sentiment.pipelines.vader import VaderPipeline

PIPELINES: dict[str, type[SentimentPipeline]] = {
    NaiveBayesPipeline.kind: NaiveBayesPipeline,
    TfidfLogRegPipeline.kind: TfidfLogRegPipeline,
    TransformerPipeline.kind: TransformerPipeline,
    VaderPipeline.kind: VaderPipeline,
    StackedPipeline.kind: StackedPipeline,
}


def encoder_of(pipeline: object) -> Any:
    """The transformer encoder inside a sentiment pipeline (calibrated or not, alone or the stack's
    member), or None for the classic families."""
    while hasattr(pipeline, "inner"):  # a calibrated wrapper
        pipeline = pipeline.inner
    member = getattr(pipeline, "transformer", pipeline)  # the stack's transformer member
    return getattr(member, "encoder", None)


def load_pipeline(kind: str, path: str, device: str | None = None, runtime: str = "fp32") -> SentimentPipeline:
    """A stored sentiment model; ``device`` and ``runtime`` matter only to the pipelines with a transformer
    encoder (the classic ones run on the CPU in plain Python and NumPy)."""
    try:
        cls = PIPELINES[kind]
    except KeyError:
        raise ValueError(f"unknown pipeline kind {kind!r}; known kinds: {sorted(PIPELINES)}") from None
    if cls.takes_runtime:
        return calibrated(cls.load(path, device=device, runtime=runtime), path)  # type: ignore[call-arg]
    return calibrated(cls.load(path, device=device), path)


__all__ = ["LABELS", "PIPELINES", "SentimentPipeline", "encoder_of", "load_pipeline"]
