"""Peer: the transformer sentiment model as an MLServer custom runtime, with MLServer's adaptive batching.

Started by bench/servers.py as ``mlserver start <folder>`` with the mlserver side environment
(``python -m bench.peers_env --name mlserver``): the folder holds ``settings.json`` (127.0.0.1, the
ports, ``parallel_workers`` 0: inference in the server's own process, which measured best here and
avoids MLServer's worker crash with uvloop ≥ 0.22) and ``model-settings.json`` (this class,
``max_batch_size`` and ``max_batch_time``). The Open Inference Protocol request carries one BYTES
input ``text`` of shape [1]; MLServer's batcher concatenates concurrent requests along that axis and
splits the ``probabilities`` output (shape [n, 2]) back per request.
"""

from __future__ import annotations

import os
from typing import Any

import numpy as np
from mlserver import MLModel
from mlserver.codecs import StringCodec
from mlserver.types import InferenceRequest, InferenceResponse, ResponseOutput


class SentimentRuntime(MLModel):
    async def load(self) -> bool:
        import torch

        from tasks.sentiment.pipelines import load_pipeline

        torch.set_num_threads(int(os.environ.get("BENCH_TORCH_THREADS", "2")))
        self.pipeline: Any = load_pipeline("transformer", os.environ["BENCH_MODEL_PATH"], device="cpu")
        self.pipeline.predict_proba(["warm up the kernels"], batch_size=1)
        ready_dir = os.environ.get("BENCH_READY_DIR")
        if ready_dir:
            open(os.path.join(ready_dir, "mlserver"), "w").close()
        return True

    async def predict(self, payload: InferenceRequest) -> InferenceResponse:
        from bundle.text import normalize_text

        texts = [normalize_text(t) for t in StringCodec.decode_input(payload.inputs[0])]
        proba = np.asarray(self.pipeline.predict_proba(texts, batch_size=len(texts)), dtype=np.float32)
        return InferenceResponse(
            model_name=self.name,
            outputs=[
                ResponseOutput(
                    name="probabilities", shape=list(proba.shape), datatype="FP32", data=proba.ravel().tolist()
                )
            ],
        )
