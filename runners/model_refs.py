"""Declare the configured model versions as ``BentoModel`` class attributes and resolve them in the store.

BentoML packages into a Bento exactly the models a service declares as ``BentoModel`` class attributes,
so each configured version becomes one attribute. Declaring resolves nothing; loading happens in the
runner's ``__init__``, where a missing model stops start-up with a message that says how to train it.

Except while models are being made: with ``BUNDLE_MODELS_PENDING=1`` (``make serve`` sets it while it
trains the slow models in the background) a missing ``latest`` model is declared *pending* instead: the
runner starts without it and loads it when it appears in the store (runners/host.py).
"""

from __future__ import annotations

import logging
import os
import re
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, TypeVar

import bentoml

from bundle.runner_contract import PENDING_ENV, LoadedModel
from bundle.settings import ModelDeployment

logger = logging.getLogger(__name__)
T = TypeVar("T")


class ModelMissingError(bentoml.exceptions.NotFound):
    """A configured model is not in the store. A BentoML exception, so ``bentoml serve`` prints just this."""


@dataclass(frozen=True)
class Declared:
    attribute: str
    family: str
    task: str
    runner: str
    requested: str  # "name:version" as configured
    default: bool
    pending: bool = False  # not in the store yet; the runner loads it when it appears
    runtime: str = "auto"  # serving.yaml models.<family>.runtime


def pending_allowed() -> bool:
    return os.environ.get(PENDING_ENV, "").lower() in ("1", "true", "yes")


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
                pending = pending_allowed() and tag.endswith(":latest") and not in_store(tag)
                if pending:
                    logger.warning("%s (model %r) is not in the store yet: it joins when it is made", tag, family)
                else:
                    setattr(cls, attribute, bentoml.models.BentoModel(tag))
                declared.append(
                    Declared(
                        attribute,
                        family,
                        deployment.task,
                        deployment.runner,
                        tag,
                        default=(i == 0),
                        pending=pending,
                        runtime=deployment.runtime,
                    )
                )
        for d in declared:
            if not d.pending:
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
        how = _create_command(name)
        raise ModelMissingError(
            f"model {declared.requested} (family {declared.family!r}) is not in the Bento model store "
            f"at {_store_dir()}. Train it with: {how}; or change its version in serving.yaml."
        )
    return stored


def in_store(tag: str) -> bool:
    try:
        bentoml.models.get(tag)
    except bentoml.exceptions.NotFound:
        return False
    return True


def _create_command(store_name: str) -> str:
    from tasks.registry import TASKS

    for task in TASKS.values():
        if store_name in task.store_models:
            return f"make models (or: python -m {task.store_models[store_name]})"
    return "train it and save it to the Bento store"


def _store_dir() -> str:
    return os.path.join(os.environ.get("BENTOML_HOME", os.path.expanduser("~/bentoml")), "models")


def describe(declared: Declared, stored: bentoml.Model) -> LoadedModel:
    info = stored.info
    return LoadedModel(
        family=declared.family,
        task=declared.task,
        runner=declared.runner,
        tag=str(stored.tag),
        requested=declared.requested,
        default=declared.default,
        pipeline=info.labels.get("pipeline", ""),
        created_at=info.creation_time.isoformat(),
        labels=dict(info.labels),
        metadata=dict(info.metadata),
    )
