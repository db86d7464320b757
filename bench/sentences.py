"""Benchmark inputs: real movie-review snippets of 9–20 words, in a fixed order.

Short enough to be a typical request, long enough that the model, not the HTTP stack, does most of
the work. The order is shuffled once with a fixed seed, so every server sees the same sequence.
"""

from __future__ import annotations

import json
import random
from pathlib import Path

MIN_WORDS, MAX_WORDS = 9, 20
SEED = 0


def movie_sentences(
    n: int = 1000, data_dir: Path | None = None, min_words: int = MIN_WORDS, max_words: int = MAX_WORDS
) -> list[str]:
    """Up to ``n`` distinct snippets with ``min_words``–``max_words`` words (whitespace-split).

    A small data folder (the tests' fixture) may hold fewer such sentences; then every sentence of
    three words or more is used, so the benchmark still has inputs to send.
    """
    from train import dataset

    texts = sorted({e.text.strip() for e in dataset.load_domain(dataset.TRAIN_DOMAIN, data_dir)})
    chosen = [t for t in texts if min_words <= len(t.split()) <= max_words]
    if len(chosen) < 16:
        chosen = [t for t in texts if len(t.split()) >= 3]
    random.Random(SEED).shuffle(chosen)
    return chosen[:n]


def write_bodies(texts: list[str], path: Path, model: str | None = "transformer") -> Path:
    """One JSON request body per line, the format the wrk script cycles through."""
    with path.open("w") as fh:
        for text in texts:
            body: dict[str, str] = {"text": text}
            if model:
                body["model"] = model
            fh.write(json.dumps(body, ensure_ascii=False) + "\n")
    return path


def describe(texts: list[str]) -> dict[str, float | int]:
    words = [len(t.split()) for t in texts]
    return {
        "count": len(texts),
        "min_words": min(words),
        "max_words": max(words),
        "mean_words": round(sum(words) / len(words), 2),
        "mean_chars": round(sum(map(len, texts)) / len(texts), 1),
    }
