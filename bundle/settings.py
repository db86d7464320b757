"""Typed loader for serving.yaml, the project's own settings (model versions, runner knobs, limits).

BentoML's runtime configuration (configuration.yaml) rejects keys it does not know, so the project's
settings live in a file of their own. Reading it is cheap and loads no model, so the runner module can
read batching knobs at import time, where ``@bentoml.api`` needs them.
"""

from __future__ import annotations

import os
from functools import lru_cache
from pathlib import Path
from typing import Any, Literal

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator, model_validator

DEFAULT_PATH = Path(__file__).resolve().parent.parent / "serving.yaml"
ENV_VAR = "BUNDLE_SERVING_CONFIG"
LEGACY_ENV_VAR = "SENTIMENT_SERVING_CONFIG"  # the name before the bundle had several tasks; still read

RunnerName = Literal["cpu", "gpu"]


class SettingsError(ValueError):
    """serving.yaml is missing or invalid; the message names the file and the offending keys."""


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class ModelDeployment(_Strict):
    task: str = Field(min_length=1, description="the task this model serves (a folder under tasks/)")
    store_name: str = Field(min_length=1, description="model name in the Bento store")
    runner: RunnerName
    versions: list[str] = Field(default=["latest"], min_length=1)
    runtime: str = Field(
        default="auto",
        pattern=r"^[a-z0-9_]+$",
        description="how the model runs (fp32, bf16, onnx, onnx_int8 for the transformer encoders); auto: the "
        "fastest whose quality the model version's own measurements vouch for",
    )

    @field_validator("versions")
    @classmethod
    def _unique(cls, versions: list[str]) -> list[str]:
        if len(set(versions)) != len(versions):
            raise ValueError(f"versions must be unique, got {versions}")
        if any(not v.strip() or ":" in v for v in versions):
            raise ValueError(f"a version is 'latest' or a store version without the name, got {versions}")
        return versions

    def tags(self) -> list[str]:
        return [f"{self.store_name}:{v}" for v in self.versions]


class RunnerSettings(_Strict):
    """Adaptive-batching knobs of one runner, and its thread budget."""

    max_batch_size: int = Field(ge=1, le=4096, description="largest adaptive batch; 1 turns batching off")
    max_latency_ms: int = Field(
        ge=1,
        le=600_000,
        description="shed (503 + Retry-After) a request whose predicted wait for this runner passes this; "
        "applied by BentoML's dispatcher and, when coalescing, by the entry service's queue",
    )
    torch_threads: int | None = Field(
        default=None, ge=1, le=256, description="intra-op threads of each worker (torch and ONNX Runtime)"
    )
    workers: int = Field(
        default=1,
        ge=1,
        le=64,
        description="worker processes of the runner, each loading every model it hosts; keep workers x "
        "torch_threads <= cores, and entry_calls_in_flight >= workers so that every worker gets calls",
    )
    pass_threads: int = Field(
        default=1,
        ge=1,
        le=64,
        description="forward passes of one batch run side by side on this many threads, each pass on "
        "torch_threads threads (models whose predictor is thread-safe; keep pass_threads x torch_threads "
        "<= cores); 1: one pass after another",
    )
    forward_batch_size: int | None = Field(
        default=None,
        ge=1,
        le=4096,
        description="texts per forward pass inside one batch (length-sorted chunks); default: the whole batch",
    )
    entry_calls_in_flight: int = Field(
        default=0,
        ge=0,
        le=64,
        description="the entry service merges concurrent requests for this runner into one call while this "
        "many of its calls are outstanding (coalesce.py); 0: one call per request",
    )
    max_queued_texts: int = Field(
        default=1024,
        ge=1,
        le=1_000_000,
        description="texts the entry service queues for this runner while its calls are in flight; past it, "
        "new requests get 429 with Retry-After (only when coalescing)",
    )

    @property
    def batching(self) -> bool:
        return self.max_batch_size > 1

    def api_options(self) -> dict[str, object]:
        """Keyword arguments for ``@bentoml.api`` on a runner's list-in, list-out inference API.

        BentoML refuses ``max_batch_size=1`` on a batchable API, so batching off means a plain API:
        each request's list goes to the model as it came, one call per request.
        """
        if not self.batching:
            return {}
        return {"batchable": True, "max_batch_size": self.max_batch_size, "max_latency_ms": self.max_latency_ms}


class Limits(_Strict):
    max_text_chars: int = Field(ge=1, le=1_000_000)
    max_batch_texts: int = Field(ge=1, le=4096)
    max_requests_in_flight: int = Field(
        default=512,
        ge=1,
        le=1_000_000,
        description="POST requests the entry service works on at once; past it, 429 with Retry-After",
    )
    deadline_ms: int = Field(
        default=10_000,
        ge=10,
        le=600_000,
        description="default time a request may take; a request header X-Deadline-Ms may ask for less",
    )
    max_upload_bytes: int = Field(
        default=25 * 2**20,
        ge=1024,
        le=2**31,
        description="largest request body of an endpoint that takes a file (audio); past it, 413 before reading",
    )


