"""The synchronous and asynchronous clients: the same methods, one over ``httpx.Client``, one over
``httpx.AsyncClient``. Configuration, error mapping and the retry policy are shared (``base.py``, ``retry.py``)."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Sequence
from types import TracebackType
from typing import Any

import httpx

from . import endpoints
from .base import DEFAULT_BASE_URL, DEFAULT_TIMEOUT, TIMEOUT_ENV, URL_ENV, _ClientBase, _payload
from .endpoints import AnswerT, Call
from .errors import BundleAPIError
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
from .retry import DEFAULT_BACKOFF_BASE, DEFAULT_BACKOFF_MAX, DEFAULT_MAX_RETRIES, RetryPolicy

__all__ = ["DEFAULT_BASE_URL", "TIMEOUT_ENV", "URL_ENV", "AsyncBundleClient", "BundleClient", "RetryPolicy"]


class BundleClient(_ClientBase):
    """Synchronous client. Use it as a context manager, or call :meth:`close` when done.

    ``http_client`` or ``transport`` replace the connection layer (tests, proxies, custom TLS); an
    ``http_client`` passed in is not closed by this client. ``timeout`` applies to every request.
    """

    def __init__(
        self,
        base_url: str = DEFAULT_BASE_URL,
        *,
        timeout: float | httpx.Timeout = DEFAULT_TIMEOUT,
        max_retries: int = DEFAULT_MAX_RETRIES,
        backoff_base: float = DEFAULT_BACKOFF_BASE,
        backoff_max: float = DEFAULT_BACKOFF_MAX,
        http_client: httpx.Client | None = None,
        transport: httpx.BaseTransport | None = None,
    ) -> None:
        super().__init__(base_url, timeout, max_retries, backoff_base, backoff_max)
        if http_client is not None and transport is not None:
            raise ValueError("pass either http_client or transport, not both")
        self._owns_http = http_client is None
        self._http = http_client or httpx.Client(transport=transport)

    # ---- the API: one call each; the request itself is described in endpoints.py ----

    def sentiment(
        self,
        text: str,
        model: str | None = None,
        version: str | None = None,
        *,
        user: str | None = None,
        lang: str | None = None,
    ) -> SentimentResult:
        """Classify one text.

        ``model`` is a family from :meth:`models` (None: the server's routing picks, by default its default
        family); ``version`` pins a served version; ``user`` keeps a caller on one arm of an A/B or canary split;
        ``lang`` other than en translates the text to English first (the answer names both models).
        """
        return self._send(endpoints.sentiment(text, model, version, user, lang))

    def sentiment_batch(
        self,
        texts: Sequence[str],
        model: str | None = None,
        version: str | None = None,
        *,
        user: str | None = None,
        lang: str | None = None,
    ) -> BatchResult:
        """Classify several texts with one model; ``predictions`` keep the input order."""
        return self._send(endpoints.sentiment_batch(texts, model, version, user, lang))

    def sentiment_ensemble(self, text: str) -> EnsembleResult:
        """Classify one text with every ensemble member (serving.yaml ``ensemble``) and their weighted average."""
        return self._send(endpoints.sentiment_ensemble(text))

    def models(self) -> ModelsListing:
        """The models being served, with their training metrics."""
        return self._send(endpoints.models())

    def embed(
        self, texts: Sequence[str], model: str | None = None, version: str | None = None, *, user: str | None = None
    ) -> EmbeddingResult:
        """Sentence embeddings: one unit-length vector per text, in input order."""
        return self._send(endpoints.embed(texts, model, version, user))

    def translate(
        self,
        texts: Sequence[str],
        source: str,
        target: str,
        model: str | None = None,
        version: str | None = None,
        *,
        user: str | None = None,
    ) -> TranslationResult:
        """Translate texts from ``source`` to ``target`` (e.g. en, pt); translations keep the input order."""
        return self._send(endpoints.translate(texts, source, target, model, version, user))

    def transcribe(
        self,
        audio: endpoints.Audio,
        task: str | None = None,
        language: str | None = None,
        model: str | None = None,
        version: str | None = None,
        *,
        user: str | None = None,
    ) -> TranscriptionResult:
        """A recording (a file path or its bytes) → its text and language; ``task="translate"`` for English."""
        return self._send(endpoints.transcribe(audio, task, language, model, version, user))

    def speech_sentiment(
        self,
        audio: endpoints.Audio,
        language: str | None = None,
        model: str | None = None,
        version: str | None = None,
        *,
        user: str | None = None,
        sentiment_model: str | None = None,
    ) -> SpeechSentimentResult:
        """A spoken review → transcript (→ English) → sentiment, naming every model that answered."""
        return self._send(endpoints.speech_sentiment(audio, language, model, version, user, sentiment_model))

    def music_notes(
        self,
        audio: endpoints.Audio,
        *,
        onset_threshold: float | None = None,
        frame_threshold: float | None = None,
        min_note_ms: float | None = None,
        midi: bool | None = None,
        model: str | None = None,
        version: str | None = None,
        user: str | None = None,
    ) -> NotesResult:
        """The notes played in a recording; ``midi=True`` adds a MIDI file (``result.midi``)."""
        return self._send(
            endpoints.music_notes(audio, onset_threshold, frame_threshold, min_note_ms, midi, model, version, user)
        )

    def call(self, path: str, body: dict[str, Any]) -> TaskResult:
        """Any task's endpoint, including tasks newer than this client, with the same errors and retries."""
        return self._send(endpoints.task(path, body))

    def ready(self) -> bool:
        """True when the service answers ``/readyz`` with 200; never raises, never retries."""
        try:
            return self._http.get(self._url("/readyz"), headers=self._headers, timeout=self.timeout).status_code == 200
        except httpx.TransportError:
            return False

    # ---- plumbing ----

    def _send(self, call: Call[AnswerT]) -> AnswerT:
        url = self._url(call.path)
        attempt = 0
        while True:
            attempt += 1
            cause: httpx.TransportError | None = None
            try:
                response = self._http.request(
                    call.method, url, headers=self._headers, timeout=self.timeout, **_payload(call)
                )
            except httpx.TransportError as exc:
                cause = exc
                error: BundleAPIError = self._transport_error(call, url, exc, attempt)
            else:
                if response.is_success:
                    return self._parse(call, url, response)
                error = self._status_error(call, url, response, attempt)
            delay = self._next_delay(error, cause)
            if delay is None:
                raise error
            time.sleep(delay)

    def close(self) -> None:
        if self._owns_http:
            self._http.close()

    def __enter__(self) -> BundleClient:
        return self

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.close()


