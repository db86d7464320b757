"""The stack's recipe: fit its parts on every domain's rows and choose its settings by cross-validation.

``fit_recipe`` is what ``train/stacked.py`` saves and what ``lifecycle/leave_one_domain_out.py`` refits
without one domain. The members' predictions it learns from come from text the members never fitted:
the validation splits and the out-of-fold predictions on the tweets', Amazon and NYT training splits (the
movie-trained members learned the movie training split, so those rows are left out, unless cross-fitted
predictions for them are given: ``train/stack_crossfit.py``). Choices are made
by 5-fold cross-validation over those rows; the test splits are never read here:

- the combiner's regularisation C, by mean accuracy over the domains (the ungated stack and the single
  members are reported beside it, for comparison);
- the cascade's ``skip_margin``, the smallest (most texts answered without the transformer) at which no
  domain's accuracy falls more than ``CASCADE_TOLERANCE`` below the always-transformer stack's.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass

import numpy as np
from sklearn.feature_extraction.text import TfidfVectorizer
from sklearn.linear_model import LogisticRegression
from sklearn.model_selection import StratifiedKFold
from sklearn.pipeline import Pipeline

from tasks.sentiment.pipelines import LABELS, SentimentPipeline
from tasks.sentiment.pipelines.stacked import StackedPipeline, gated_features
from tasks.sentiment.pipelines.tfidf_logreg import TfidfLogRegPipeline
from tasks.sentiment.pipelines.transformer import TransformerPipeline
from tasks.sentiment.pipelines.vader import VaderPipeline
from train import dataset
from train.stack_crossfit import OutOfFold

C_CANDIDATES = (0.3, 1.0, 3.0, 10.0)
MARGIN_CANDIDATES = (0.5, 0.45, 0.4, 0.35, 0.3, 0.25)  # 0.5: every text goes through the transformer
# How much accuracy per domain the cascade may give up for skipping the transformer: 0.2 points, about two
# texts in a domain's thousand rows (with no loss at all allowed, one Amazon text sent every text through).
CASCADE_TOLERANCE = 0.002
FOLDS = 5
TFIDF_C = 2.0
HEAD_C = 1.0


def make_gate(seed: int) -> Pipeline:
    """Which domain does a text look like? Character n-grams catch @mentions, emoticons, review idiom."""
    return Pipeline(
        [
            ("chars", TfidfVectorizer(analyzer="char_wb", ngram_range=(1, 4), min_df=2, sublinear_tf=True)),
            ("logreg", LogisticRegression(C=4.0, max_iter=2000, random_state=seed)),
        ]
    )


class EmbeddingCache:
    """The transformer member's sentence embeddings, computed once per distinct text and reused."""

    def __init__(self, transformer: TransformerPipeline) -> None:
        self.transformer = transformer
        self.cache: dict[str, np.ndarray] = {}

    def __call__(self, texts: Sequence[str]) -> np.ndarray:
        missing = sorted({t for t in texts if t not in self.cache})
        if missing:
            for text, vector in zip(missing, self.transformer.embed(missing), strict=True):
                self.cache[text] = vector
        return np.stack([self.cache[t] for t in texts]) if texts else np.zeros((0, 1), dtype=np.float32)


@dataclass
class Rows:
    texts: list[str]
    y: np.ndarray  # 1 = positive
    domain: np.ndarray  # domain name per row

    @classmethod
    def of(cls, splits: dict[str, dataset.Splits], domains: Sequence[str], part: str) -> Rows:
        examples = [(d, e) for d in domains for e in getattr(splits[d], part)]
        return cls(
            texts=[e.text for _, e in examples],
            y=np.array([LABELS.index(e.label) for _, e in examples]),
            domain=np.array([d for d, _ in examples]),
        )

    def take(self, index: np.ndarray) -> Rows:
        return Rows([self.texts[i] for i in index], self.y[index], self.domain[index])

    def strata(self) -> np.ndarray:
        return np.char.add(self.domain.astype(str), self.y.astype(str))


def accuracy_by_domain(positive: np.ndarray, rows: Rows, domains: Sequence[str]) -> dict[str, float]:
    return {
        d: round(float(np.mean((positive >= 0.5)[rows.domain == d] == rows.y[rows.domain == d])), 4) for d in domains
    }