class ModelChoice(_Strict):
    family: str
    version: str | None = Field(default=None, description="a configured version; default: the family's first")

    def label(self) -> str:
        return self.family if self.version is None else f"{self.family}:{self.version}"


class Arm(ModelChoice):
    weight: float = Field(gt=0, le=100, description="percent of the traffic")


class Shadow(ModelChoice):
    sample_rate: float = Field(default=1.0, ge=0, le=1, description="share of requests copied to the shadow")
    timeout_ms: int = Field(default=5000, ge=1, le=600_000)


class Routing(_Strict):
    """How requests that name no model are answered: a weighted split, plus shadows that never answer."""

    policy: Literal["single", "ab", "canary"] = "single"
    arms: list[Arm] = Field(min_length=1)
    shadows: list[Shadow] = Field(default_factory=list)
    max_shadows_in_flight: int = Field(default=64, ge=1, le=100_000)

    @model_validator(mode="after")
    def _weights(self) -> Routing:
        total = sum(arm.weight for arm in self.arms)
        if abs(total - 100) > 1e-6:
            weights = " + ".join(f"{a.weight:g} ({a.label()})" for a in self.arms)
            raise ValueError(f"arm weights must sum to 100, got {weights} = {total:g}")
        labels = [a.label() for a in self.arms]
        if len(set(labels)) != len(labels):
            raise ValueError(f"arms must differ, got {labels}")
        if self.policy == "single" and len(self.arms) != 1:
            raise ValueError("policy 'single' takes exactly one arm (use 'ab' or 'canary' to split)")
        if self.policy == "canary" and len(self.arms) != 2:
            raise ValueError("policy 'canary' takes two arms: the stable one and the canary")
        return self


class Ensemble(_Strict):
    members: list[Arm] = Field(min_length=2, description="weights are relative; they are normalised")


class Monitoring(_Strict):
    # raw: the text itself; digest: a salted sha256 of it plus length statistics; none: statistics only.
    record_inputs: Literal["raw", "digest", "none"] = "digest"
    digest_salt: str = "model-bundle"


class TaskSettings(_Strict):
    """Per task: which of its models answers requests that name none, and how traffic is split."""

    default_model: str = Field(description="model (a key of models:) answering requests that name none")
    routing: Routing | None = None
    ensemble: Ensemble | None = Field(default=None, description="only for tasks whose answers can be averaged")
    # Tasks whose models take seconds per input (speech on a CPU) need more time than text does; both
    # default to the service-wide values (limits.deadline_ms, the runner's max_latency_ms).
    deadline_ms: int | None = Field(
        default=None, ge=10, le=600_000, description="default deadline of this task's requests (limits.deadline_ms)"
    )
    degrade_to: str | None = Field(
        default=None,
        description="off by default: a cheaper model of the task that answers (marked degraded) when the routed "
        "model's runner could not answer before the deadline, instead of a 503",
    )
    max_wait_ms: int | None = Field(
        default=None,
        ge=1,
        le=600_000,
        description="predicted wait in the runner's queue past which this task's requests are refused (503); "
        "default: the runner's max_latency_ms",
    )


