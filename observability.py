"""What the entry service records about each prediction: Prometheus metrics and monitoring records.

Metrics go through ``bentoml.metrics`` (prometheus_client in multiprocess mode, so the numbers are
summed correctly over several workers) and appear at ``/metrics`` next to BentoML's own:

- ``sentiment_predictions_total{family, model, label, role}``: answers per model version and label
  (``role`` is ``primary`` for answers callers got and ``shadow`` for shadow answers);
- ``sentiment_routing_decisions_total{policy, arm, model}``: which arm each request was routed to;
- ``sentiment_shadow_results_total{shadow, outcome}``: shadow outcomes, where ``outcome`` is
  ``agree``/``disagree`` (with the primary's label), ``error``, ``timeout`` or ``dropped``. The
  agreement rate is ``agree / (agree + disagree)``.

Monitoring records go through ``bentoml.monitor`` to rotating JSON-lines files by default, or to an
OTLP endpoint when configuration.yaml says so. Each record holds the input (raw, a salted digest, or
nothing, per serving.yaml ``monitoring.record_inputs``) with its length statistics, the output, the
model version, the arm and the latency. ``python -m lifecycle.drift`` reads those files.
"""

from __future__ import annotations

import hashlib
from typing import Any

import bentoml

from pipelines.text import tokenize
from settings import Monitoring

PREDICTIONS = bentoml.metrics.Counter(
    name="sentiment_predictions",
    documentation="Predictions per model version and label",
    labelnames=["family", "model", "label", "role"],
)
ROUTING = bentoml.metrics.Counter(
    name="sentiment_routing_decisions",
    documentation="Traffic-policy decisions per policy, arm and model version",
    labelnames=["policy", "arm", "model"],
)
SHADOW = bentoml.metrics.Counter(
    name="sentiment_shadow_results",
    documentation="Shadow calls by outcome: agree, disagree (with the primary), error, timeout, dropped",
    labelnames=["shadow", "outcome"],
)

PREDICTION_MONITOR = "sentiment_predictions"


def input_fields(text: str, settings: Monitoring) -> dict[str, Any]:
    fields: dict[str, Any] = {"text_chars": len(text), "text_tokens": len(tokenize(text))}
    if settings.record_inputs == "raw":
        fields["text"] = text
    elif settings.record_inputs == "digest":
        fields["text_sha256"] = hashlib.sha256(f"{settings.digest_salt}\x00{text}".encode()).hexdigest()
    return fields


_TYPES = {
    "text": ("feature", "categorical"),
    "text_sha256": ("feature", "categorical"),
    "text_chars": ("feature", "numerical"),
    "text_tokens": ("feature", "numerical"),
    "label": ("prediction", "categorical"),
    "p_positive": ("prediction", "numerical"),
}


def record(
    texts: list[str],
    labels: list[str],
    p_positive: list[float],
    *,
    family: str,
    model: str,
    arm: str,
    policy: str,
    role: str,
    latency_ms: float,
    settings: Monitoring,
) -> None:
    """Count each prediction and write one monitoring record per text."""
    for text, label, p in zip(texts, labels, p_positive, strict=True):
        PREDICTIONS.labels(family=family, model=model, label=label, role=role).inc()
        fields = {
            **input_fields(text, settings),
            "label": label,
            "p_positive": round(p, 6),
            "family": family,
            "model": model,
            "arm": arm,
            "policy": policy,
            "role": role,
            "latency_ms": latency_ms,
        }
        with bentoml.monitor(PREDICTION_MONITOR) as mon:
            for name, value in fields.items():
                # context columns (model, arm, latency, ...) are logged as features: BentoML's monitor
                # knows only the roles feature, prediction and target
                role_of, data_type = _TYPES.get(
                    name, ("feature", "numerical" if isinstance(value, float) else "categorical")
                )
                mon.log(value, name=name, role=role_of, data_type=data_type)
