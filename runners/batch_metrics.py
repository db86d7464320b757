"""Texts per model call, observed by the runners themselves.

BentoML's ``bentoml_service_adaptive_batch_size`` counts *requests* per batch. The entry service sends
one request per coalesced group of public requests (coalesce.py), so that histogram says little about
how wide the model's batches are; this one counts the texts that went through the model together.
"""

from __future__ import annotations

import bentoml

BATCH_TEXTS = bentoml.metrics.Histogram(
    name="sentiment_runner_batch_texts",
    documentation="Texts per model call (one adaptive batch of one runner API)",
    labelnames=["runner", "method"],
    buckets=(1, 2, 4, 8, 16, 32, 64, 128, 256, 512, 1024, 2048, 4096),
)


def observe(runner: str, method: str, texts: int) -> None:
    BATCH_TEXTS.labels(runner=runner, method=method).observe(texts)