class ServingSettings(_Strict):
    only_runners: list[RunnerName] | None = Field(
        default=None,
        description="serve only the models on these runners; tasks left without a model are not served",
    )
    models: dict[str, ModelDeployment] = Field(min_length=1)
    tasks: dict[str, TaskSettings] = Field(min_length=1)
    monitoring: Monitoring = Field(default_factory=Monitoring)
    runners: dict[RunnerName, RunnerSettings]
    limits: Limits

    @model_validator(mode="before")
    @classmethod
    def _only_runners(cls, data: Any) -> Any:
        """``only_runners: [cpu]`` drops every model on another runner, and the tasks and runner sections
        left with nothing to serve, so one line makes a CPU-only deployment of any serving.yaml."""
        if not isinstance(data, dict) or not data.get("only_runners"):
            return data
        keep = set(data["only_runners"])
        models = {
            n: m for n, m in (data.get("models") or {}).items() if not isinstance(m, dict) or m.get("runner") in keep
        }
        tasks_used = {m.get("task") for m in models.values() if isinstance(m, dict)}
        tasks = {t: conf for t, conf in (data.get("tasks") or {}).items() if t in tasks_used}
        runners = {r: k for r, k in (data.get("runners") or {}).items() if r in keep}
        return {**data, "models": models, "tasks": tasks, "runners": runners}

    @model_validator(mode="after")
    def _consistent(self) -> ServingSettings:
        for name, deployment in self.models.items():
            if deployment.task not in self.tasks:
                raise ValueError(
                    f"models.{name}: task {deployment.task!r} has no section under tasks "
                    f"(tasks: {sorted(self.tasks)}); add tasks.{deployment.task}.default_model"
                )
            if deployment.runner not in self.runners:
                raise ValueError(f"models.{name} uses runner {deployment.runner!r}, which has no section under runners")
        for task, conf in self.tasks.items():
            own = sorted(self.models_of(task))
            choices: list[tuple[str, ModelChoice]] = [
                (f"tasks.{task}.default_model", ModelChoice(family=conf.default_model))
            ]
            if conf.routing:
                choices += [(f"tasks.{task}.routing.arms", a) for a in conf.routing.arms]
                choices += [(f"tasks.{task}.routing.shadows", sh) for sh in conf.routing.shadows]
            if conf.ensemble:
                choices += [(f"tasks.{task}.ensemble.members", m) for m in conf.ensemble.members]
            if conf.degrade_to:
                choices.append((f"tasks.{task}.degrade_to", ModelChoice(family=conf.degrade_to)))
            for where, choice in choices:
                if choice.family not in own:
                    raise ValueError(f"{where}: model {choice.family!r} is not one of task {task!r}'s models: {own}")
                configured = self.models[choice.family].versions
                if choice.version is not None and choice.version not in configured:
                    raise ValueError(
                        f"{where}: version {choice.version!r} of {choice.family!r} is not in "
                        f"models.{choice.family}.versions {configured}; add it there so it is loaded"
                    )
        for runner, knobs in self.runners.items():
            # the dispatcher refuses a request larger than max_batch_size; a plain API has no such limit
            if knobs.batching and self.limits.max_batch_texts > knobs.max_batch_size:
                raise ValueError(
                    f"limits.max_batch_texts ({self.limits.max_batch_texts}) exceeds "
                    f"runners.{runner}.max_batch_size ({knobs.max_batch_size}); one client batch must fit"
                )
        return self

    def models_of(self, task: str) -> dict[str, ModelDeployment]:
        return {name: d for name, d in self.models.items() if d.task == task}

    def models_on(self, runner: str) -> dict[str, ModelDeployment]:
        return {name: d for name, d in self.models.items() if d.runner == runner}

    def runners_in_use(self) -> list[RunnerName]:
        """Runners that serve at least one model: only these are started."""
        return [name for name in self.runners if self.models_on(name)]


def _format(exc: ValidationError) -> str:
    lines = []
    for err in exc.errors(include_url=False):
        where = ".".join(str(p) for p in err["loc"]) or "(top level)"
        lines.append(f"  {where}: {err['msg']}")
    return "\n".join(lines)


def parse_settings(data: object, source: str = "<data>") -> ServingSettings:
    try:
        return ServingSettings.model_validate(data)
    except ValidationError as exc:
        raise SettingsError(f"{source} is invalid:\n{_format(exc)}") from None


def settings_path() -> Path:
    return Path(os.environ.get(ENV_VAR) or os.environ.get(LEGACY_ENV_VAR) or DEFAULT_PATH)


def merge(base: Any, overlay: Any) -> Any:
    """``overlay`` on top of ``base``: mappings merge key by key (a key set to null is removed),
    anything else replaces."""
    if isinstance(base, dict) and isinstance(overlay, dict):
        merged = {**base, **{k: merge(base.get(k), v) if k in base else v for k, v in overlay.items()}}
        return {k: v for k, v in merged.items() if not (k in overlay and overlay[k] is None)}
    return overlay


def read_yaml(path: Path, seen: tuple[Path, ...] = ()) -> Any:
    """A settings file's data; a file with ``extends: <path>`` is an overlay of that file (relative to it)."""
    try:
        data = yaml.safe_load(path.read_text())
    except FileNotFoundError:
        raise SettingsError(f"settings file {path} does not exist (set {ENV_VAR} or restore serving.yaml)") from None
    except yaml.YAMLError as exc:
        raise SettingsError(f"{path} is not valid YAML: {exc}") from None
    if isinstance(data, dict) and "extends" in data:
        base = (path.parent / str(data.pop("extends"))).resolve()
        if base in seen:
            raise SettingsError(f"{path}: 'extends' goes round in a circle through {base}")
        data = merge(read_yaml(base, (*seen, path.resolve())), data)
    return data


@lru_cache(maxsize=8)
def _load(path: Path, mtime_ns: int) -> ServingSettings:
    return parse_settings(read_yaml(path), str(path))


def load_settings(path: Path | None = None) -> ServingSettings:
    """Parsed settings, cached until the file changes."""
    path = Path(path) if path else settings_path()
    try:
        mtime = path.stat().st_mtime_ns
    except FileNotFoundError:
        mtime = -1
    return _load(path, mtime)
