"""Peer: the transformer sentiment model behind LitServe with its batching.

    python bench/peers/litserve_app.py --port 8000 [--workers 2 --max-batch-size 64 --batch-timeout-ms 5]

Run with the peers environment's python (``python -m bench.peers_env``) and BENCH_MODEL_PATH set. The
four hooks as LitServe's users write them: ``setup`` loads the model, ``decode_request`` takes the text,
``predict`` runs one batch, ``encode_response`` names the classes. Batching options live on the
``LitAPI`` in LitServe 0.2.x. ``--workers`` inference worker processes on the CPU, each with
BENCH_TORCH_THREADS torch threads; serves ``POST /sentiment`` on 127.0.0.1 and writes a ready marker into
BENCH_READY_DIR from every worker's ``setup``.
"""

from __future__ import annotations

import argparse
import os
import sys
import time
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent.parent.parent))

import litserve as ls  # noqa: E402  (after the path: the project's code is imported in setup)


class SentimentAPI(ls.LitAPI):
    def setup(self, device: str) -> None:
        import torch

        from tasks.sentiment.pipelines import load_pipeline

        torch.set_num_threads(int(os.environ.get("BENCH_TORCH_THREADS", "1")))
        self.pipeline: Any = load_pipeline("transformer", os.environ["BENCH_MODEL_PATH"], device="cpu")
        self.pipeline.predict_proba(["warm up the kernels"], batch_size=1)
        self.tag = os.environ.get("BENCH_MODEL_TAG", "sentiment_transformer")
        ready_dir = os.environ.get("BENCH_READY_DIR")
        if ready_dir:
            (Path(ready_dir) / f"litserve-{os.getpid()}").touch()

    def decode_request(self, request):  # type: ignore[no-untyped-def]  # LitServe reads the body type from an annotation; none means JSON
        from bundle.text import normalize_text

        return normalize_text(request["text"])

    def predict(self, texts: list[str]) -> list[list[float]]:
        return self.pipeline.predict_proba(texts, batch_size=len(texts)).tolist()

    def encode_response(self, proba: list[float]) -> dict[str, Any]:
        from tasks.sentiment.pipelines.base import LABELS

        named = {label: round(float(p), 6) for label, p in zip(LABELS, proba, strict=True)}
        return {"label": max(named, key=named.__getitem__), "probabilities": named, "model": self.tag}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--port", type=int, required=True)
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--max-batch-size", type=int, default=64)
    parser.add_argument("--batch-timeout-ms", type=float, default=5.0)
    args = parser.parse_args()
    api = SentimentAPI(
        max_batch_size=args.max_batch_size, batch_timeout=args.batch_timeout_ms / 1000, api_path="/sentiment"
    )
    server = ls.LitServer(api, accelerator="cpu", workers_per_device=args.workers, timeout=60)
    started = time.time()
    server.run(host="127.0.0.1", port=args.port, log_level="warning", generate_client_file=False)
    print(f"stopped after {time.time() - started:.0f} s")


if __name__ == "__main__":
    main()
