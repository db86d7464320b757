"""A gated stack: the default sentiment model, as accurate as VADER on tweets and as the transformer on movies.

No single family is good everywhere (test splits, seed 42): the fine-tuned transformer reads movie
snippets (0.85) but not tweets (0.64); VADER, whose lexicon was built from social media, reads tweets
(0.96) but not movie snippets (0.62). The stack learns which to trust for which kind of text:

- members: VADER (its four scores), a TF-IDF + logistic regression fitted on all four domains' training
  splits, the movie-trained Naive Bayes and TF-IDF models (their errors on movie snippets are not the
  transformer's), and the movie-trained transformer: one forward pass feeds its own (movie) head and a
  second head, a logistic regression on its sentence embeddings fitted on all four domains' training splits;
- a gate: a character n-gram classifier of the text's domain (movie snippet, tweet, Amazon review,
  NYT editorial), whose probabilities weight every member's features (a learned mixture of experts);
- the combiner: a logistic regression over the gated features, fitted on predictions the members made on
  text they never learned from (out-of-fold for the TF-IDF member, validation splits, and the other
  domains' training splits for the movie-trained members), so its probabilities are calibrated;
- a cascade: the same combiner without the transformer answers first; only texts it is unsure of
  (probability within ``skip_margin`` of 0.5) go through the transformer. On the validation splits this
  skipped the transformer for half of the texts at a loss of at most 0.2 points on any domain.

Fitting needs each text's domain, so ``train/stacked.py`` fits the parts; this class predicts, saves and
loads. Everything it needs travels inside the stored model (the members are copied in).
"""

from __future__ import annotations

import json
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import joblib
import numpy as np
from sklearn.linear_model import LogisticRegression
from sklearn.pipeline import Pipeline

from tasks.sentiment.pipelines.base import LABELS, SentimentPipeline
from tasks.sentiment.pipelines.naive_bayes import NaiveBayesPipeline
from tasks.sentiment.pipelines.tfidf_logreg import TfidfLogRegPipeline
from tasks.sentiment.pipelines.transformer import TransformerPipeline
from tasks.sentiment.pipelines.vader import VaderPipeline, raw_valence

_PARTS = "stack.joblib"
_CONFIG = "stack.json"
MEMBER_DIRS = {"vader": "vader", "tfidf": "tfidf_logreg", "transformer": "transformer"}
# Members trained elsewhere on one domain (the store's movie-trained families), by kind
DOMAIN_MEMBER_KINDS: dict[str, type[SentimentPipeline]] = {
    NaiveBayesPipeline.kind: NaiveBayesPipeline,
    TfidfLogRegPipeline.kind: TfidfLogRegPipeline,
}

# One column per member score; each is repeated once per domain, weighted by the gate's probability.
BASE_FEATURES = ("vader_says_positive", "vader_valence", "vader_pos", "vader_neg", "tfidf_logit")
TRANSFORMER_FEATURES = ("transformer_movie_head_logit", "transformer_all_domains_head_logit")

Embedder = Callable[[Sequence[str]], np.ndarray]


def logit(p: np.ndarray) -> np.ndarray:
    p = np.clip(p, 1e-6, 1 - 1e-6)
    return np.log(p / (1 - p))


def gated_features(
    vader_scores: np.ndarray, text_p: np.ndarray, domain_p: np.ndarray, transformer_p: np.ndarray | None
) -> np.ndarray:
    """The combiner's input: member scores, the same scores times each domain's gate probability, and
    the gate probabilities themselves (so the combiner can learn a per-domain bias). ``text_p``:
    P(positive) from the TF-IDF member and then each domain member, shape (n, k); ``transformer_p``:
    from each transformer head, shape (n, 2), or None (the cheap stage)."""
    compound = vader_scores[:, 0]
    columns = [
        np.where(compound >= 0, 1.0, -1.0),
        raw_valence(compound) / 5.0,
        vader_scores[:, 1],
        vader_scores[:, 2],
    ]
    columns.extend(logit(text_p[:, k]) for k in range(text_p.shape[1]))
    if transformer_p is not None:
        columns.extend(logit(transformer_p[:, k]) for k in range(transformer_p.shape[1]))
    base = np.column_stack(columns)
    return np.column_stack([base] + [base * domain_p[:, [k]] for k in range(domain_p.shape[1])] + [domain_p])


