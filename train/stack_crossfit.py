"""Cross-fitting: what the movie-trained members say about movie snippets they did not learn.

The stack's combiner must learn how far to trust each member from predictions on text that member never
fitted. For the other domains that is free (the movie-trained members never saw them), but on the movie
snippets every movie-trained member has learned the training split, so without cross-fitting only the
1,057 movie validation rows could teach the combiner about movies — the same rows that chose those
members' hyper-parameters. Measured before cross-fitting (seed 42): the stack led the transformer by 1.6
points on those rows and trailed it by 0.7 on the test split.

Here the movie training split is cut into ``folds`` stratified parts; for each part, fresh copies of the
movie-trained members (the transformer with its own recipe, Naive Bayes, TF-IDF) are fitted on the other
parts and predict the held-out one. The fold transformers are fine-tuned like the stored one (same
hyper-parameters, same precision rule), on (folds - 1) / folds of its data, so the combiner sees a
transformer slightly weaker than the one it will serve with: it errs towards trusting it too little.
What it changed, measured: ``DEFAULT_FOLDS`` in ``train/stacked.py`` (off by default; ``--folds 2``).

Fine-tuning is the cost (one fold ≈ (folds - 1) / folds of a full fine-tune), so the result is cached under
``.cache/stack-crossfit/``, keyed by everything it depends on: the texts and labels, the seed, the folds,
the transformer's recipe and the members' parameters.
"""

from __future__ import annotations

import copy
import hashlib
import json
import logging
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from sklearn.model_selection import StratifiedKFold

from tasks.sentiment.pipelines import LABELS, SentimentPipeline
from tasks.sentiment.pipelines.transformer import TransformerPipeline
from train import dataset

logger = logging.getLogger("train.stack_crossfit")

FOLDS = 2


@dataclass(frozen=True)
class OutOfFold:
    """Predictions on ``texts`` (a domain's training split, in its order) from members that did not fit them."""

    texts: list[str]
    transformer_p: np.ndarray  # (n,) P(positive) from the fold transformer's own head
    embeddings: np.ndarray  # (n, dim) the fold transformer's sentence embeddings
    domain_member_p: np.ndarray  # (n, k) P(positive) from fold copies of the movie-trained members
    fold_of: np.ndarray  # (n,) which fold held each text out
    seconds: float

    def rows_for(self, texts: Sequence[str]) -> np.ndarray:
        """Positions of ``texts`` in this result (they must all be here)."""
        where = {t: i for i, t in enumerate(self.texts)}
        missing = [t for t in texts if t not in where]
        if missing:
            raise ValueError(f"{len(missing)} texts have no out-of-fold prediction, e.g. {missing[0][:60]!r}")
        return np.array([where[t] for t in texts], dtype=int)


def cache_key(
    texts: Sequence[str], labels: np.ndarray, seed: int, folds: int, recipe: dict, members: dict[str, dict]
) -> str:
    digest = hashlib.sha256()
    for text, label in zip(texts, labels.tolist(), strict=True):
        digest.update(f"{label}\t{text}\n".encode())
    digest.update(
        json.dumps(
            {"seed": seed, "folds": folds, "recipe": recipe, "members": members}, sort_keys=True, default=str
        ).encode()
    )
    return digest.hexdigest()[:20]


def fold_transformers_like(stored: TransformerPipeline) -> Callable[[], TransformerPipeline]:
    """Unfitted transformers with the stored one's recipe and start: same encoder, hyper-parameters, seed,
    and the precision it was actually trained in (``auto`` resolved), so the folds mimic the served model."""
    import bentoml

    from train.import_minilm import ensure_encoder

    try:
        encoder = bentoml.models.get(stored.encoder_tag) if stored.encoder_tag else ensure_encoder()
    except (bentoml.exceptions.NotFound, ValueError):
        encoder = ensure_encoder()
    settings = {**stored.hyperparameters(), "train_precision": stored.fit_info.get("train_precision", "fp32")}
    return lambda: TransformerPipeline(encoder.path, encoder_tag=str(encoder.tag), **settings)


def cross_fit(
    examples: Sequence[dataset.Example],
    make_transformer: Callable[[], TransformerPipeline],
    domain_members: dict[str, SentimentPipeline],
    seed: int,
    folds: int = FOLDS,
    cache: Path | None = None,
) -> OutOfFold:
    """Out-of-fold predictions of the movie-trained members on ``examples`` (the movie training split)."""
    if folds < 2:
        raise ValueError(f"cross-fitting needs at least 2 folds, not {folds}")
    texts = [e.text for e in examples]
    y = np.array([LABELS.index(e.label) for e in examples])
    starting_point = make_transformer()
    recipe = {**starting_point.hyperparameters(), "encoder": starting_point.encoder_tag}
    key = cache_key(texts, y, seed, folds, recipe, {n: m.params() for n, m in domain_members.items()})
    cache = (cache or dataset.cache_dir() / "stack-crossfit") / f"{key}.npz"
    if cache.exists():
        saved = np.load(cache)
        logger.info("cross-fitted predictions from %s", cache)
        return OutOfFold(
            texts,
            saved["transformer_p"],
            saved["embeddings"],
            saved["domain_member_p"],
            saved["fold_of"],
            float(saved["seconds"]),
        )
    started = time.perf_counter()
    n = len(texts)
    transformer_p = np.zeros(n)
    embeddings: np.ndarray | None = None
    domain_member_p = np.zeros((n, len(domain_members)))
    fold_of = np.zeros(n, dtype=int)
    splitter = StratifiedKFold(folds, shuffle=True, random_state=seed)
    for fold, (fit_idx, held_idx) in enumerate(splitter.split(texts, y)):
        fit_texts = [texts[i] for i in fit_idx]
        fit_labels = [LABELS[i] for i in y[fit_idx]]
        held_texts = [texts[i] for i in held_idx]
        logger.info("fold %d/%d: fine-tuning the transformer on %d texts", fold + 1, folds, len(fit_texts))
        transformer = make_transformer().fit(fit_texts, fit_labels)
        held_embeddings = transformer.embed(held_texts)
        if embeddings is None:
            embeddings = np.zeros((n, held_embeddings.shape[1]), dtype=np.float32)
        embeddings[held_idx] = held_embeddings
        transformer_p[held_idx] = transformer.head_proba(held_embeddings)[:, 1]
        for k, member in enumerate(domain_members.values()):
            # a fresh copy with the stored member's settings (fit() starts from scratch)
            domain_member_p[held_idx, k] = (
                copy.deepcopy(member).fit(fit_texts, fit_labels).predict_proba(held_texts)[:, 1]
            )
        fold_of[held_idx] = fold
        held_accuracy = float(np.mean((transformer_p[held_idx] >= 0.5) == y[held_idx]))
        logger.info("fold %d/%d: the fold transformer reads its held-out texts at %.4f", fold + 1, folds, held_accuracy)
    assert embeddings is not None
    seconds = round(time.perf_counter() - started, 2)
    cache.parent.mkdir(parents=True, exist_ok=True)
    partial = cache.with_suffix(".partial.npz")  # renamed when complete: a stopped run leaves no half cache
    np.savez(
        partial,
        transformer_p=transformer_p,
        embeddings=embeddings,
        domain_member_p=domain_member_p,
        fold_of=fold_of,
        seconds=seconds,
    )
    partial.replace(cache)
    return OutOfFold(texts, transformer_p, embeddings, domain_member_p, fold_of, seconds)
