"""The contract every sentiment pipeline fulfils."""

from __future__ import annotations

import abc
from collections.abc import Sequence
from typing import Any, ClassVar

import numpy as np

# Column order of every probability matrix in the project.
LABELS: tuple[str, ...] = ("negative", "positive")


class SentimentPipeline(abc.ABC):
    kind: ClassVar[str]
    # whether ``load`` takes a ``runtime`` (pipelines with a transformer encoder: tasks/embedding/runtimes.py)
    takes_runtime: ClassVar[bool] = False

    @abc.abstractmethod
    def fit(self, texts: Sequence[str], labels: Sequence[str]) -> SentimentPipeline: ...

    @abc.abstractmethod
    def predict_proba(self, texts: Sequence[str]) -> np.ndarray:
        """Return an array of shape (len(texts), len(LABELS)); rows sum to 1."""

    @abc.abstractmethod
    def params(self) -> dict[str, Any]:
        """Hyper-parameters, recorded in the model's metadata."""

    @abc.abstractmethod
    def save(self, path: str) -> None: ...

    @classmethod
    @abc.abstractmethod
    def load(cls, path: str, device: str | None = None) -> SentimentPipeline: ...

    def predict(self, texts: Sequence[str]) -> list[str]:
        return [LABELS[i] for i in self.predict_proba(texts).argmax(axis=1)]