class StackedPipeline(SentimentPipeline):
    kind = "stacked"
    takes_runtime = True  # its transformer member's encoder

    def __init__(
        self,
        vader: VaderPipeline,
        tfidf: TfidfLogRegPipeline,
        transformer: TransformerPipeline,
        embedding_head: LogisticRegression,
        gate: Pipeline,
        combiner: LogisticRegression,
        cheap_combiner: LogisticRegression,
        skip_margin: float,
        recipe: dict[str, Any] | None = None,
        domain_members: dict[str, SentimentPipeline] | None = None,
    ) -> None:
        self.vader, self.tfidf, self.transformer, self.embedding_head = vader, tfidf, transformer, embedding_head
        # name -> pipeline, in the order of their feature columns (models stored before they existed have none)
        self.domain_members = dict(domain_members or {})
        self.gate, self.combiner, self.cheap_combiner = gate, combiner, cheap_combiner
        self.skip_margin = skip_margin
        self.recipe = dict(recipe or {})
        self.last_transformer_share = 0.0  # share of the last call's texts that needed the transformer

    @property
    def domains(self) -> list[str]:
        return [str(c) for c in self.gate.classes_]

    def fit(self, texts: Sequence[str], labels: Sequence[str]) -> StackedPipeline:
        raise TypeError("the stack is fitted part by part with each text's domain: python -m train.stacked")

    def transformer_scores(self, embeddings: np.ndarray) -> np.ndarray:
        """P(positive) from both transformer heads, shape (n, 2)."""
        return np.column_stack(
            [self.transformer.head_proba(embeddings)[:, 1], self.embedding_head.predict_proba(embeddings)[:, 1]]
        )

    def text_scores(self, texts: Sequence[str]) -> np.ndarray:
        """P(positive) from the TF-IDF member and each domain member, shape (n, 1 + domain members)."""
        columns = [self.tfidf.predict_proba(texts)[:, 1]]
        columns.extend(m.predict_proba(texts)[:, 1] for m in self.domain_members.values())
        return np.column_stack(columns)

    def predict_proba(self, texts: Sequence[str], embed: Embedder | None = None) -> np.ndarray:
        """``embed`` replaces the transformer's encoder (texts → embeddings); training passes one that
        reuses embeddings it has already computed."""
        texts = list(texts)
        if not texts:
            return np.zeros((0, len(LABELS)))
        embed = embed or self.transformer.embed
        vader_scores = self.vader.scores(texts)
        text_p = self.text_scores(texts)
        domain_p = self.gate.predict_proba(texts)
        positive = self.cheap_combiner.predict_proba(gated_features(vader_scores, text_p, domain_p, None))[:, 1]
        unsure = np.flatnonzero(np.abs(positive - 0.5) < self.skip_margin)
        self.last_transformer_share = len(unsure) / len(texts)
        if len(unsure):
            transformer_p = self.transformer_scores(embed([texts[i] for i in unsure]))
            full = gated_features(vader_scores[unsure], text_p[unsure], domain_p[unsure], transformer_p)
            positive[unsure] = self.combiner.predict_proba(full)[:, 1]
        return np.column_stack([1.0 - positive, positive])

    def params(self) -> dict[str, Any]:
        return {
            "members": {
                "vader": self.vader.params(),
                "tfidf_logreg": self.tfidf.params(),
                "transformer": self.transformer.params(),
                **{f"domain member {name}": m.params() for name, m in self.domain_members.items()},
            },
            "gate": "character 1-4-gram TF-IDF + logistic regression over the domains " + ", ".join(self.domains),
            "transformer_all_domains_head": f"logistic regression on the embeddings, C={self.embedding_head.C}",
            "features": list(BASE_FEATURES)
            + [f"{name}_logit" for name in self.domain_members]
            + list(TRANSFORMER_FEATURES)
            + ["each × gate probability", "gate probabilities"],
            "combiner": f"logistic regression, C={self.combiner.C}",
            "skip_margin": self.skip_margin,
            **self.recipe,
        }

    def save(self, path: str) -> None:
        folder = Path(path)
        for name, member in (("vader", self.vader), ("tfidf", self.tfidf), ("transformer", self.transformer)):
            (folder / MEMBER_DIRS[name]).mkdir(exist_ok=True)
            member.save(str(folder / MEMBER_DIRS[name]))
        for name, domain_member in self.domain_members.items():
            (folder / f"member_{name}").mkdir(exist_ok=True)
            domain_member.save(str(folder / f"member_{name}"))
        joblib.dump(
            {
                "gate": self.gate,
                "embedding_head": self.embedding_head,
                "combiner": self.combiner,
                "cheap_combiner": self.cheap_combiner,
            },
            folder / _PARTS,
        )
        (folder / _CONFIG).write_text(
            json.dumps(
                {
                    "kind": self.kind,
                    "skip_margin": self.skip_margin,
                    "recipe": self.recipe,
                    "domain_members": {name: m.kind for name, m in self.domain_members.items()},
                },
                indent=2,
            )
        )

    @classmethod
    def load(cls, path: str, device: str | None = None, runtime: str = "fp32") -> StackedPipeline:
        folder = Path(path)
        config = json.loads((folder / _CONFIG).read_text())
        parts = joblib.load(folder / _PARTS)
        return cls(
            vader=VaderPipeline.load(str(folder / MEMBER_DIRS["vader"])),
            tfidf=TfidfLogRegPipeline.load(str(folder / MEMBER_DIRS["tfidf"])),
            transformer=TransformerPipeline.load(
                str(folder / MEMBER_DIRS["transformer"]), device=device, runtime=runtime
            ),
            embedding_head=parts["embedding_head"],
            gate=parts["gate"],
            combiner=parts["combiner"],
            cheap_combiner=parts["cheap_combiner"],
            skip_margin=float(config["skip_margin"]),
            recipe=config.get("recipe"),
            domain_members={
                name: DOMAIN_MEMBER_KINDS[kind].load(str(folder / f"member_{name}"))
                for name, kind in config.get("domain_members", {}).items()
            },
        )
