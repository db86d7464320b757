"""Typed Python client for the model-bundle HTTP API.

    from bundle_client import BundleClient

    with BundleClient("http://localhost:3000") as client:
        result = client.sentiment("A gorgeous, witty, seductive movie.")
        print(result.label, result.probabilities["positive"], result.model)
        vectors = client.embed(["a first text", "a second one"]).embeddings
        answer = client.call("/sentiment/batch", {"texts": ["any task's endpoint"]})  # untyped, any task

:class:`BundleClient` and :class:`AsyncBundleClient` return pydantic models (``models.py``, the
client's own copies of the service contract), raise one typed error per kind of failure (``errors.py``),
and retry what is safe to retry: 429 and 503 (honouring ``Retry-After``), 502, 504, refused or reset
connections and timeouts, with bounded exponential backoff and jitter. Every call is an idempotent
prediction or listing, so a repeat never does anything twice.

Why httpx and not ``bentoml.SyncHTTPClient``/``AsyncHTTPClient``: the BentoML clients need the whole
``bentoml`` package (and its server dependencies) in the caller's environment; they build their methods
at run time from the server's ``/schema.json`` and return plain dicts, so a type checker sees nothing;
they wait for ``/readyz`` and fetch the schema in the constructor, so creating one fails when the server
is down; they map only 400, 404, 422 and 503 to exception classes (429, 504 and connection errors get
none) with the raw body as the message; and they do not retry. httpx is what those clients are built
on anyway: one small dependency with the same API for sync and asyncio, distinct exception classes for
connect errors, resets and timeouts (which is what a retry policy needs to tell apart), and a pluggable
transport for tests. The whole client is therefore two dependencies: httpx and pydantic.
"""

from ._version import CONTRACT_VERSION, __version__
from .client import (
    DEFAULT_BASE_URL,
    TIMEOUT_ENV,
    URL_ENV,
    AsyncBundleClient,
    BundleClient,
    RetryPolicy,
)
from .errors import (
    BadRequestError,
    BundleAPIError,
    ErrorDetail,
    NotFoundError,
    OverloadedError,
    ServerError,
    UnavailableError,
    UnexpectedResponseError,
)
from .models import (
    BatchResult,
    EmbeddingResult,
    EnsembleMember,
    EnsembleResult,
    Label,
    ModelInfo,
    ModelsListing,
    Note,
    NotesResult,
    Prediction,
    SentimentResult,
    SpeechSentimentResult,
    TaskResult,
    TranscriptionResult,
    TranslationResult,
)

# The names of 0.1 (the package was sentiment_client then; it still imports, see CHANGELOG.md).
SentimentClient = BundleClient
AsyncSentimentClient = AsyncBundleClient
SentimentAPIError = BundleAPIError

__all__ = [
    "CONTRACT_VERSION",
    "DEFAULT_BASE_URL",
    "TIMEOUT_ENV",
    "URL_ENV",
    "AsyncBundleClient",
    "BadRequestError",
    "BatchResult",
    "EmbeddingResult",
    "EnsembleMember",
    "EnsembleResult",
    "ErrorDetail",
    "Label",
    "ModelInfo",
    "ModelsListing",
    "NotFoundError",
    "OverloadedError",
    "Prediction",
    "RetryPolicy",
    "BundleAPIError",
    "BundleClient",
    "SentimentResult",
    "SentimentAPIError",
    "SentimentClient",
    "AsyncSentimentClient",
    "TaskResult",
    "TranslationResult",
    "TranscriptionResult",
    "SpeechSentimentResult",
    "Note",
    "NotesResult",
    "ServerError",
    "UnavailableError",
    "UnexpectedResponseError",
    "__version__",
]
