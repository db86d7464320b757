"""What every text task shares: one canonical form of a request text, and what a prediction record keeps
of texts.

It runs once per text, in the request model's validator, on the entry service's event loop, so it has a
fast path: plain ASCII (most traffic) needs no Unicode normalisation and no per-character category
lookup, only two regular expressions, which run in C.
"""

from __future__ import annotations

import hashlib
import re
import unicodedata
from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from bundle.settings import Monitoring

_WHITESPACE = re.compile(r"\s+")
_ASCII_CONTROL = re.compile(r"[\x00-\x08\x0b\x0c\x0e-\x1f\x7f]")  # control characters other than \t \n \r
_CONTROL = {"Cc", "Cf", "Cs", "Co", "Cn"}


def normalize_text(text: str) -> str:
    """Canonical form of a request text: NFC, control characters dropped, whitespace collapsed."""
    if text.isascii():
        return _WHITESPACE.sub(" ", _ASCII_CONTROL.sub("", text)).strip()
    text = unicodedata.normalize("NFC", text)
    text = "".join(
        " " if ch in "\t\n\r" else ch for ch in text if ch in "\t\n\r" or unicodedata.category(ch) not in _CONTROL
    )
    return _WHITESPACE.sub(" ", text).strip()


def text_fields(texts: Sequence[str], settings: Monitoring) -> dict[str, Any]:
    """A record's view of a request's texts: their lengths, and the texts themselves or a digest."""
    fields: dict[str, Any] = {"text_chars": [len(t) for t in texts], "text_words": [len(t.split()) for t in texts]}
    if settings.record_inputs == "raw":
        fields["text"] = list(texts)
    elif settings.record_inputs == "digest":
        fields["text_sha256"] = [hashlib.sha256(f"{settings.digest_salt}\x00{t}".encode()).hexdigest() for t in texts]
    return fields
