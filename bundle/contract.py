"""Pieces of the public contract every task shares: model selection fields, text inputs with the
limits from serving.yaml, and the ``/models`` listing.

Text is normalised once, here, in the request model's validator (bundle/text.py): handlers receive the
canonical form, and the event loop never normalises a text twice.
"""

from __future__ import annotations

import time
from typing import Annotated, Any

from pydantic import AfterValidator, BaseModel, ConfigDict, Field

from bundle.settings import load_settings
from bundle.text import normalize_text

_LIMITS = load_settings().limits
MAX_TEXT_CHARS = _LIMITS.max_text_chars
MAX_BATCH_TEXTS = _LIMITS.max_batch_texts
# Model, version and user are echoed into errors and logs: a short bound keeps both readable.
MAX_NAME_CHARS = 100


def clean_text(text: str, max_chars: int = MAX_TEXT_CHARS) -> str:
    """The canonical text, or a ValueError a person can act on."""
    if len(text) > max_chars:
        raise ValueError(f"has {len(text)} characters; the maximum is {max_chars}")
    clean = normalize_text(text)
    if not clean:
        raise ValueError("must not be empty or only whitespace")
    return clean


def _length_schema(max_chars: int) -> Any:
    # What clean_text enforces, stated in the JSON Schema as well, so that Swagger UI, generated clients
    # and fuzzers know it. Schema only: pydantic's own length checks would replace clean_text's messages.
    # (Whitespace and invisible characters alone are refused too; JSON Schema cannot say that exactly.)
    return Field(json_schema_extra={"minLength": 1, "maxLength": max_chars})


Text = Annotated[str, AfterValidator(clean_text), _length_schema(MAX_TEXT_CHARS)]


def text_list(max_texts: int = MAX_BATCH_TEXTS, max_chars: int = MAX_TEXT_CHARS) -> Any:
    """A request field of 1 to ``max_texts`` texts of 1 to ``max_chars`` characters each, normalised."""

    def clean(texts: list[str]) -> list[str]:
        out = []
        for i, text in enumerate(texts):
            try:
                out.append(clean_text(text, max_chars))
            except ValueError as exc:
                raise ValueError(f"item {i} {exc}") from None
        return out

    return Annotated[
        list[Annotated[str, _length_schema(max_chars)]],
        Field(
            description=f"1 to {max_texts} texts, each 1 to {max_chars} characters.", min_length=1, max_length=max_texts
        ),
        AfterValidator(clean),
    ]


Texts = text_list()


def answered(answer: Any, started: float) -> dict[str, Any]:
    """The fields of :class:`Answered` for a gateway answer: who answered, why, and how long it took."""
    return {
        "model": answer.model.tag,
        "family": answer.model.family,
        "arm": answer.decision.arm,
        "policy": answer.decision.policy,
        "degraded": answer.degraded,
        "elapsed_ms": round((time.perf_counter() - started) * 1000, 3),
    }


class Strict(BaseModel):
    # Unknown fields are rejected rather than silently ignored: a typo such as "modle" must not
    # quietly route the request to the default model.
    model_config = ConfigDict(extra="forbid")


class ModelSelection(Strict):
    """The optional fields by which a request picks its model; without them the task's routing decides."""

    model: str | None = Field(
        default=None,
        max_length=MAX_NAME_CHARS,
        description="Model to use (see /models). Omit for the task's default model or traffic split.",
        examples=[None],
    )
    version: str | None = Field(
        default=None,
        max_length=MAX_NAME_CHARS,
        description="Exact model version from /models. Omit for the version configured as default.",
        examples=[None],
    )
    user: str | None = Field(
        default=None,
        max_length=MAX_NAME_CHARS,
        description="Caller or session key. With an A/B or canary split, the same key always gets the same "
        "model. Ignored when the request names a model.",
        examples=[None],
    )


class Answered(BaseModel):
    model: str = Field(
        description="The model that answered, as name:version.", examples=["sentiment_logreg:j46mfrxgfknroax4"]
    )
    family: str = Field(
        description="The model (as named in serving.yaml and /models) that answered.", examples=["logreg"]
    )
    arm: str = Field(description="The routing arm that answered (see serving.yaml routing).", examples=["logreg"])
    policy: str = Field(
        description="How the model was chosen: explicit (the request named it), single, ab, canary.",
        examples=["single"],
    )
    degraded: bool = Field(
        default=False,
        description="True when the routed model was overloaded and the task's cheaper model answered instead "
        "(serving.yaml tasks.<task>.degrade_to; off by default).",
        examples=[False],
    )
    elapsed_ms: float = Field(description="Time spent in the service, in milliseconds.", examples=[3.2])


class ModelsRequest(Strict):
    pass


class ModelInfo(BaseModel):
    family: str = Field(description="The model's name in requests (`model`) and in serving.yaml.", examples=["logreg"])
    task: str = Field(description="The task it serves, e.g. sentiment or embedding.", examples=["sentiment"])
    name: str = Field(description="Its name in the Bento model store.", examples=["sentiment_logreg"])
    version: str = Field(examples=["j46mfrxgfknroax4"])
    default: bool = Field(description="Answers requests for this model that name no version.")
    runner: str = Field(examples=["cpu"])
    pipeline: str = Field(examples=["tfidf_logreg"])
    labels: dict[str, str] = Field(
        default_factory=dict, description="The store model's labels (for translation: source and target language)."
    )
    created_at: str = Field(examples=["2026-11-22T04:08:01+00:00"])
    gate_passed: bool | None = Field(default=None, description="Whether the model passed its accuracy gate.")
    metrics: dict[str, Any] = Field(description="Held-out metrics on its training domains, recorded when it was made.")
    evaluation: dict[str, Any] | None = Field(
        default=None,
        description="Accuracy with its 95% interval and calibration error (ECE) on every domain's test split "
        "(`domains`), from training or the latest `make evaluate`.",
    )
    params: dict[str, Any] = Field(description="Training or import parameters recorded when it was made.")
    data_sha256: str | None = Field(default=None, description="Checksum of the training data.")
    runtime: str | None = Field(
        default=None,
        description="How the model runs, for models with a choice (fp32, bf16, onnx, onnx_int8), and why.",
        examples=["onnx_int8: fastest measured on this machine within quality"],
    )


class TaskInfo(BaseModel):
    default_model: str = Field(examples=["transformer"])
    routes: list[str] = Field(description="The task's endpoints.", examples=[["/sentiment", "/sentiment/batch"]])
    routing: dict[str, Any] | None = Field(default=None, description="The task's traffic policy, if any.")


class ModelsResponse(BaseModel):
    default_family: str = Field(
        description="The sentiment task's default model (kept for existing clients; see `tasks`).",
        examples=["transformer"],
    )
    models: list[ModelInfo]
    tasks: dict[str, TaskInfo] = Field(description="Every served task: its default model, routes and routing.")
    routing: dict[str, Any] | None = Field(
        default=None, description="The sentiment task's traffic policy (kept for existing clients; see `tasks`)."
    )
