"""The internal contract between the entry service and the runners (not the public API)."""

from __future__ import annotations

from typing import Any

from pydantic import BaseModel


class TextItem(BaseModel):
    """One text for one model. A batch may mix models; the runner groups by ``model_tag``."""

    model_tag: str  # resolved "name:version"
    text: str


class ClassProbabilities(BaseModel):
    model_tag: str
    probabilities: list[float]  # in pipelines.LABELS order


class LoadedModel(BaseModel):
    family: str  # "embedding" for the sentence encoder
    tag: str  # resolved "name:version"
    requested: str  # as configured, e.g. "sentiment_nb:latest"
    default: bool  # answers requests that name no version
    pipeline: str
    created_at: str
    labels: dict[str, str]
    metadata: dict[str, Any]
