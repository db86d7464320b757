"""The API's endpoints as data: path, body and answer model of each call, shared by both clients.

Adding an endpoint is one function here that returns a :class:`Call`, plus a one-line method on each
client (``return self._send(endpoints.embed(texts))``); :func:`embed` below is a complete example.
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Generic, TypeVar, Union

from pydantic import BaseModel

from .models import (
    BatchResult,
    EmbeddingResult,
    EnsembleResult,
    ModelsListing,
    NotesResult,
    SentimentResult,
    SpeechSentimentResult,
    TaskResult,
    TranscriptionResult,
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
    # uploads: field -> (file name, bytes, content type); the body then goes as form fields (multipart)
    files: dict[str, tuple[str, bytes, str]] = field(default_factory=dict)


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


# A recording: a path to a file, or its bytes.
Audio = Union[str, "os.PathLike[str]", bytes]


def _audio_file(audio: Audio) -> tuple[str, bytes, str]:
    if isinstance(audio, bytes):
        return ("recording", audio, "application/octet-stream")  # the server finds the format itself
    path = Path(audio)
    return (path.name, path.read_bytes(), "application/octet-stream")


def _form(**fields: Any) -> dict[str, Any]:
    """Form fields as the server parses them: JSON scalars (true, 0.5), strings as they are."""
    return {k: (str(v).lower() if isinstance(v, bool) else str(v)) for k, v in _body(**fields).items()}


def transcribe(
    audio: Audio,
    task: str | None = None,
    language: str | None = None,
    model: str | None = None,
    version: str | None = None,
    user: str | None = None,
) -> Call[TranscriptionResult]:
    body = _form(task=task, language=language, model=model, version=version, user=user)
    return Call("/transcribe", body, TranscriptionResult, files={"audio": _audio_file(audio)})


def speech_sentiment(
    audio: Audio,
    language: str | None = None,
    model: str | None = None,
    version: str | None = None,
    user: str | None = None,
    sentiment_model: str | None = None,
) -> Call[SpeechSentimentResult]:
    body = _form(language=language, model=model, version=version, user=user, sentiment_model=sentiment_model)
    return Call("/sentiment/speech", body, SpeechSentimentResult, files={"audio": _audio_file(audio)})


def music_notes(
    audio: Audio,
    onset_threshold: float | None = None,
    frame_threshold: float | None = None,
    min_note_ms: float | None = None,
    midi: bool | None = None,
    model: str | None = None,
    version: str | None = None,
    user: str | None = None,
) -> Call[NotesResult]:
    body = _form(
        onset_threshold=onset_threshold,
        frame_threshold=frame_threshold,
        min_note_ms=min_note_ms,
        midi=midi,
        model=model,
        version=version,
        user=user,
    )
    return Call("/music/notes", body, NotesResult, files={"audio": _audio_file(audio)})


def task(path: str, body: dict[str, Any]) -> Call[TaskResult]:
    """Any task's endpoint by its path (see ``models().tasks``), with the body its contract describes."""
    if not path.startswith("/"):
        raise ValueError(f"path must start with '/', got {path!r}")
    return Call(path, dict(body), TaskResult)


def models() -> Call[ModelsListing]:
    return Call("/models", {}, ModelsListing)
