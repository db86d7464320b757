"""The sentiment task's public contract: request and response models.

Every field has a description and an example, so Swagger UI's "Try it out" works with the defaults.
Limits come from serving.yaml (``limits:``) and are enforced before any model runs; texts arrive at the
handlers normalised (bundle/contract.py).
"""

from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, Field

from bundle import samples
from bundle.contract import MAX_BATCH_TEXTS, MAX_TEXT_CHARS, Answered, ModelSelection, Strict, Text, Texts

Label = Literal["negative", "positive"]


class SentimentRequest(ModelSelection):
    text: Text = Field(
        description=f"The text to classify: 1 to {MAX_TEXT_CHARS} characters, not only whitespace.",
        examples=[samples.POSITIVE],
    )


class BatchRequest(ModelSelection):
    texts: Texts = Field(examples=[samples.TEXTS])


class Prediction(BaseModel):
    label: Label = Field(description="The most probable class.", examples=["positive"])
    probabilities: dict[Label, float] = Field(
        description="Probability of each class; they sum to 1.",
        examples=[{"negative": 0.08, "positive": 0.92}],
    )


class SentimentResponse(Prediction, Answered):
    pass


class BatchResponse(Answered):
    predictions: list[Prediction] = Field(
        description=f"One prediction per input text (at most {MAX_BATCH_TEXTS}), in input order."
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
