"""Declare the configured model versions as ``BentoModel`` class attributes, load them, and answer mixed batches.

BentoML packages into a Bento exactly the models a service declares as ``BentoModel`` class attributes,
so each configured version becomes one attribute. Declaring resolves nothing; loading happens in the
runner's ``__init__``, where a missing model stops start-up with a message that says how to train it.
"""

from __future__ import annotations

import logging
import os
import re
from collections import defaultdict
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, TypeVar

import bentoml

from runners.contract import ClassProbabilities, LoadedModel, TextItem
from settings import ModelDeployment

logger = logging.getLogger(__name__)
T = TypeVar("T")

# Which command creates each store name; quoted in the start-up error when a model is missing.
TRAIN_COMMANDS = {  # kept in step with train.TRAINERS
    "sentiment_nb": "make train (or: python -m train.naive_bayes)",
    "sentiment_logreg": "make train (or: python -m train.tfidf_logreg)",
    "sentiment_transformer": "make train-transformer (or: python -m train.transformer)",
    "minilm_encoder": "make train-transformer (or: python -m train.import_minilm)",
}


class ModelMissingError(bentoml.exceptions.NotFound):
    """A configured model is not in the store. A BentoML exception, so ``bentoml serve`` prints just this."""


@dataclass(frozen=True)
class Declared:
    attribute: str
    family: str
    requested: str  # "name:version" as configured
    default: bool


def with_models(families: dict[str, ModelDeployment]) -> Callable[[type[T]], type[T]]:
    """Class decorator: one ``BentoModel`` class attribute per configured (family, version).

    Apply it *below* ``@bentoml.service`` so the attributes exist when BentoML collects the models.
    The declarations are listed in the class attribute ``declared_models``.

    Every declared model must exist in the store: the check is a metadata lookup, not a load, and it
    runs at import so that ``bentoml serve`` and ``bentoml build`` stop with a message that says which
    model is missing and how to train it (instead of BentoML's attempt to pull it from a cloud).
    """

    def decorate(cls: type[T]) -> type[T]:
        declared = []
        for family, deployment in families.items():
            for i, tag in enumerate(deployment.tags()):
                attribute = "model__" + re.sub(r"\W", "_", f"{family}__{tag}")
                setattr(cls, attribute, bentoml.models.BentoModel(tag))
                declared.append(Declared(attribute, family, tag, default=(i == 0)))
        for d in declared:
            resolve(cls, d)
        cls.declared_models = declared  # type: ignore[attr-defined]
        return cls

    return decorate


def resolve(cls: type, declared: Declared) -> bentoml.Model:
    """The stored model behind a declared attribute, or a clear error that names the fix."""
    ref: Any = cls.__dict__[declared.attribute]
    stored = ref.stored
    if stored is None:
        name = declared.requested.split(":")[0]
        how = TRAIN_COMMANDS.get(name, "train it and save it to the Bento store")
        raise ModelMissingError(
            f"model {declared.requested} (family {declared.family!r}) is not in the Bento model store "
            f"at {_store_dir()}. Train it with: {how}; or change its version in serving.yaml."
        )
    return stored


def _store_dir() -> str:
    return os.path.join(os.environ.get("BENTOML_HOME", os.path.expanduser("~/bentoml")), "models")


def describe(declared: Declared, stored: bentoml.Model) -> LoadedModel:
    info = stored.info
    return LoadedModel(
        family=declared.family,
        tag=str(stored.tag),
        requested=declared.requested,
        default=declared.default,
        pipeline=info.labels.get("pipeline", ""),
        created_at=info.creation_time.isoformat(),
        labels=dict(info.labels),
        metadata=dict(info.metadata),
    )


def predict_by_model(items: list[TextItem], predict_proba: Callable[[str, list[str]], Any]) -> list[ClassProbabilities]:
    """Answer a batch that may mix models: one ``predict_proba(tag, texts)`` call per model, in input order.

    An unknown tag is a 404: the entry service only sends tags the runner listed.
    """
    by_model: dict[str, list[int]] = defaultdict(list)
    for i, item in enumerate(items):
        by_model[item.model_tag].append(i)
    out: list[ClassProbabilities | None] = [None] * len(items)
    for tag, indices in by_model.items():
        proba = predict_proba(tag, [items[i].text for i in indices])
        for row, i in zip(proba, indices, strict=True):
            out[i] = ClassProbabilities(model_tag=tag, probabilities=[float(p) for p in row])
    return out  # type: ignore[return-value]


def loaded_pipeline(pipelines: dict[str, T], tag: str) -> T:
    pipeline = pipelines.get(tag)
    if pipeline is None:
        raise bentoml.exceptions.NotFound(f"model {tag} is not loaded in this runner")
    return pipeline
