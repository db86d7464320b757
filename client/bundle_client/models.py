"""The answers of the model bundle's API, as the client's own pydantic models.

These mirror the response models of the service contract (``bundle/contract.py`` and
``tasks/*/contract.py`` in the service repository, version :data:`bundle_client.CONTRACT_VERSION`).
They are copies on purpose: the client must not import server code. Fields the server adds later are
ignored, so a newer server does not break an older client; a field the client needs and the server
drops fails loudly as :class:`~bundle_client.UnexpectedResponseError`.
"""

from __future__ import annotations

from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field

Label = Literal["negative", "positive"]


class _Answer(BaseModel):
    model_config = ConfigDict(extra="ignore", frozen=True)


class Prediction(_Answer):
    """One text's answer: the most probable class and the probability of each class."""

    label: Label
    probabilities: dict[Label, float] = Field(description="Probability of each class; they sum to 1.")


class _Routed(_Answer):
    """Who answered a sentiment request, and why that model."""

    model: str = Field(description="The model that answered, as name:version.")
    family: str = Field(description="The model family that answered, e.g. logreg.")
    arm: str = Field(description="The routing arm that answered (serving.yaml routing).")
    policy: str = Field(description="How the model was chosen: explicit (the request named it), single, ab, canary.")
    degraded: bool = Field(
        default=False, description="The routed model was overloaded and the task's cheaper model answered (0.4)."
    )
    elapsed_ms: float = Field(description="Time spent in the service, in milliseconds.")

    @property
    def version(self) -> str:
        """The store version of the model that answered (the part of ``model`` after the colon)."""
        return self.model.partition(":")[2]


class _Translated(_Answer):
    translation_model: str | None = Field(
        default=None, description="With lang other than en: the model that translated to English (servers from 0.2)."
    )


class SentimentResult(Prediction, _Routed, _Translated):
    """Answer of ``POST /sentiment``."""

    translation: str | None = Field(default=None, description="With lang other than en: the English text classified.")


class BatchResult(_Routed, _Translated):
    """Answer of ``POST /sentiment/batch``: one prediction per input text, in input order."""

    predictions: list[Prediction]
    translations: list[str] = Field(
        default_factory=list, description="With lang other than en: the English texts classified; else empty."
    )

    @property
    def labels(self) -> list[Label]:
        return [p.label for p in self.predictions]


class EnsembleMember(Prediction):
    """One member's own answer inside an ensemble answer."""

    family: str
    model: str
    weight: float = Field(description="Normalised weight of this member.")


class EnsembleResult(Prediction):
    """Answer of ``POST /sentiment/ensemble``: the weighted average of every member's probabilities."""

    members: list[EnsembleMember]
    elapsed_ms: float


class EmbeddingResult(_Answer):
    """Answer of ``POST /embed``: one unit-length vector per input text, in input order."""

    embeddings: list[list[float]]
    dim: int = Field(description="Length of each vector.")
    model: str = Field(description="The encoder that answered, as name:version.")
    family: str | None = Field(default=None, description="The encoder's name in /models (servers from 0.2).")
    arm: str | None = Field(default=None, description="The routing arm that answered (servers from 0.2).")
    policy: str | None = Field(default=None, description="How the encoder was chosen (servers from 0.2).")
    degraded: bool = Field(default=False, description="Answered by a cheaper model under overload (0.4).")
    elapsed_ms: float


class TaskResult(BaseModel):
    """The answer of any task's endpoint, for tasks this client has no typed method for: the fields the
    server sent are attributes (``result.model``) and items (``result["model"]``)."""

    model_config = ConfigDict(extra="allow", frozen=True)

    def __getitem__(self, name: str) -> Any:
        return getattr(self, name)

    def fields(self) -> dict[str, Any]:
        return self.model_dump()


class ModelInfo(_Answer):
    """One served model with what its training recorded."""

    family: str = Field(description="The model's name in requests (``model``) and in serving.yaml.")
    task: str | None = Field(default=None, description="The task it serves (servers from 0.2).")
    name: str
    version: str
    default: bool = Field(description="Answers requests of this family that name no version.")
    runner: str
    pipeline: str
    labels: dict[str, str] = Field(default_factory=dict, description="The store model's labels (servers from 0.2).")
    created_at: str
    gate_passed: bool | None = Field(default=None, description="Whether the model passed its accuracy gate.")
    metrics: dict[str, Any]
    evaluation: dict[str, Any] | None = Field(
        default=None, description="Accuracy [95% CI] and ECE per domain's test split (from newer servers; None before)."
    )
    params: dict[str, Any]
    data_sha256: str | None = None
    runtime: str | None = Field(
        default=None, description="How the model runs and why, e.g. 'onnx_int8: ...' (servers from 0.5; None before)."
    )

    @property
    def tag(self) -> str:
        return f"{self.name}:{self.version}"


class ModelsListing(_Answer):
    """Answer of ``POST /models``."""

    default_family: str = Field(description="The sentiment task's default model.")
    models: list[ModelInfo]
    tasks: dict[str, Any] = Field(
        default_factory=dict, description="Every served task: default model, routes, routing (servers from 0.2)."
    )
    routing: dict[str, Any] | None = Field(default=None, description="The sentiment task's traffic policy, if any.")

    def of_task(self, task: str) -> list[ModelInfo]:
        """The models serving ``task``."""
        return [m for m in self.models if m.task == task]

    @property
    def families(self) -> list[str]:
        """The model families served, each once, in the server's order."""
        return list(dict.fromkeys(m.family for m in self.models))

    def default(self, family: str | None = None) -> ModelInfo:
        """The model that answers requests naming ``family`` (the default family if None) and no version."""
        family = family or self.default_family
        for info in self.models:
            if info.family == family and info.default:
                return info
        raise KeyError(f"no default model for family {family!r}; families served: {', '.join(self.families)}")


class TranslationResult(_Routed):
    """Answer of ``POST /translate``: one translation per input text, in input order."""

    translations: list[str]
    source: str
    target: str


class TranscriptionResult(_Routed):
    """Answer of ``POST /transcribe``: what was said, in which language (0.4)."""

    text: str = Field(description="What was said (empty for silence).")
    language: str = Field(description="The spoken language, given or detected (ISO 639-1).")
    duration_s: float
    task: str = Field(description="transcribe, or translate (the text is then English).")
    source_sample_rate: int


class SpeechSentimentResult(Prediction):
    """Answer of ``POST /sentiment/speech``: a spoken review's transcript and its sentiment (0.4)."""

    text: str
    language: str
    duration_s: float
    english: str = Field(description="The English text classified.")
    models: dict[str, str] = Field(description="Every model that answered, by step.")
    elapsed_ms: float


class Note(_Answer):
    onset_s: float
    offset_s: float
    pitch_midi: int
    pitch_name: str
    confidence: float


class NotesResult(_Routed):
    """Answer of ``POST /music/notes``: the notes heard, by onset (0.4)."""

    notes: list[Note]
    duration_s: float
    source_sample_rate: int
    midi_base64: str | None = None

    @property
    def midi(self) -> bytes | None:
        """The standard MIDI file, when it was asked for (``midi=True``)."""
        import base64

        return base64.b64decode(self.midi_base64) if self.midi_base64 else None
