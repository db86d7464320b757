"""The internal contract between the entry service and the runners (not the public API)."""

from __future__ import annotations

from typing import Any

from pydantic import BaseModel

# Set by ``make serve`` while it trains slow models in the background: runners start without a missing
# ``latest`` model and load it when it is saved (runners/host.py); without it a missing model stops start-up.
PENDING_ENV = "BUNDLE_MODELS_PENDING"


class ModelInput(BaseModel):
    """One input for one model. A batch may mix models, even tasks; the runner groups by ``model_tag``."""

    model_tag: str  # resolved "name:version"
    data: Any  # what the task's predictor takes for one input (a text, for the text tasks)


class LoadedModel(BaseModel):
    family: str  # the model's name in serving.yaml and in requests
    task: str
    tag: str  # resolved "name:version"
    requested: str  # as configured, e.g. "sentiment_nb:latest"
    default: bool  # answers requests that name no version
    runner: str
    pipeline: str
    created_at: str
    labels: dict[str, str]
    metadata: dict[str, Any]
    runtime: str = ""  # how it runs, for models with a choice (tasks/embedding/runtimes.py); "" otherwise

    @property
    def name(self) -> str:
        return self.tag.split(":", 1)[0]

    @property
    def version(self) -> str:
        return self.tag.split(":", 1)[1]
