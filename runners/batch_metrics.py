"""Inputs per model call, observed by the runners themselves.

BentoML's ``bentoml_service_adaptive_batch_size`` counts *requests* per batch. The entry service sends
one request per coalesced group of public requests (bundle/coalesce.py), so that histogram says little
about how wide the model's batches are; this one counts the inputs that went through one model together.
"""

from __future__ import annotations

import bentoml

BATCH_INPUTS = bentoml.metrics.Histogram(
    name="bundle_runner_batch_inputs",
    documentation="Inputs per model call (one model's share of one adaptive batch of one runner)",
    labelnames=["runner", "task"],
    buckets=(1, 2, 4, 8, 16, 32, 64, 128, 256, 512, 1024, 2048, 4096),
)


def observe(runner: str, task: str, inputs: int) -> None:
    BATCH_INPUTS.labels(runner=runner, task=task).observe(inputs)
