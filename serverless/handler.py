"""A serverless function (AWS Lambda and compatible FaaS) serving the CPU sentiment models.

The same ``POST /sentiment`` and ``POST /sentiment/batch`` contract and the same 4xx answers as the HTTP
service, for the models small enough for a function (Naive Bayes, TF-IDF + logistic regression), packaged
with their files by ``make function`` (serverless/build.py). Mangum turns API Gateway HTTP API (payload
v2) and function-URL events into calls of a small ASGI app; the models load once per cold start, when the
module is imported; every request logs one JSON line.

    handler(event, context)     # the function's entry point: serverless.handler.handler
"""

from __future__ import annotations

import json
import logging
import time
from pathlib import Path
from typing import Any

from mangum import Mangum
from pydantic import BaseModel, ValidationError
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse
from starlette.routing import Route

from bundle.errors import humanize
from tasks.sentiment.contract import BatchRequest, BatchResponse, Prediction, SentimentRequest, SentimentResponse
from tasks.sentiment.pipelines import load_pipeline
from tasks.sentiment.pipelines.base import LABELS

MODELS_DIR = Path(__file__).resolve().parent / "models"
logger = logging.getLogger("function")
logger.setLevel(logging.INFO)
if not logging.getLogger().handlers:  # the platform's runtime installs one; anywhere else, stderr
    logging.basicConfig(level=logging.INFO, format="%(message)s")


class NotFound(Exception):
    pass


def _load() -> tuple[str, dict[str, tuple[str, Any]]]:
    """The packaged models: (default family, {family: (tag, pipeline)}), loaded once per cold start."""
    manifest = json.loads((MODELS_DIR / "manifest.json").read_text())
    models = {
        family: (entry["tag"], load_pipeline(entry["pipeline"], str(MODELS_DIR / family)))
        for family, entry in manifest["models"].items()
    }
    return manifest["default"], models


DEFAULT, MODELS = _load()


def _choose(model: str | None, version: str | None) -> tuple[str, str, Any]:
    family = model or DEFAULT
    if family not in MODELS:
        raise NotFound(f"unknown model {family!r}; available models: {', '.join(sorted(MODELS))}")
    tag, pipeline = MODELS[family]
    if version is not None and version != tag.split(":", 1)[1]:
        raise NotFound(
            f"version {version!r} of model {family!r} is not in this function; served versions: {tag.split(':', 1)[1]}"
        )
    return family, tag, pipeline


def _prediction(row: Any) -> Prediction:
    named = {label: round(float(p), 6) for label, p in zip(LABELS, row, strict=True)}
    return Prediction.model_validate({"label": max(named, key=named.__getitem__), "probabilities": named})


async def _answer(request: Request, model: type[BaseModel], batch: bool) -> JSONResponse:
    started = time.perf_counter()
    status, n, family = 200, 0, ""
    try:
        try:
            body = model.model_validate_json(await request.body() or b"null")
        except ValidationError as exc:
            status = 400
            return JSONResponse(humanize(400, {"detail": exc.errors(include_context=False, include_input=False)}), 400)
        texts: list[str] = body.texts if batch else [body.text]  # type: ignore[attr-defined]
        n = len(texts)
        if body.lang != "en":  # type: ignore[attr-defined]
            status = 400
            return JSONResponse({"error": f"lang: only en here; this function has no translation ({body.lang!r})"}, 400)  # type: ignore[attr-defined]
        try:
            family, tag, pipeline = _choose(body.model, body.version)  # type: ignore[attr-defined]
        except NotFound as exc:
            status = 404
            return JSONResponse({"error": str(exc)}, 404)
        predictions = [_prediction(row) for row in pipeline.predict_proba(texts)]
        decided: dict[str, Any] = {
            "model": tag,
            "family": family,
            "arm": family,
            "policy": "explicit" if body.model or body.version else "single",  # type: ignore[attr-defined]
            "elapsed_ms": round((time.perf_counter() - started) * 1000, 3),
        }
        if batch:
            answer: BaseModel = BatchResponse(predictions=predictions, **decided)
        else:
            answer = SentimentResponse(**predictions[0].model_dump(), **decided)
        return JSONResponse(answer.model_dump())
    finally:
        context = request.scope.get("aws.context")
        logger.info(
            json.dumps(
                {
                    "path": request.url.path,
                    "status": status,
                    "model": family,
                    "texts": n,
                    "latency_ms": round((time.perf_counter() - started) * 1000, 3),
                    "request_id": getattr(context, "aws_request_id", None),
                }
            )
        )


async def sentiment(request: Request) -> JSONResponse:
    return await _answer(request, SentimentRequest, batch=False)


async def sentiment_batch(request: Request) -> JSONResponse:
    return await _answer(request, BatchRequest, batch=True)


async def not_found(request: Request, exc: Exception) -> JSONResponse:
    logger.info(json.dumps({"path": request.url.path, "status": 404, "model": "", "texts": 0, "latency_ms": 0.0}))
    return JSONResponse({"error": f"no route {request.method} {request.url.path}; try POST /sentiment"}, 404)


app = Starlette(
    routes=[
        Route("/sentiment", sentiment, methods=["POST"]),
        Route("/sentiment/batch", sentiment_batch, methods=["POST"]),
    ],
    exception_handlers={404: not_found, 405: not_found},
)
handler = Mangum(app, lifespan="off")
