"""The second candidate: scikit-learn TF-IDF + logistic regression.

Two TF-IDF views are concatenated: word unigrams+bigrams, and character 2–5-grams within word
boundaries (robust to misspellings and morphology, which helps most on short, noisy text). ``C`` was
chosen on the validation split.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Any

import joblib
import numpy as np
from sklearn.feature_extraction.text import TfidfVectorizer
from sklearn.linear_model import LogisticRegression
from sklearn.pipeline import FeatureUnion, Pipeline

from tasks.sentiment.pipelines.base import LABELS, SentimentPipeline
from tasks.sentiment.pipelines.features import tokenize

_FILE = "tfidf_logreg.joblib"


class TfidfLogRegPipeline(SentimentPipeline):
    kind = "tfidf_logreg"

    def __init__(self, C: float = 2.0, ngram_max: int = 2, char_ngrams: bool = True, seed: int = 0) -> None:
        self.C, self.ngram_max, self.char_ngrams, self.seed = C, ngram_max, char_ngrams, seed
        self.model: Pipeline | None = None

    def fit(self, texts: Sequence[str], labels: Sequence[str]) -> TfidfLogRegPipeline:
        self.model = Pipeline(
            [
                ("tfidf", FeatureUnion(self._views())),
                ("logreg", LogisticRegression(C=self.C, max_iter=2000, random_state=self.seed)),
            ]
        )
        y = np.array([LABELS.index(label) for label in labels])
        self.model.fit(list(texts), y)
        return self

    def _views(self) -> list[tuple[str, TfidfVectorizer]]:
        views = [
            (
                "words",
                TfidfVectorizer(
                    tokenizer=tokenize,
                    token_pattern=None,
                    lowercase=False,  # tokenize() lower-cases
                    ngram_range=(1, self.ngram_max),
                    sublinear_tf=True,
                ),
            )
        ]
        if self.char_ngrams:
            views.append(
                ("chars", TfidfVectorizer(analyzer="char_wb", ngram_range=(2, 5), min_df=2, sublinear_tf=True))
            )
        return views

    def predict_proba(self, texts: Sequence[str]) -> np.ndarray:
        if self.model is None:
            raise RuntimeError("pipeline is not fitted")
        proba = self.model.predict_proba(list(texts))
        # classes_ are label indices; reorder defensively in case a class was absent in training
        out = np.zeros((len(texts), len(LABELS)))
        for col, cls in enumerate(self.model.classes_):
            out[:, int(cls)] = proba[:, col]
        return out

    def params(self) -> dict[str, Any]:
        return {
            "C": self.C,
            "word_ngram_range": [1, self.ngram_max],
            "char_wb_ngram_range": [2, 5] if self.char_ngrams else None,
            "sublinear_tf": True,
            "tokenizer": "nltk.wordpunct_tokenize, lower-cased",
            "estimator": "sklearn.LogisticRegression(lbfgs)",
        }

    def save(self, path: str) -> None:
        joblib.dump(
            {"model": self.model, "params": [self.C, self.ngram_max, self.char_ngrams, self.seed]},
            Path(path) / _FILE,
        )

    @classmethod
    def load(cls, path: str, device: str | None = None) -> TfidfLogRegPipeline:
        blob = joblib.load(Path(path) / _FILE)
        pipe = cls(*blob["params"])
        pipe.model = blob["model"]
        return pipe
