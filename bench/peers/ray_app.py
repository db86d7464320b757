"""Peer: the transformer sentiment model behind Ray Serve with ``@serve.batch``.

    python bench/peers/ray_app.py --port 8000 [--max-batch-size 64 --wait-ms 5 --max-ongoing 256]

Run with the peers environment's python (``python -m bench.peers_env``) and BENCH_MODEL_PATH set.
Starts a private single-node Ray (2 CPUs, no dashboard) whose components talk over loopback only,
deploys one replica, serves ``POST /sentiment`` on 127.0.0.1, writes a ready marker into
BENCH_READY_DIR, and shuts Ray down on SIGTERM.
"""

from __future__ import annotations

import argparse
import logging
import os
import signal
import sys
import threading
import time
from pathlib import Path
from typing import Any, cast

sys.path.insert(0, str(Path(__file__).resolve().parent.parent.parent))

logger = logging.getLogger("bench.ray_app")


def build_app(max_batch_size: int, wait_ms: float, max_ongoing: int, threads: int) -> Any:
    from ray import serve
    from starlette.requests import Request

    @serve.deployment(max_ongoing_requests=max_ongoing, ray_actor_options={"num_cpus": 1})
    class Sentiment:
        def __init__(self, model_path: str, tag: str) -> None:
            import torch

            from tasks.sentiment.pipelines import load_pipeline

            torch.set_num_threads(threads)
            self.pipeline: Any = cast(Any, load_pipeline("transformer", model_path, device="cpu"))
            self.pipeline.predict_proba(["warm up the kernels"], batch_size=1)
            self.tag = tag

        @serve.batch(max_batch_size=max_batch_size, batch_wait_timeout_s=wait_ms / 1000)
        async def predict(self, texts: list[str]) -> list[list[float]]:
            return self.pipeline.predict_proba(texts, batch_size=len(texts)).tolist()

        async def __call__(self, request: Request) -> dict[str, object]:
            from bundle.text import normalize_text
            from tasks.sentiment.pipelines.base import LABELS

            started = time.perf_counter()
            body = await request.json()
            proba = await self.predict(normalize_text(body["text"]))
            named = {label: round(float(p), 6) for label, p in zip(LABELS, proba, strict=True)}
            return {
                "label": max(named, key=named.__getitem__),
                "probabilities": named,
                "model": self.tag,
                "family": "transformer",
                "elapsed_ms": round((time.perf_counter() - started) * 1000, 3),
            }

    model_path, tag = os.environ["BENCH_MODEL_PATH"], os.environ.get("BENCH_MODEL_TAG", "sentiment_transformer")
    return Sentiment.bind(model_path, tag)  # type: ignore[attr-defined]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--port", type=int, required=True)
    parser.add_argument("--max-batch-size", type=int, default=64)
    parser.add_argument("--wait-ms", type=float, default=5.0)
    parser.add_argument("--max-ongoing", type=int, default=256)
    args = parser.parse_args()
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(name)s %(message)s")
    os.environ.setdefault("RAY_ENABLE_WINDOWS_OR_OSX_CLUSTER", "0")
    os.environ.setdefault("RAY_USAGE_STATS_ENABLED", "0")

    import ray
    from ray import serve

    stop = threading.Event()
    signal.signal(signal.SIGTERM, lambda *_: stop.set())
    signal.signal(signal.SIGINT, lambda *_: stop.set())

    ray.init(
        num_cpus=2,
        include_dashboard=False,
        _node_ip_address="127.0.0.1",
        object_store_memory=256 * 1024 * 1024,
        log_to_driver=False,
    )
    serve.start(http_options={"host": "127.0.0.1", "port": args.port})
    threads = int(os.environ.get("BENCH_TORCH_THREADS", "2"))
    serve.run(build_app(args.max_batch_size, args.wait_ms, args.max_ongoing, threads), route_prefix="/sentiment")
    ready_dir = os.environ.get("BENCH_READY_DIR")
    if ready_dir:
        (Path(ready_dir) / "ray").touch()
    logger.info("ready on 127.0.0.1:%d", args.port)
    while not stop.wait(0.5):
        pass
    serve.shutdown()
    ray.shutdown()


if __name__ == "__main__":
    main()
