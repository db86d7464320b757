"""What the entry service records about each request: Prometheus metrics and prediction records.

Metrics go through ``bentoml.metrics`` (prometheus_client in multiprocess mode, so the numbers are
summed correctly over several workers) and appear at ``/metrics`` next to BentoML's own. Each series has
one meaning:

- ``bundle_predictions_total{task, family, model, label, role}``: outputs (one per input) per model
  version and label (``-`` for tasks without classes); ``role`` is ``primary`` for answers callers got
  and ``shadow`` for shadow answers;
- ``bundle_routing_decisions_total{task, policy, arm, model}``: requests, once each, by the arm that
  finally answered (``fallback:<model>`` when the default model stood in);
- ``bundle_fallbacks_total{task, arm, reason}``: requests whose routed arm failed (``reason`` ``error``)
  or missed its deadline (``deadline``) and were answered by the task's default model instead;
- ``bundle_runner_failures_total{runner, reason}``: requests whose runner call failed (``error``) or did
  not answer before the request's deadline (``deadline``: a wedged or overloaded runner);
- ``bundle_shadow_results_total{task, shadow, outcome}``: inputs copied to a shadow, by outcome:
  ``agree``/``disagree`` with the primary, ``error``, ``timeout`` or ``dropped``. The agreement rate is
  ``agree / (agree + disagree)``;
- ``bundle_runner_batch_inputs`` (runners/batch_metrics.py): inputs per model call.

Prediction records go through ``bentoml.monitor`` to rotating JSON-lines files by default, or to an
OTLP endpoint when configuration.yaml says so: one record per request, whose list fields hold one entry
per input (the task decides what: for text, lengths and a digest of each text; for sentiment, labels and
probabilities). ``python -m lifecycle.drift`` reads those files.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import bentoml

from bundle.text import text_fields  # noqa: F401 -- re-exported: the record's view of texts

PREDICTIONS = bentoml.metrics.Counter(
    name="bundle_predictions",
    documentation="Outputs (one per input) per task, model version and label",
    labelnames=["task", "family", "model", "label", "role"],
)
ROUTING = bentoml.metrics.Counter(
    name="bundle_routing_decisions",
    documentation="Requests by traffic policy, the arm that answered and its model version",
    labelnames=["task", "policy", "arm", "model"],
)
DEGRADED = bentoml.metrics.Counter(
    name="bundle_degraded",
    documentation="Requests answered by the task's cheaper model (degrade_to) because the routed one was overloaded",
    labelnames=["task", "routed", "answered"],
)
FALLBACKS = bentoml.metrics.Counter(
    name="bundle_fallbacks",
    documentation="Requests answered by the default model because the routed arm failed or missed its deadline",
    labelnames=["task", "arm", "reason"],
)
RUNNER_FAILURES = bentoml.metrics.Counter(
    name="bundle_runner_failures",
    documentation="Requests whose runner call failed (error) or missed the request's deadline (deadline)",
    labelnames=["runner", "reason"],
)
SHADOW = bentoml.metrics.Counter(
    name="bundle_shadow_results",
    documentation="Inputs copied to a shadow, by outcome: agree, disagree (with the primary), error, timeout, dropped",
    labelnames=["task", "shadow", "outcome"],
)

PREDICTION_MONITOR = "bundle_predictions"


def record(
    *,
    task: str,
    inputs: dict[str, Any],
    outputs: dict[str, Any],
    labels: Sequence[str],
    family: str,
    model: str,
    arm: str,
    policy: str,
    role: str,
    latency_ms: float,
) -> None:
    """Count a request's outputs and write its one prediction record."""
    for label in labels:
        PREDICTIONS.labels(task=task, family=family, model=model, label=label, role=role).inc()
    context: dict[str, Any] = {
        "task": task,
        "family": family,
        "model": model,
        "arm": arm,
        "policy": policy,
        "role": role,
        "latency_ms": latency_ms,
    }
    with bentoml.monitor(PREDICTION_MONITOR) as mon:
        for name, value in inputs.items():
            mon.log(value, name=name, role="feature", data_type=_list_type(value))
        for name, value in outputs.items():
            mon.log(value, name=name, role="prediction", data_type=_list_type(value))
        # context columns are logged as features: BentoML's monitor knows only feature, prediction, target
        for name, value in context.items():
            data_type = "numerical" if isinstance(value, float) else "categorical"
            mon.log(value, name=name, role="feature", data_type=data_type)


def _list_type(values: Any) -> str:
    numbers = isinstance(values, list) and all(isinstance(v, int | float) for v in values)
    return "numerical_sequence" if numbers else "categorical"
