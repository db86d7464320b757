"""The embedding task's public contract."""

from __future__ import annotations

from pydantic import Field

from bundle import samples
from bundle.contract import Answered, ModelSelection, Texts


class EmbedRequest(ModelSelection):
    """Texts longer than the encoder's token limit are truncated, not rejected."""

    texts: Texts = Field(examples=[samples.TEXTS])


class EmbedResponse(Answered):
    embeddings: list[list[float]] = Field(description="One unit-length vector per input text, in input order.")
    dim: int = Field(description="Length of each vector.", examples=[384])
