"""Featurisation of the classic sentiment models: lower-cased tokens and Snowball stems.

Nothing here needs an NLTK data download: ``wordpunct_tokenize`` is a regular expression and the
Snowball stemmer's rules are compiled into NLTK itself.
"""

from __future__ import annotations

from functools import lru_cache

from nltk.stem.snowball import SnowballStemmer
from nltk.tokenize import wordpunct_tokenize

_STEMMER = SnowballStemmer("english")


def tokenize(text: str) -> list[str]:
    """Lower-cased word and punctuation tokens."""
    return wordpunct_tokenize(text.lower())


@lru_cache(maxsize=200_000)
def stem(token: str) -> str:
    return _STEMMER.stem(token)


def stems(text: str) -> list[str]:
    return [stem(tok) for tok in tokenize(text)]