class AsyncBundleClient(_ClientBase):
    """Asynchronous (asyncio) client with the same methods as :class:`BundleClient`, as coroutines.

    One instance is meant to be shared by many concurrent tasks: it pools connections.
    """

    def __init__(
        self,
        base_url: str = DEFAULT_BASE_URL,
        *,
        timeout: float | httpx.Timeout = DEFAULT_TIMEOUT,
        max_retries: int = DEFAULT_MAX_RETRIES,
        backoff_base: float = DEFAULT_BACKOFF_BASE,
        backoff_max: float = DEFAULT_BACKOFF_MAX,
        http_client: httpx.AsyncClient | None = None,
        transport: httpx.AsyncBaseTransport | None = None,
    ) -> None:
        super().__init__(base_url, timeout, max_retries, backoff_base, backoff_max)
        if http_client is not None and transport is not None:
            raise ValueError("pass either http_client or transport, not both")
        self._owns_http = http_client is None
        self._http = http_client or httpx.AsyncClient(transport=transport)

    async def sentiment(
        self,
        text: str,
        model: str | None = None,
        version: str | None = None,
        *,
        user: str | None = None,
        lang: str | None = None,
    ) -> SentimentResult:
        """Classify one text.

        ``model`` is a family from :meth:`models` (None: the server's routing picks, by default its default
        family); ``version`` pins a served version; ``user`` keeps a caller on one arm of an A/B or canary split;
        ``lang`` other than en translates the text to English first (the answer names both models).
        """
        return await self._send(endpoints.sentiment(text, model, version, user, lang))

    async def sentiment_batch(
        self,
        texts: Sequence[str],
        model: str | None = None,
        version: str | None = None,
        *,
        user: str | None = None,
        lang: str | None = None,
    ) -> BatchResult:
        """Classify several texts with one model; ``predictions`` keep the input order."""
        return await self._send(endpoints.sentiment_batch(texts, model, version, user, lang))

    async def sentiment_ensemble(self, text: str) -> EnsembleResult:
        """Classify one text with every ensemble member (serving.yaml ``ensemble``) and their weighted average."""
        return await self._send(endpoints.sentiment_ensemble(text))

    async def models(self) -> ModelsListing:
        """The models being served, with their training metrics."""
        return await self._send(endpoints.models())

    async def embed(
        self, texts: Sequence[str], model: str | None = None, version: str | None = None, *, user: str | None = None
    ) -> EmbeddingResult:
        """Sentence embeddings: one unit-length vector per text, in input order."""
        return await self._send(endpoints.embed(texts, model, version, user))

    async def translate(
        self,
        texts: Sequence[str],
        source: str,
        target: str,
        model: str | None = None,
        version: str | None = None,
        *,
        user: str | None = None,
    ) -> TranslationResult:
        """Translate texts from ``source`` to ``target`` (e.g. en, pt); translations keep the input order."""
        return await self._send(endpoints.translate(texts, source, target, model, version, user))

    async def transcribe(
        self,
        audio: endpoints.Audio,
        task: str | None = None,
        language: str | None = None,
        model: str | None = None,
        version: str | None = None,
        *,
        user: str | None = None,
    ) -> TranscriptionResult:
        """A recording (a file path or its bytes) → its text and language; ``task="translate"`` for English."""
        return await self._send(endpoints.transcribe(audio, task, language, model, version, user))

    async def speech_sentiment(
        self,
        audio: endpoints.Audio,
        language: str | None = None,
        model: str | None = None,
        version: str | None = None,
        *,
        user: str | None = None,
        sentiment_model: str | None = None,
    ) -> SpeechSentimentResult:
        """A spoken review → transcript (→ English) → sentiment, naming every model that answered."""
        return await self._send(endpoints.speech_sentiment(audio, language, model, version, user, sentiment_model))

    async def music_notes(
        self,
        audio: endpoints.Audio,
        *,
        onset_threshold: float | None = None,
        frame_threshold: float | None = None,
        min_note_ms: float | None = None,
        midi: bool | None = None,
        model: str | None = None,
        version: str | None = None,
        user: str | None = None,
    ) -> NotesResult:
        """The notes played in a recording; ``midi=True`` adds a MIDI file (``result.midi``)."""
        return await self._send(
            endpoints.music_notes(audio, onset_threshold, frame_threshold, min_note_ms, midi, model, version, user)
        )

    async def call(self, path: str, body: dict[str, Any]) -> TaskResult:
        """Any task's endpoint, including tasks newer than this client, with the same errors and retries."""
        return await self._send(endpoints.task(path, body))

    async def ready(self) -> bool:
        """True when the service answers ``/readyz`` with 200; never raises, never retries."""
        try:
            response = await self._http.get(self._url("/readyz"), headers=self._headers, timeout=self.timeout)
        except httpx.TransportError:
            return False
        return response.status_code == 200

    async def _send(self, call: Call[AnswerT]) -> AnswerT:
        url = self._url(call.path)
        attempt = 0
        while True:
            attempt += 1
            cause: httpx.TransportError | None = None
            try:
                response = await self._http.request(
                    call.method, url, headers=self._headers, timeout=self.timeout, **_payload(call)
                )
            except httpx.TransportError as exc:
                cause = exc
                error: BundleAPIError = self._transport_error(call, url, exc, attempt)
            else:
                if response.is_success:
                    return self._parse(call, url, response)
                error = self._status_error(call, url, response, attempt)
            delay = self._next_delay(error, cause)
            if delay is None:
                raise error
            await asyncio.sleep(delay)

    async def aclose(self) -> None:
        if self._owns_http:
            await self._http.aclose()

    async def __aenter__(self) -> AsyncBundleClient:
        return self

    async def __aexit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        await self.aclose()
