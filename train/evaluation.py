"""How every sentiment model is measured: accuracy with a 95 % interval and calibration, per domain.

One function for training (the numbers written into a model's metadata when it is made) and for
``make evaluate`` (the same numbers, re-measured for every served model, in one table). The test split
of every domain is the one from ``dataset.split(load_domain(d), seed)``; nothing fits on it.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np

from tasks.sentiment.pipelines import LABELS, SentimentPipeline
from train import dataset

DOMAINS: tuple[str, ...] = tuple(dataset.DOMAIN_FILES)
Z_95 = 1.959964
ECE_BINS = 10


def wilson_interval(correct: int, n: int, z: float = Z_95) -> tuple[float, float]:
    """The Wilson score interval for a proportion (well behaved near 0 and 1, unlike the normal one)."""
    if n == 0:
        return (0.0, 1.0)
    p = correct / n
    denominator = 1 + z * z / n
    centre = (p + z * z / (2 * n)) / denominator
    half = z * math.sqrt(p * (1 - p) / n + z * z / (4 * n * n)) / denominator
    return (max(0.0, centre - half), min(1.0, centre + half))


def expected_calibration_error(proba: np.ndarray, truth: np.ndarray, bins: int = ECE_BINS) -> float:
    """ECE of the predicted class's probability: the mean |confidence - accuracy| over equal-width
    confidence bins, weighted by how many predictions fall in each."""
    confidence = proba.max(axis=1)
    correct = (proba.argmax(axis=1) == truth).astype(float)
    edges = np.linspace(0.5, 1.0, bins + 1)  # two classes: confidence is at least 0.5
    which = np.clip(np.digitize(confidence, edges[1:-1], right=True), 0, bins - 1)
    error = 0.0
    for b in range(bins):
        members = which == b
        if members.any():
            error += members.mean() * abs(confidence[members].mean() - correct[members].mean())
    return float(error)


def measure(proba: np.ndarray, labels: Sequence[str]) -> dict[str, Any]:
    """Accuracy, its 95 % Wilson interval, macro-F1, log-loss and ECE of probabilities against labels."""
    if len(labels) == 0:
        return {"n": 0}
    truth = np.array([LABELS.index(label) for label in labels])
    pred = proba.argmax(axis=1)
    correct = int(np.sum(pred == truth))
    f1s = []
    for k in range(len(LABELS)):
        tp = np.sum((pred == k) & (truth == k))
        fp = np.sum((pred == k) & (truth != k))
        fn = np.sum((pred != k) & (truth == k))
        f1s.append(0.0 if tp == 0 else 2 * tp / (2 * tp + fp + fn))
    low, high = wilson_interval(correct, len(truth))
    log_loss = -np.mean(np.log(np.clip(proba[np.arange(len(truth)), truth], 1e-12, 1.0)))
    return {
        "n": len(truth),
        "accuracy": round(correct / len(truth), 4),
        "ci95": [round(low, 4), round(high, 4)],
        "macro_f1": round(float(np.mean(f1s)), 4),
        "log_loss": round(float(log_loss), 4),
        "ece": round(expected_calibration_error(proba, truth), 4),
    }


def evaluate(pipeline: SentimentPipeline, examples: Sequence[dataset.Example]) -> dict[str, Any]:
    if not examples:
        return {"n": 0}
    return measure(pipeline.predict_proba([e.text for e in examples]), [e.label for e in examples])


def domain_splits(seed: int, data_dir: Path | None = None) -> dict[str, dataset.Splits]:
    return {d: dataset.split(dataset.load_domain(d, data_dir), seed=seed) for d in DOMAINS}


def evaluate_domains(
    pipeline: SentimentPipeline, splits: Mapping[str, dataset.Splits], part: str = "test"
) -> dict[str, dict[str, Any]]:
    """The pipeline on one part (test by default) of every domain's split."""
    return {domain: evaluate(pipeline, getattr(s, part)) for domain, s in splits.items()}


def claim_failures(evaluation: Mapping[str, Mapping[str, Any]], claims: Mapping[str, float]) -> list[str]:
    """Each claimed domain whose test accuracy is below the model's gate for it, as a sentence."""
    failures = []
    for domain, gate in claims.items():
        accuracy = evaluation.get(domain, {}).get("accuracy")
        if accuracy is None:
            failures.append(f"{domain}: not measured (gate {gate:.3f})")
        elif accuracy < gate:
            failures.append(f"{domain}: accuracy {accuracy:.4f} is below the gate {gate:.3f}")
    return failures
