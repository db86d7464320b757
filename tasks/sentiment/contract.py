"""The sentiment task's public contract: request and response models.

Every field has a description and an example, so Swagger UI's "Try it out" works with the defaults.
Limits come from serving.yaml (``limits:``) and are enforced before any model runs; texts arrive at the
handlers normalised (bundle/contract.py).
"""

from __future__ import annotations

from typing import Any, Literal

from pydantic import BaseModel, Field

from bundle import samples
from bundle.contract import MAX_BATCH_TEXTS, MAX_TEXT_CHARS, Answered, ModelSelection, Strict, Text, Texts

Label = Literal["negative", "positive"]


def _lang() -> Any:
    return Field(
        default="en",
        min_length=2,
        max_length=8,
        description="Language of the text(s). Other than en, the text is first translated to English by the "
        "translation task (see /models for the pairs served), then classified: an inference graph.",
        examples=["en"],
    )


class SentimentRequest(ModelSelection):
    text: Text = Field(
        description=f"The text to classify: 1 to {MAX_TEXT_CHARS} characters, not only whitespace.",
        examples=[samples.POSITIVE],
    )
    lang: str = _lang()


class BatchRequest(ModelSelection):
    texts: Texts = Field(examples=[samples.TEXTS])
    lang: str = _lang()


class Translated(BaseModel):
    translation_model: str | None = Field(
        default=None, description="With lang other than en: the model that translated the text(s) to English."
    )


class Prediction(BaseModel):
    label: Label = Field(description="The most probable class.", examples=["positive"])
    probabilities: dict[Label, float] = Field(
        description="Probability of each class; they sum to 1.",
        examples=[{"negative": 0.08, "positive": 0.92}],
    )


class SentimentResponse(Prediction, Answered, Translated):
    translation: str | None = Field(default=None, description="With lang other than en: the English text classified.")


class BatchResponse(Answered, Translated):
    predictions: list[Prediction] = Field(
        description=f"One prediction per input text (at most {MAX_BATCH_TEXTS}), in input order."
    )
    translations: list[str] = Field(
        default_factory=list,
        description="With lang other than en: the English texts classified, in input order; else empty.",
    )


class EnsembleRequest(Strict):
    text: Text = Field(description=f"The text to classify: 1 to {MAX_TEXT_CHARS} characters.", examples=[samples.MIXED])


class EnsembleMember(Prediction):
    family: str = Field(examples=["transformer"])
    model: str = Field(examples=["sentiment_transformer:abc"])
    weight: float = Field(description="Normalised weight of this member.", examples=[0.5])


class EnsembleResponse(Prediction):
    members: list[EnsembleMember] = Field(description="Each member's own answer, computed concurrently.")
    elapsed_ms: float = Field(examples=[25.0])
