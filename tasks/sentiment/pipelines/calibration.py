"""Temperature scaling: probabilities that mean what they say, without changing a single label.

A model trained to minimise log-loss on one domain is often over-confident (a fine-tuned transformer
says 0.99 where it is right 90 % of the time). Dividing its logits by one number T > 1, fitted by maximum
likelihood on the validation split, fixes most of that (Guo et al., "On Calibration of Modern Neural
Networks", ICML 2017). The argmax, and so the accuracy, is unchanged.

Training writes T into the stored model's folder (``calibration.json``); ``load_pipeline`` applies it.
"""

from __future__ import annotations

import json
import math
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np

from tasks.sentiment.pipelines.base import LABELS, SentimentPipeline

CALIBRATION_FILE = "calibration.json"


def scale(proba: np.ndarray, temperature: float) -> np.ndarray:
    """Softmax of log-probabilities divided by the temperature (rows sum to 1, argmax unchanged)."""
    logits = np.log(np.clip(proba, 1e-12, 1.0)) / temperature
    logits -= logits.max(axis=1, keepdims=True)
    e = np.exp(logits)
    return e / e.sum(axis=1, keepdims=True)


def fit_temperature(proba: np.ndarray, labels: Sequence[str]) -> float:
    """The temperature that maximises the likelihood of ``labels`` (searched on log T in [-3, 3])."""
    from scipy.optimize import minimize_scalar

    truth = np.array([LABELS.index(label) for label in labels])

    def nll(log_t: float) -> float:
        scaled = scale(proba, math.exp(log_t))
        return float(-np.mean(np.log(np.clip(scaled[np.arange(len(truth)), truth], 1e-12, 1.0))))

    return float(math.exp(minimize_scalar(nll, bounds=(-3.0, 3.0), method="bounded").x))


class TemperatureScaled(SentimentPipeline):
    """A stored pipeline with its fitted temperature applied to every prediction."""

    def __init__(self, inner: SentimentPipeline, temperature: float) -> None:
        self.inner, self.temperature = inner, temperature
        self.kind = inner.kind  # type: ignore[misc]  # the stored model's kind, as labelled

    def fit(self, texts: Sequence[str], labels: Sequence[str]) -> TemperatureScaled:
        raise TypeError("fit the inner pipeline, then fit_temperature on held-out data")

    def predict_proba(self, texts: Sequence[str], **options: Any) -> np.ndarray:
        """``options`` go to the inner pipeline (the transformer's ``batch_size``)."""
        return scale(self.inner.predict_proba(texts, **options), self.temperature)

    def params(self) -> dict[str, Any]:
        return {
            **self.inner.params(),
            "calibration": {"method": "temperature", "temperature": round(self.temperature, 6)},
        }

    def save(self, path: str) -> None:
        self.inner.save(path)
        (Path(path) / CALIBRATION_FILE).write_text(
            json.dumps({"method": "temperature", "temperature": self.temperature})
        )

    @classmethod
    def load(cls, path: str, device: str | None = None) -> SentimentPipeline:
        raise TypeError("load_pipeline applies a stored calibration")


def calibrated(pipeline: SentimentPipeline, path: str) -> SentimentPipeline:
    """``pipeline`` with the temperature stored beside it applied, if there is one."""
    file = Path(path) / CALIBRATION_FILE
    if not file.is_file():
        return pipeline
    return TemperatureScaled(pipeline, float(json.loads(file.read_text())["temperature"]))
