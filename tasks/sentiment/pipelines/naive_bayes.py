"""The classic recipe, improved: NLTK Naive Bayes on binary (present/absent) stem features.

Lower-casing, Snowball stemming and presence instead of counts are the textbook improvements. Two more,
chosen on the validation split: stem bigrams (so "not good" is a feature) and dropping features seen in
fewer than ``min_df`` training texts (rare features only add noise to Naive Bayes' likelihoods).
"""

from __future__ import annotations

import pickle
from collections import Counter
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np
from nltk.classify import NaiveBayesClassifier

from tasks.sentiment.pipelines.base import LABELS, SentimentPipeline
from tasks.sentiment.pipelines.features import stems

_FILE = "naive_bayes.pkl"


class NaiveBayesPipeline(SentimentPipeline):
    kind = "naive_bayes"

    def __init__(self, bigrams: bool = True, min_df: int = 2) -> None:
        self.bigrams, self.min_df = bigrams, min_df
        self.classifier: NaiveBayesClassifier | None = None
        self.vocabulary: frozenset[str] | None = None

    def features(self, text: str) -> dict[str, bool]:
        tokens = stems(text)
        feats = dict.fromkeys(tokens, True)
        if self.bigrams:
            feats.update(dict.fromkeys((f"{a} {b}" for a, b in zip(tokens, tokens[1:], strict=False)), True))
        if self.vocabulary is not None:
            feats = {k: v for k, v in feats.items() if k in self.vocabulary}
        return feats

    def fit(self, texts: Sequence[str], labels: Sequence[str]) -> NaiveBayesPipeline:
        self.vocabulary = None
        raw = [self.features(t) for t in texts]
        doc_freq = Counter(k for feats in raw for k in feats)
        self.vocabulary = frozenset(k for k, n in doc_freq.items() if n >= self.min_df)
        featuresets = [
            ({k: v for k, v in feats.items() if k in self.vocabulary}, y) for feats, y in zip(raw, labels, strict=True)
        ]
        self.classifier = NaiveBayesClassifier.train(featuresets)
        return self

    def predict_proba(self, texts: Sequence[str]) -> np.ndarray:
        if self.classifier is None:
            raise RuntimeError("pipeline is not fitted")
        out = np.empty((len(texts), len(LABELS)), dtype=np.float64)
        for i, text in enumerate(texts):
            dist = self.classifier.prob_classify(self.features(text))
            out[i] = [dist.prob(label) for label in LABELS]
        return out

    def params(self) -> dict[str, Any]:
        return {
            "features": "binary Snowball stems" + (" and stem bigrams" if self.bigrams else ""),
            "min_df": self.min_df,
            "tokenizer": "nltk.wordpunct_tokenize",
            "lowercase": True,
            "estimator": "nltk.NaiveBayesClassifier",
        }

    def most_informative(self, n: int = 10) -> list[str]:
        assert self.classifier is not None
        return [name for name, _ in self.classifier.most_informative_features(n)]

    def save(self, path: str) -> None:
        with (Path(path) / _FILE).open("wb") as fh:
            state = {
                "classifier": self.classifier,
                "vocabulary": self.vocabulary,
                "bigrams": self.bigrams,
                "min_df": self.min_df,
            }
            pickle.dump(state, fh, protocol=pickle.HIGHEST_PROTOCOL)

    @classmethod
    def load(cls, path: str, device: str | None = None) -> NaiveBayesPipeline:
        with (Path(path) / _FILE).open("rb") as fh:
            state = pickle.load(fh)
        pipe = cls(bigrams=state["bigrams"], min_df=state["min_df"])
        pipe.classifier, pipe.vocabulary = state["classifier"], state["vocabulary"]
        return pipe
