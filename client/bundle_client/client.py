"""The synchronous and asynchronous clients. Both share endpoints, error mapping and the retry policy."""

from __future__ import annotations

import asyncio
import email.utils
import logging
import os
import random
import time
from collections.abc import Sequence
from dataclasses import dataclass
from types import TracebackType
from typing import Any, TypeVar

import httpx
from pydantic import ValidationError

from . import endpoints
from ._version import CONTRACT_VERSION, __version__
from .endpoints import AnswerT, Call
from .errors import BundleAPIError, UnavailableError, UnexpectedResponseError, error_class, parse_error_body
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

logger = logging.getLogger("bundle_client")

URL_ENV = "BUNDLE_API_URL"
TIMEOUT_ENV = "BUNDLE_API_TIMEOUT"
# The names before the service served several tasks; read when the new ones are unset.
LEGACY_URL_ENV = "SENTIMENT_API_URL"
LEGACY_TIMEOUT_ENV = "SENTIMENT_API_TIMEOUT"
DEFAULT_BASE_URL = "http://localhost:3000"
# A little longer than the service's own request timeout (traffic.timeout: 30 s in configuration.yaml),
# so that a slow request ends with the server's 504 rather than a client-side cut.
DEFAULT_TIMEOUT = 35.0
DEFAULT_MAX_RETRIES = 3
DEFAULT_BACKOFF_BASE = 0.25
DEFAULT_BACKOFF_MAX = 10.0

# Every call is a prediction or a listing: idempotent, so repeating one after a failure is safe.
RETRY_STATUSES = frozenset({429, 502, 503, 504})
RETRY_TRANSPORT_ERRORS: tuple[type[httpx.TransportError], ...] = (
    httpx.TimeoutException,  # connect, read, write and pool timeouts
    httpx.NetworkError,  # connection refused or reset, broken pipe
    httpx.RemoteProtocolError,  # server closed the connection without an answer
    httpx.ProxyError,
)

ClientT = TypeVar("ClientT", bound="_ClientBase")


@dataclass(frozen=True)
class RetryPolicy:
    """Bounded retries with exponential backoff and jitter.

    Retry ``n`` (0-based) waits a random time between half and all of ``min(backoff_max, backoff_base * 2**n)``
    ("equal jitter": clients that failed together spread out, and the wait still grows). When the server
    sends ``Retry-After`` the client waits at least that long; if it asks for more than ``backoff_max``,
    the client gives up at once and the error's ``retry_after`` says when to come back.
    """

    max_retries: int = DEFAULT_MAX_RETRIES
    backoff_base: float = DEFAULT_BACKOFF_BASE
    backoff_max: float = DEFAULT_BACKOFF_MAX

    def __post_init__(self) -> None:
        if self.max_retries < 0:
            raise ValueError(f"max_retries must be 0 or more, got {self.max_retries}")
        if self.backoff_base <= 0 or self.backoff_max < self.backoff_base:
            raise ValueError(
                f"need 0 < backoff_base <= backoff_max, got backoff_base={self.backoff_base}, "
                f"backoff_max={self.backoff_max}"
            )

    def backoff(self, retry: int, rng: random.Random) -> float:
        ceiling = min(self.backoff_max, self.backoff_base * 2.0**retry)
        return ceiling * (0.5 + 0.5 * rng.random())

    def delay(self, error: BundleAPIError, retryable: bool, rng: random.Random) -> float | None:
        """Seconds to wait before the next attempt, or None to give up and raise ``error``."""
        retries_done = error.attempts - 1
        if not retryable or retries_done >= self.max_retries:
            return None
        wait = self.backoff(retries_done, rng)
        if error.retry_after is not None:
            if error.retry_after > self.backoff_max:
                return None
            wait = max(wait, error.retry_after)
        return wait


def parse_retry_after(value: str | None) -> float | None:
    """``Retry-After`` in seconds, from either of its forms (delta-seconds or an HTTP date)."""
    if not value:
        return None
    try:
        return max(0.0, float(value))
    except ValueError:
        pass
    try:
        when = email.utils.parsedate_to_datetime(value)
    except (TypeError, ValueError):
        return None
    return max(0.0, when.timestamp() - time.time())


def _payload(call: Call[Any]) -> dict[str, Any]:
    """httpx's arguments for a call's body: JSON, or form fields and files (multipart) for uploads."""
    return {"data": call.body, "files": call.files} if call.files else {"json": call.body}


