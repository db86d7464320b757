"""Peer: the transformer sentiment model behind a plain FastAPI app, no batching.

    BENCH_MODEL_PATH=... BENCH_TORCH_THREADS=2 uvicorn bench.peers.fastapi_app:app --workers 1

Same model files (the Bento store's ``sentiment_transformer``), same pre-processing and the same
response fields as the project's ``POST /sentiment``; one request is one forward pass. The handler is
``async def``: the model runs on the event loop's thread, the thread that loaded it (a threadpool
``def`` handler starts a second OpenMP thread team on a small CPU and is slower).
"""

from __future__ import annotations

import os
import time
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

from fastapi import FastAPI
from pydantic import BaseModel, Field

from bundle.text import normalize_text
from tasks.sentiment.pipelines.base import LABELS

STATE: dict[str, Any] = {}


class Request(BaseModel):
    text: str = Field(min_length=1, max_length=5000)
    model: str | None = None


class Response(BaseModel):
    label: str
    probabilities: dict[str, float]
    model: str
    family: str
    elapsed_ms: float


@asynccontextmanager
async def lifespan(app: FastAPI) -> AsyncIterator[None]:
    import torch

    from tasks.sentiment.pipelines import load_pipeline

    torch.set_num_threads(int(os.environ.get("BENCH_TORCH_THREADS", "2")))
    # the stored model as the service serves it (its temperature applied)
    STATE["pipeline"] = load_pipeline("transformer", os.environ["BENCH_MODEL_PATH"], device="cpu")
    STATE["tag"] = os.environ.get("BENCH_MODEL_TAG", "sentiment_transformer")
    STATE["pipeline"].predict_proba(["warm up the kernels"], batch_size=1)
    ready_dir = os.environ.get("BENCH_READY_DIR")
    if ready_dir:
        (Path(ready_dir) / str(os.getpid())).touch()
    yield


app = FastAPI(lifespan=lifespan)


@app.post("/sentiment")
async def sentiment(req: Request) -> Response:
    started = time.perf_counter()
    proba = STATE["pipeline"].predict_proba([normalize_text(req.text)], batch_size=1)[0]
    named = {label: round(float(p), 6) for label, p in zip(LABELS, proba, strict=True)}
    return Response(
        label=max(named, key=named.__getitem__),
        probabilities=named,
        model=STATE["tag"],
        family="transformer",
        elapsed_ms=round((time.perf_counter() - started) * 1000, 3),
    )


@app.get("/readyz")
async def readyz() -> dict[str, str]:
    return {"status": "ok"}