def fit_recipe(
    splits: dict[str, dataset.Splits],
    domains: Sequence[str],
    vader: VaderPipeline,
    transformer: TransformerPipeline,
    embed: Callable[[Sequence[str]], np.ndarray],
    seed: int,
    domain_members: dict[str, SentimentPipeline],
    C: float | None = None,
    skip_margin: float | None = None,
    movie_oof: OutOfFold | None = None,
) -> tuple[StackedPipeline, dict[str, dict[str, float]]]:
    """Fit the stack on ``domains`` (their training and validation splits); choose C and the margin by
    cross-validation unless given. ``movie_oof``: cross-fitted predictions of the movie-trained members
    on the movie training split (``train/stack_crossfit.py``), which let those rows teach the combiner
    too. Returns the pipeline and what was tried (accuracy per domain)."""
    train, val = Rows.of(splits, domains, "train"), Rows.of(splits, domains, "validation")
    train_embeddings = embed(train.texts)
    tfidf = TfidfLogRegPipeline(C=TFIDF_C, seed=seed).fit(train.texts, [LABELS[i] for i in train.y])
    gate = make_gate(seed).fit(train.texts, train.domain)
    head = LogisticRegression(C=HEAD_C, max_iter=3000).fit(train_embeddings, train.y)

    # Out-of-fold member predictions on the training rows: what the combiner learns from must be text
    # the members did not fit. The movie-trained members learned the movie snippets' training split, so
    # their movie training rows count only when cross-fitted predictions for them are given.
    n = len(train.texts)
    movie = np.flatnonzero(train.domain == dataset.TRAIN_DOMAIN)
    outside = np.flatnonzero(train.domain != dataset.TRAIN_DOMAIN)
    movie_oof = movie_oof if len(movie) else None  # without movie rows there is nothing to cross-fit
    cross_fitted = movie_oof is not None
    # the embeddings a transformer that did not learn the text gives it (the fold transformer's, for movies)
    unseen_embeddings = train_embeddings
    if movie_oof is not None:
        at = movie_oof.rows_for([train.texts[i] for i in movie])
        unseen_embeddings = train_embeddings.copy()
        unseen_embeddings[movie] = movie_oof.embeddings[at]
    tfidf_oof, head_oof, gate_oof = np.zeros(n), np.zeros(n), np.zeros((n, len(gate.classes_)))
    for fit_idx, held_idx in StratifiedKFold(FOLDS, shuffle=True, random_state=seed).split(train.texts, train.strata()):
        part, held = train.take(fit_idx), train.take(held_idx)
        fold_tfidf = TfidfLogRegPipeline(C=TFIDF_C, seed=seed).fit(part.texts, [LABELS[i] for i in part.y])
        tfidf_oof[held_idx] = fold_tfidf.predict_proba(held.texts)[:, 1]
        gate_oof[held_idx] = make_gate(seed).fit(part.texts, part.domain).predict_proba(held.texts)
        fold_head = LogisticRegression(C=HEAD_C, max_iter=3000).fit(train_embeddings[fit_idx], part.y)
        head_oof[held_idx] = fold_head.predict_proba(unseen_embeddings[held_idx])[:, 1]
    movie_head, domain_p = np.zeros(n), np.zeros((n, len(domain_members)))
    if len(outside):
        movie_head[outside] = transformer.head_proba(train_embeddings[outside])[:, 1]
        for k, m in enumerate(domain_members.values()):
            domain_p[outside, k] = m.predict_proba([train.texts[i] for i in outside])[:, 1]
    if movie_oof is not None:
        movie_head[movie] = movie_oof.transformer_p[at]
        domain_p[movie] = movie_oof.domain_member_p[at]
    rows = np.arange(n) if cross_fitted else outside
    val_embeddings = embed(val.texts)
    meta = Rows(
        [train.texts[i] for i in rows] + val.texts,
        np.concatenate([train.y[rows], val.y]),
        np.concatenate([train.domain[rows], val.domain]),
    )
    text_p = np.column_stack(
        [np.concatenate([tfidf_oof[rows], tfidf.predict_proba(val.texts)[:, 1]])]
        + [
            np.concatenate([domain_p[rows, k], m.predict_proba(val.texts)[:, 1]])
            for k, m in enumerate(domain_members.values())
        ]
    )
    gate_p = np.vstack([gate_oof[rows], gate.predict_proba(val.texts)])
    transformer_p = np.column_stack(
        [
            np.concatenate([movie_head[rows], transformer.head_proba(val_embeddings)[:, 1]]),
            np.concatenate([head_oof[rows], head.predict_proba(val_embeddings)[:, 1]]),
        ]
    )
    vader_scores = vader.scores(meta.texts)
    X = {
        True: gated_features(vader_scores, text_p, gate_p, transformer_p),
        False: gated_features(vader_scores, text_p, gate_p, None),
    }

    # Every domain weighs the same in the combiner's fit, however many rows it brings (the movie snippets
    # bring only their validation rows).
    counts = {d: int(np.sum(meta.domain == d)) for d in domains}
    weight = np.array([len(meta.y) / (len(domains) * counts[d]) for d in meta.domain])

    def cross_validated(with_transformer: bool, c: float, ungated: bool = False) -> np.ndarray:
        features = X[with_transformer]
        if ungated:  # the same members without the gate: only the first block of columns
            features = features[:, : features.shape[1] // (len(gate.classes_) + 1)]
        positive = np.zeros(len(meta.y))
        for fit_idx, held_idx in StratifiedKFold(FOLDS, shuffle=True, random_state=seed).split(features, meta.strata()):
            model = LogisticRegression(C=c, max_iter=5000)
            model.fit(features[fit_idx], meta.y[fit_idx], sample_weight=weight[fit_idx])
            positive[held_idx] = model.predict_proba(features[held_idx])[:, 1]
        return positive

    tried: dict[str, dict[str, float]] = {
        "vader alone": accuracy_by_domain(vader.predict_proba(meta.texts)[:, 1], meta, domains),
        "transformer alone (its movie head)": accuracy_by_domain(transformer_p[:, 0], meta, domains),
        "transformer, all-domains head alone": accuracy_by_domain(transformer_p[:, 1], meta, domains),
        "tfidf (all domains) alone": accuracy_by_domain(text_p[:, 0], meta, domains),
        **{
            f"{name} (movies) alone": accuracy_by_domain(text_p[:, k + 1], meta, domains)
            for k, name in enumerate(domain_members)
        },
    }
    if C is None:
        for c in C_CANDIDATES:
            tried[f"stack without gate, C={c}"] = accuracy_by_domain(
                cross_validated(True, c, ungated=True), meta, domains
            )
        candidates = {c: accuracy_by_domain(cross_validated(True, c), meta, domains) for c in C_CANDIDATES}
        tried.update({f"gated stack, C={c}": acc for c, acc in candidates.items()})
        C = max(C_CANDIDATES, key=lambda c: (round(float(np.mean(list(candidates[c].values()))), 4), -c))
    if skip_margin is None:
        full, cheap = cross_validated(True, C), cross_validated(False, C)
        reference = accuracy_by_domain(full, meta, domains)
        skip_margin = MARGIN_CANDIDATES[0]
        for margin in MARGIN_CANDIDATES:
            unsure = np.abs(cheap - 0.5) < margin
            acc = accuracy_by_domain(np.where(unsure, full, cheap), meta, domains)
            tried[f"gated stack, C={C}, transformer for |p-0.5| < {margin} ({unsure.mean():.0%} of texts)"] = acc
            if all(acc[d] >= reference[d] - CASCADE_TOLERANCE for d in domains):
                skip_margin = margin
    combiner = LogisticRegression(C=C, max_iter=5000).fit(X[True], meta.y, sample_weight=weight)
    cheap_combiner = LogisticRegression(C=C, max_iter=5000).fit(X[False], meta.y, sample_weight=weight)
    recipe = {
        "C": C,
        "domain_balanced_weights": True,
        "folds": FOLDS,
        "tfidf_C": TFIDF_C,
        "head_C": HEAD_C,
        "cascade_tolerance": CASCADE_TOLERANCE,
        "train_domains": list(domains),
        "movie_training_rows": "cross-fitted" if cross_fitted else "left out",
    }
    pipeline = StackedPipeline(
        vader,
        tfidf,
        transformer,
        head,
        gate,
        combiner,
        cheap_combiner,
        skip_margin,
        recipe=recipe,
        domain_members=domain_members,
    )
    return pipeline, tried