def _check_base_url(base_url: str) -> str:
    url = base_url.strip().rstrip("/")
    if not url.startswith(("http://", "https://")):
        raise ValueError(f"base_url must start with http:// or https://, got {base_url!r}")
    return url


def _timeout_from_env() -> float:
    raw = (os.environ.get(TIMEOUT_ENV) or os.environ.get(LEGACY_TIMEOUT_ENV) or "").strip()
    if not raw:
        return DEFAULT_TIMEOUT
    try:
        seconds = float(raw)
    except ValueError:
        seconds = -1.0
    if not seconds > 0:
        raise ValueError(f"{TIMEOUT_ENV} must be a positive number of seconds, got {raw!r}")
    return seconds


class _ClientBase:
    """Configuration, URL building, error mapping and retry decisions; no I/O."""

    def __init__(
        self,
        base_url: str,
        timeout: float | httpx.Timeout,
        max_retries: int,
        backoff_base: float,
        backoff_max: float,
    ) -> None:
        self.base_url = _check_base_url(base_url)
        self.timeout = timeout if isinstance(timeout, httpx.Timeout) else httpx.Timeout(timeout)
        self.retry_policy = RetryPolicy(max_retries, backoff_base, backoff_max)
        self._rng = random.Random()
        self._headers = {"user-agent": f"model-bundle-client/{__version__}", "accept": "application/json"}

    @classmethod
    def from_env(
        cls: type[ClientT],
        *,
        max_retries: int = DEFAULT_MAX_RETRIES,
        backoff_base: float = DEFAULT_BACKOFF_BASE,
        backoff_max: float = DEFAULT_BACKOFF_MAX,
    ) -> ClientT:
        """A client for ``$BUNDLE_API_URL`` (default http://localhost:3000), timeout ``$BUNDLE_API_TIMEOUT``."""
        return cls(
            (os.environ.get(URL_ENV) or os.environ.get(LEGACY_URL_ENV) or "").strip() or DEFAULT_BASE_URL,
            timeout=_timeout_from_env(),
            max_retries=max_retries,
            backoff_base=backoff_base,
            backoff_max=backoff_max,
        )

    def __repr__(self) -> str:
        return f"{type(self).__name__}({self.base_url!r})"

    def _url(self, path: str) -> str:
        return self.base_url + path

    def _parse(self, call: Call[AnswerT], url: str, response: httpx.Response) -> AnswerT:
        try:
            return call.answer.model_validate_json(response.content)
        except ValidationError as exc:
            problems = "; ".join(f"{'.'.join(map(str, e['loc'])) or 'body'}: {e['msg']}" for e in exc.errors()[:5])
            raise UnexpectedResponseError(
                f"the answer does not match sentiment API contract {CONTRACT_VERSION} ({problems}); "
                "is base_url the sentiment service?",
                status=response.status_code,
                method=call.method,
                url=url,
            ) from None

    def _status_error(self, call: Call[AnswerT], url: str, response: httpx.Response, attempt: int) -> BundleAPIError:
        message, detail = parse_error_body(response)
        return error_class(response.status_code)(
            message,
            status=response.status_code,
            detail=detail,
            attempts=attempt,
            retry_after=parse_retry_after(response.headers.get("retry-after")),
            method=call.method,
            url=url,
        )

    def _transport_error(
        self, call: Call[AnswerT], url: str, exc: httpx.TransportError, attempt: int
    ) -> UnavailableError:
        error = UnavailableError(
            f"{type(exc).__name__}: {str(exc) or 'no answer'}", attempts=attempt, method=call.method, url=url
        )
        error.__cause__ = exc
        return error

    def _next_delay(self, error: BundleAPIError, cause: BaseException | None) -> float | None:
        retryable = isinstance(cause, RETRY_TRANSPORT_ERRORS) if cause is not None else error.status in RETRY_STATUSES
        delay = self.retry_policy.delay(error, retryable, self._rng)
        if delay is not None:
            logger.info(
                "%s %s failed (%s); retry %d of %d in %.3f s",
                error.method,
                error.url,
                error.status or error.message,
                error.attempts,
                self.retry_policy.max_retries,
                delay,
                extra={"retry_delay": delay, "retry_number": error.attempts, "status": error.status},
            )
        return delay


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
