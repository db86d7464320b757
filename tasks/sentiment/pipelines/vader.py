"""VADER, the rule-based model of the paper the sentiment data comes from (Hutto & Gilbert, ICWSM 2014).

No training: a valence lexicon (7,500 rated words, emoticons and slang) and grammar rules (negation,
intensifiers, "but", capitals, punctuation). The label follows the paper's rule: positive when the
compound score is >= 0. The lexicon travels with the stored model (``vader_lexicon.txt``,
``emoji_utf8_lexicon.txt``), so a model version pins the lexicon it was measured with; the rules come
from the ``vaderSentiment`` package.

Probabilities: VADER's compound score is a squashed sum of valences, not a probability. ``fit`` learns
one temperature for the raw sum (logistic, no bias, so the decision stays the paper's rule) on
labelled texts it never otherwise learns from; ``predict_proba`` returns sigmoid(sum / temperature).
"""

from __future__ import annotations

import json
import math
import shutil
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np

from tasks.sentiment.pipelines.base import LABELS, SentimentPipeline

LEXICON_FILES = ("vader_lexicon.txt", "emoji_utf8_lexicon.txt")
_CONFIG = "vader.json"
# VADER's normaliser: compound = s / sqrt(s^2 + ALPHA) for the raw valence sum s.
ALPHA = 15.0
# A compound of exactly 0 (no sentiment word) is positive by the paper's rule; a probability of exactly
# 0.5 would make the label a coin toss, so ties lean positive by this much (invisible in 3 decimals).
TIE_MARGIN = 1e-5


def installed_lexicon_dir() -> Path:
    """The lexicon folder of the installed vaderSentiment package (the importer copies it into the store)."""
    import vaderSentiment.vaderSentiment as module

    return Path(module.__file__).resolve().parent


def raw_valence(compound: np.ndarray) -> np.ndarray:
    """Invert VADER's normaliser: the raw valence sum behind a compound score (clipped near ±1)."""
    c = np.clip(compound, -0.9999, 0.9999)
    return c * math.sqrt(ALPHA) / np.sqrt(1.0 - c * c)


class VaderPipeline(SentimentPipeline):
    kind = "vader"

    def __init__(self, lexicon_dir: str | Path | None = None, temperature: float = 1.0) -> None:
        from vaderSentiment.vaderSentiment import SentimentIntensityAnalyzer

        self.lexicon_dir = Path(lexicon_dir) if lexicon_dir else installed_lexicon_dir()
        self.temperature = temperature
        # absolute paths: the analyser joins them to its own folder, which keeps an absolute path as is
        self.analyzer = SentimentIntensityAnalyzer(
            lexicon_file=str(self.lexicon_dir / LEXICON_FILES[0]),
            emoji_lexicon=str(self.lexicon_dir / LEXICON_FILES[1]),
        )

    def scores(self, texts: Sequence[str]) -> np.ndarray:
        """VADER's four scores per text: compound, pos, neg, neu."""
        rows = [self.analyzer.polarity_scores(text) for text in texts]
        return np.array([[r["compound"], r["pos"], r["neg"], r["neu"]] for r in rows], dtype=float).reshape(-1, 4)

    def fit(self, texts: Sequence[str], labels: Sequence[str]) -> VaderPipeline:
        """Fit the temperature only (one number, by maximum likelihood); the rules and lexicon stay as published."""
        from scipy.optimize import minimize_scalar

        raw = raw_valence(self.scores(texts)[:, 0])
        y = np.array([LABELS.index(label) for label in labels], dtype=float)

        def nll(log_t: float) -> float:
            z = raw / math.exp(log_t)
            return float(np.mean(np.logaddexp(0.0, z) - y * z))

        self.temperature = float(math.exp(minimize_scalar(nll, bounds=(-5.0, 5.0), method="bounded").x))
        return self

    def predict_proba(self, texts: Sequence[str]) -> np.ndarray:
        from scipy.special import expit

        compound = self.scores(texts)[:, 0]
        positive = expit(raw_valence(compound) / self.temperature)
        positive = np.where(compound == 0.0, 0.5 + TIE_MARGIN, positive)
        return np.column_stack([1.0 - positive, positive])

    def params(self) -> dict[str, Any]:
        return {
            "rule": "positive when compound >= 0",
            "temperature": round(self.temperature, 6),
            "calibration": "sigmoid(raw valence sum / temperature), temperature fitted by maximum likelihood",
        }

    def save(self, path: str) -> None:
        folder = Path(path)
        for name in LEXICON_FILES:
            shutil.copyfile(self.lexicon_dir / name, folder / name)
        (folder / _CONFIG).write_text(json.dumps({"kind": self.kind, "temperature": self.temperature}))

    @classmethod
    def load(cls, path: str, device: str | None = None) -> VaderPipeline:
        config = json.loads((Path(path) / _CONFIG).read_text())
        return cls(lexicon_dir=path, temperature=float(config["temperature"]))
