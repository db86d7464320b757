"""The API's endpoints as data: path, body and answer model of each call, shared by both clients.

Adding an endpoint is one function here that returns a :class:`Call`, plus a one-line method on each
client (``return self._send(endpoints.embed(texts))``); :func:`embed` below is a complete example.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any, Generic, TypeVar

from pydantic import BaseModel

from .models import (
    BatchResult,
    EmbeddingResult,
    EnsembleResult,
    ModelsListing,
    SentimentResult,
    TaskResult,
    TranslationResult,
)

AnswerT = TypeVar("AnswerT", bound=BaseModel)


@dataclass(frozen=True)
class Call(Generic[AnswerT]):
    """One request to the API and the model its successful answer parses into."""

    path: str
    body: dict[str, Any]
    answer: type[AnswerT]
    method: str = "POST"


def _body(**fields: Any) -> dict[str, Any]:
    """The JSON body, without the optional fields left as None (the server then uses its defaults)."""
    return {name: value for name, value in fields.items() if value is not None}


def _text_list(texts: Sequence[str]) -> list[str]:
    if isinstance(texts, str):  # a str is a Sequence[str] too; sending it would classify its characters
        raise TypeError("texts must be a list of strings, not one string; use sentiment() for a single text")
    return list(texts)


def sentiment(
    text: str, model: str | None = None, version: str | None = None, user: str | None = None, lang: str | None = None
) -> Call[SentimentResult]:
    return Call("/sentiment", _body(text=text, model=model, version=version, user=user, lang=lang), SentimentResult)


def sentiment_batch(
    texts: Sequence[str],
    model: str | None = None,
    version: str | None = None,
    user: str | None = None,
    lang: str | None = None,
) -> Call[BatchResult]:
    body = _body(texts=_text_list(texts), model=model, version=version, user=user, lang=lang)
    return Call("/sentiment/batch", body, BatchResult)


def sentiment_ensemble(text: str) -> Call[EnsembleResult]:
    return Call("/sentiment/ensemble", {"text": text}, EnsembleResult)


def embed(
    texts: Sequence[str], model: str | None = None, version: str | None = None, user: str | None = None
) -> Call[EmbeddingResult]:
    return Call("/embed", _body(texts=_text_list(texts), model=model, version=version, user=user), EmbeddingResult)


def translate(
    texts: Sequence[str],
    source: str,
    target: str,
    model: str | None = None,
    version: str | None = None,
    user: str | None = None,
) -> Call[TranslationResult]:
    body = _body(texts=_text_list(texts), source=source, target=target, model=model, version=version, user=user)
    return Call("/translate", body, TranslationResult)


def task(path: str, body: dict[str, Any]) -> Call[TaskResult]:
    """Any task's endpoint by its path (see ``models().tasks``), with the body its contract describes."""
    if not path.startswith("/"):
        raise ValueError(f"path must start with '/', got {path!r}")
    return Call(path, dict(body), TaskResult)


def models() -> Call[ModelsListing]:
    return Call("/models", {}, ModelsListing)
