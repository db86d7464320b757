"""The public API contract: request and response models of the entry service.

Every field has a description and an example, so Swagger UI's "Try it out" works with the defaults.
Limits come from serving.yaml (``limits:``) and are enforced here, before any model runs.
"""

from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator

import samples
from pipelines.text import normalize_text
from settings import load_settings

_LIMITS = load_settings().limits
MAX_TEXT_CHARS = _LIMITS.max_text_chars
MAX_BATCH_TEXTS = _LIMITS.max_batch_texts

Label = Literal["negative", "positive"]


def check_text(text: str) -> str:
    if not normalize_text(text):
        raise ValueError("must not be empty or only whitespace")
    if len(text) > MAX_TEXT_CHARS:
        raise ValueError(f"has {len(text)} characters; the maximum is {MAX_TEXT_CHARS}")
    return text


class _Request(BaseModel):
    # Unknown fields are rejected rather than silently ignored: a typo such as "modle" must not
    # quietly route the request to the default model.
    model_config = ConfigDict(extra="forbid")

    model: str | None = Field(
        default=None,
        description="Model family to use (see /models). Omit for the default family.",
        examples=["logreg"],
    )
    version: str | None = Field(
        default=None,
        description="Exact model version from /models. Omit for the version configured as default.",
        examples=[None],
    )
    user: str | None = Field(
        default=None,
        max_length=200,
        description="Caller or session key. With an A/B or canary split, the same key always gets the same "
        "model. Ignored when the request names a model.",
        examples=[None],
    )


class SentimentRequest(_Request):
    text: str = Field(
        description=f"The text to classify: 1 to {MAX_TEXT_CHARS} characters, not only whitespace.",
        examples=[samples.POSITIVE],
    )

    @field_validator("text")
    @classmethod
    def _check_text(cls, text: str) -> str:
        return check_text(text)


class _Texts(BaseModel):
    model_config = ConfigDict(extra="forbid")

    texts: list[str] = Field(
        description=f"1 to {MAX_BATCH_TEXTS} texts, each 1 to {MAX_TEXT_CHARS} characters.",
        examples=[samples.TEXTS],
        min_length=1,
        max_length=MAX_BATCH_TEXTS,
    )

    @field_validator("texts")
    @classmethod
    def _check_texts(cls, texts: list[str]) -> list[str]:
        for i, text in enumerate(texts):
            try:
                check_text(text)
            except ValueError as exc:
                raise ValueError(f"item {i} {exc}") from None
        return texts


class BatchRequest(_Request, _Texts):
    pass


class EmbedRequest(_Texts):
    """Texts longer than the encoder's token limit are truncated, not rejected."""


class EmbedResponse(BaseModel):
    embeddings: list[list[float]] = Field(description="One unit-length vector per input text, in input order.")
    dim: int = Field(description="Length of each vector.", examples=[384])
    model: str = Field(description="The encoder that answered, as name:version.", examples=["minilm_encoder:abc"])
    elapsed_ms: float = Field(examples=[12.5])


class ModelsRequest(BaseModel):
    model_config = ConfigDict(extra="forbid")


class Prediction(BaseModel):
    label: Label = Field(description="The most probable class.", examples=["positive"])
    probabilities: dict[Label, float] = Field(
        description="Probability of each class; they sum to 1.",
        examples=[{"negative": 0.08, "positive": 0.92}],
    )


class _Answered(BaseModel):
    model: str = Field(
        description="The model that answered, as name:version.", examples=["sentiment_logreg:j46mfrxgfknroax4"]
    )
    family: str = Field(description="The model family that answered.", examples=["logreg"])
    arm: str = Field(description="The routing arm that answered (see serving.yaml routing).", examples=["logreg"])
    policy: str = Field(
        description="How the model was chosen: explicit (the request named it), single, ab, canary.",
        examples=["single"],
    )
    elapsed_ms: float = Field(description="Time spent in the service, in milliseconds.", examples=[3.2])


class SentimentResponse(Prediction, _Answered):
    pass


class BatchResponse(_Answered):
    predictions: list[Prediction] = Field(description="One prediction per input text, in input order.")


class EnsembleRequest(BaseModel):
    model_config = ConfigDict(extra="forbid")

    text: str = Field(description=f"The text to classify: 1 to {MAX_TEXT_CHARS} characters.", examples=[samples.MIXED])

    @field_validator("text")
    @classmethod
    def _check_text(cls, text: str) -> str:
        return check_text(text)


class EnsembleMember(Prediction):
    family: str = Field(examples=["transformer"])
    model: str = Field(examples=["sentiment_transformer:abc"])
    weight: float = Field(description="Normalised weight of this member.", examples=[0.5])


class EnsembleResponse(Prediction):
    members: list[EnsembleMember] = Field(description="Each member's own answer, computed concurrently.")
    elapsed_ms: float = Field(examples=[25.0])


class ModelInfo(BaseModel):
    family: str = Field(
        description="Sentiment model family, or 'embedding' for the /embed encoder.", examples=["logreg"]
    )
    name: str = Field(examples=["sentiment_logreg"])
    version: str = Field(examples=["j46mfrxgfknroax4"])
    default: bool = Field(description="Answers requests of this family that name no version.")
    runner: str = Field(examples=["cpu"])
    pipeline: str = Field(examples=["tfidf_logreg"])
    created_at: str = Field(examples=["2026-11-22T04:08:01+00:00"])
    gate_passed: bool | None = Field(default=None, description="Whether the model passed its accuracy gate.")
    metrics: dict = Field(description="Held-out and out-of-domain metrics recorded at training time.")
    params: dict = Field(description="Training parameters recorded at training time.")
    data_sha256: str | None = Field(default=None, description="Checksum of the training data.")


class ModelsResponse(BaseModel):
    default_family: str = Field(examples=["logreg"])
    models: list[ModelInfo]
    routing: dict | None = Field(default=None, description="The traffic policy from serving.yaml, if any.")


class ErrorResponse(BaseModel):
    error: str = Field(description="What went wrong, in words.", examples=["text is empty or only whitespace"])
