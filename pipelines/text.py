"""Text handling: request normalisation (entry service) and featurisation (the classic models).

Nothing here needs an NLTK data download: ``wordpunct_tokenize`` is a regular expression and the
Snowball stemmer's rules are compiled into NLTK itself.
"""

from __future__ import annotations

import re
import unicodedata
from functools import lru_cache

from nltk.stem.snowball import SnowballStemmer
from nltk.tokenize import wordpunct_tokenize

_WHITESPACE = re.compile(r"\s+")
_CONTROL = {"Cc", "Cf", "Cs", "Co", "Cn"}
_STEMMER = SnowballStemmer("english")


def normalize_text(text: str) -> str:
    """Canonical form of a request text: NFC, control characters dropped, whitespace collapsed."""
    text = unicodedata.normalize("NFC", text)
    text = "".join(
        " " if ch in "\t\n\r" else ch for ch in text if ch in "\t\n\r" or unicodedata.category(ch) not in _CONTROL
    )
    return _WHITESPACE.sub(" ", text).strip()


def tokenize(text: str) -> list[str]:
    """Lower-cased word and punctuation tokens."""
    return wordpunct_tokenize(text.lower())


@lru_cache(maxsize=200_000)
def stem(token: str) -> str:
    return _STEMMER.stem(token)


def stems(text: str) -> list[str]:
    return [stem(tok) for tok in tokenize(text)]
