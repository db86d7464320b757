"""Transformer runner: MiniLM sentiment and sentence embeddings, on the GPU when there is one.

Declares one GPU; BentoML hands it over through CUDA_VISIBLE_DEVICES. Without CUDA the same code runs
on the CPU and says so in the log. Two batchable APIs share one worker and one model thread:

- ``predict``: (model, text) items → class probabilities, from the fine-tuned ``transformer`` family;
- ``embed``: texts → L2-normalised 384-d vectors, from the pretrained ``minilm_encoder``
  (fine-tuning for sentiment bends the embedding space, so general-purpose vectors come from the
  original weights).

Inputs of one batch are tokenised together, padded to the longest text in that batch and truncated at
``pipelines.transformer.MAX_TOKENS`` tokens; padding is masked out, so a text's result does not depend
on what else shares its batch. Both APIs are ``async def``: torch then runs on the thread that loaded
the model, not a thread-pool thread, which on a small CPU avoids a second OpenMP thread team fighting
the first for the cores.
"""

from __future__ import annotations

import logging

import bentoml
import numpy as np

from runners import batch_metrics, model_refs
from runners.contract import ClassProbabilities, LoadedModel, TextItem
from settings import RunnerSettings, load_settings

logger = logging.getLogger("bentoml.sentiment.transformer_runner")

_SETTINGS = load_settings()
# Defaults apply only when serving.yaml gives this runner nothing to serve (the entry service then
# does not start it); the settings loader requires a section for any runner that serves a model.
_KNOBS = _SETTINGS.runners.get("gpu") or RunnerSettings(max_batch_size=64, max_latency_ms=60_000)
_DEPLOYMENTS = {
    **_SETTINGS.families_on("gpu"),
    **({"embedding": _SETTINGS.embedding} if _SETTINGS.embedding else {}),
}


@bentoml.service(workers=1, resources={"gpu": 1})
@model_refs.with_models(_DEPLOYMENTS)
class TransformerRunner:
    declared_models: list[model_refs.Declared]

    def __init__(self) -> None:
        import torch

        from pipelines.transformer import SentenceEncoder, TransformerPipeline, pick_device

        if _KNOBS.torch_threads:
            torch.set_num_threads(_KNOBS.torch_threads)
        self.device = pick_device()
        if self.device.type == "cuda":
            logger.info("using CUDA device %s (%s)", self.device, torch.cuda.get_device_name(self.device))
        else:
            logger.warning("no CUDA device available: running on the CPU with %d threads", torch.get_num_threads())

        self.pipelines: dict[str, TransformerPipeline] = {}
        self.encoder: SentenceEncoder | None = None
        self.encoder_tag = ""
        self.loaded: list[LoadedModel] = []
        for declared in self.declared_models:
            stored = model_refs.resolve(type(self), declared)
            if declared.family == "embedding":
                if declared.default:
                    self.encoder = SentenceEncoder(stored.path, device=str(self.device))
                    self.encoder_tag = str(stored.tag)
            else:
                self.pipelines[str(stored.tag)] = TransformerPipeline.load(stored.path, device=str(self.device))
            self.loaded.append(model_refs.describe(declared, stored))
            logger.info("loaded %s as %s on %s", declared.requested, stored.tag, self.device)

    @bentoml.api(**_KNOBS.api_options())
    async def predict(self, items: list[TextItem]) -> list[ClassProbabilities]:
        batch_metrics.observe("TransformerRunner", "predict", len(items))
        # sorted by length inside predict_proba, then forward passes of forward_batch_size texts
        return model_refs.predict_by_model(
            items,
            lambda tag, texts: model_refs.loaded_pipeline(self.pipelines, tag).predict_proba(
                texts, batch_size=self.forward_batch(len(texts))
            ),
        )

    @bentoml.api(**_KNOBS.api_options())
    async def embed(self, texts: list[str]) -> np.ndarray:
        if self.encoder is None:
            raise bentoml.exceptions.NotFound("no embedding model is configured (serving.yaml: embedding)")
        batch_metrics.observe("TransformerRunner", "embed", len(texts))
        return self.encoder.embed(texts, batch_size=self.forward_batch(len(texts)))

    def forward_batch(self, n: int) -> int:
        """Texts per forward pass for a batch of ``n``: ``forward_batch_size`` from serving.yaml, else all."""
        return min(n, _KNOBS.forward_batch_size or n)

    @bentoml.api
    async def models(self) -> list[LoadedModel]:
        return self.loaded

    @bentoml.api
    async def embedding_model(self) -> str:
        return self.encoder_tag
