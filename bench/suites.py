"""The server configurations each benchmark suite measures, side by side in one run.

- ``main``: the project at its default knobs (adaptive batching on, the runtime ``auto`` picks), the same
  with batching off, the same on the fp32 runtime (and on bf16 where the CPU computes it), and the peers,
  each serving the same fine-tuned weights in PyTorch fp32 as its users would: plain FastAPI (the two
  configurations that suit a 2-core machine), Ray Serve batched, and LitServe with its batching.
- ``composition``: where the entry → runner composition spends its cores: the runner served alone
  (no entry service, no second hop), and the project with one thing changed at a time (tokenizer
  threads, access log, prediction records, metrics), then all of them together.
- ``knobs``: the runner's batching knobs and torch threads (serving.yaml ``runners.gpu``).
"""

from __future__ import annotations

from bench.servers import ServerSpec
from tasks.embedding.runtimes import native_bf16

# max_batch_size 1 in serving.yaml turns batching off: the runner then declares plain APIs (BentoML
# refuses max_batch_size 1 on a batchable one), one request per model call.
BATCHING_OFF = {"runners": {"gpu": {"max_batch_size": 1}}, "limits": {"max_batch_texts": 1}}


FP32_RUNTIME = {"models": {"transformer": {"runtime": "fp32"}}}
BF16_RUNTIME = {"models": {"transformer": {"runtime": "bf16"}}}


def main_suite(
    *, fastapi: bool = True, ray: bool = True, litserve: bool = True, mlserver: bool = True
) -> list[ServerSpec]:
    specs = [
        ServerSpec(
            "BentoML entry → runner, adaptive batching (defaults)",
            "bentoml",
            "serving.yaml as committed: runners.gpu max_batch_size 64, max_latency_ms 5000, torch_threads 2, "
            "models.transformer.runtime auto",
        ),
        ServerSpec(
            "BentoML entry → runner, adaptive batching, fp32 runtime",
            "bentoml",
            "serving.yaml copy with models.transformer.runtime fp32 (PyTorch eager, what training produced)",
            serving_overrides=FP32_RUNTIME,
        ),
    ]
    if native_bf16("cpu"):  # elsewhere the runner refuses bf16 (emulated, slower than fp32)
        specs.append(
            ServerSpec(
                "BentoML entry → runner, adaptive batching, bf16 runtime",
                "bentoml",
                "serving.yaml copy with models.transformer.runtime bf16 (PyTorch eager under bfloat16 autocast)",
                serving_overrides=BF16_RUNTIME,
            )
        )
    specs += [
        ServerSpec(
            "BentoML entry → runner, batching off",
            "bentoml",
            "serving.yaml copy with runners.gpu.max_batch_size 1 (plain, non-batchable runner APIs: one "
            "request per forward pass) and limits.max_batch_texts 1",
            serving_overrides=BATCHING_OFF,
        ),
    ]
    if fastapi:
        specs += [
            ServerSpec(
                "FastAPI async def, 1 worker × 2 torch threads",
                "fastapi",
                "uvicorn, asyncio + h11, no access log, no batching",
                workers=1,
                torch_threads=2,
            ),
            ServerSpec(
                "FastAPI async def, 2 workers × 1 torch thread",
                "fastapi",
                "2 uvicorn workers with one SO_REUSEPORT socket each (bench/peers/fastapi_serve.py), asyncio + h11, "
                "no access log, no batching",
                workers=2,
                torch_threads=1,
            ),
        ]
    if litserve:
        specs.append(
            ServerSpec(
                "LitServe batched, 2 workers × 1 torch thread (max 64, timeout 5 ms)",
                "litserve",
                "LitServe 0.2.19, LitAPI(max_batch_size=64, batch_timeout=0.005), LitServer(accelerator='cpu', "
                "workers_per_device=2), one torch thread per worker",
                workers=2,
                torch_threads=1,
                peer_batch={"max_batch_size": 64, "wait_ms": 5},
            )
        )
    if mlserver:
        specs.append(
            ServerSpec(
                "MLServer adaptive batching (max 64, 5 ms)",
                "mlserver",
                "MLServer 1.7.1, a custom MLModel runtime, Open Inference Protocol JSON (POST "
                "/v2/models/sentiment/infer), max_batch_size 64, max_batch_time 0.005, parallel_workers 0, "
                "2 torch threads",
                torch_threads=2,
                peer_batch={"max_batch_size": 64, "wait_ms": 5},
            )
        )
    if ray:
        specs.append(
            ServerSpec(
                "Ray Serve @serve.batch (max 64, wait 5 ms)",
                "ray",
                "1 replica, 2 torch threads, max_ongoing_requests 256, batch_wait_timeout_s 0.005",
                peer_batch={"max_batch_size": 64, "wait_ms": 5, "max_ongoing": 256},
            )
        )
    return specs


# Everything in the composition suite that costs CPU per request and can be changed without touching
# code: logs, prediction records, the tokenizer's thread pool, the size of each forward pass.
NO_ACCESS_LOG = {"services.logging.access.enabled": "false"}
NO_RUNNER_ACCESS_LOG = {"services.GPURunner.logging.access.enabled": "false"}
NO_MONITORING = {"services.monitoring.enabled": "false"}
ONE_FORWARD_PASS = {"runners": {"gpu": {"forward_batch_size": None}}}


def _entry_calls(n: int) -> dict[str, object]:
    return {"runners": {"gpu": {"entry_calls_in_flight": n}}}


TOKENIZER_THREADS = {"TOKENIZERS_PARALLELISM": "true"}


def composition_suite() -> list[ServerSpec]:
    def row(name: str, description: str, **kwargs: object) -> ServerSpec:
        return ServerSpec(name, "bentoml", description, group="composition", **kwargs)  # type: ignore[arg-type]

    return [
        row("defaults", "the project as committed"),
        ServerSpec(
            "runner alone (no entry, no hop)",
            "bentoml-runner",
            "bentoml serve runners.profiles:GPURunner; POST /predict with one item per request",
            group="composition",
        ),
        row(
            "TOKENIZERS_PARALLELISM=true",
            "the Rust tokenizer encodes a batch on its own thread pool (pipelines/transformer.py turns it off)",
            env=TOKENIZER_THREADS,
        ),
        row(
            "runner access log off",
            "services.GPURunner.logging.access.enabled=false: the internal hop is not logged a second "
            "time (the public request is still logged by the entry service)",
            config_options=NO_RUNNER_ACCESS_LOG,
        ),
        row("all access logs off", "services.logging.access.enabled=false", config_options=NO_ACCESS_LOG),
        row("prediction records off", "services.monitoring.enabled=false", config_options=NO_MONITORING),
        row(
            "one forward pass per batch",
            "runners.gpu.forward_batch_size unset (default 16): the whole batch, padded to its longest text, "
            "in one forward pass",
            serving_overrides=ONE_FORWARD_PASS,
        ),
        row(
            "one call per request (no coalescing)",
            "runners.gpu.entry_calls_in_flight 0: every public request is its own entry → runner call",
            serving_overrides=_entry_calls(0),
        ),
        row(
            "coalescing, 2 calls in flight",
            "runners.gpu.entry_calls_in_flight 2 (default 1): one call can wait at the runner while one computes",
            serving_overrides=_entry_calls(2),
        ),
        row(
            "OMP_WAIT_POLICY=PASSIVE",
            "torch's OpenMP threads sleep as soon as a parallel region ends instead of spin-waiting for the next",
            env={"OMP_WAIT_POLICY": "PASSIVE"},
        ),
        row(
            "BUNDLE_ORT_SPIN=1",
            "ONNX Runtime's intra-op threads spin while waiting for work (its own default; the project turns "
            "spinning off so that idle threads leave the cores to the entry service)",
            env={"BUNDLE_ORT_SPIN": "1"},
        ),
        row(
            "GOMP_SPINCOUNT=10000",
            "torch's OpenMP threads spin briefly (10,000 spins, libgomp's default is 300,000) before sleeping: "
            "less CPU taken from the entry service between batches",
            env={"GOMP_SPINCOUNT": "10000"},
        ),
    ]


def knobs_suite() -> list[ServerSpec]:
    """The committed runners.gpu knobs, then one knob changed per row."""
    rows = [ServerSpec("defaults (serving.yaml as committed)", "bentoml", "runners.gpu as committed", group="knobs")]
    for knobs in [
        {"max_batch_size": 16},
        {"max_batch_size": 32},
        {"max_batch_size": 128},
        {"max_latency_ms": 1000},
        {"max_latency_ms": 60000},
        {"forward_batch_size": 8},
        {"forward_batch_size": 32},
        {"entry_calls_in_flight": 2},
        {"torch_threads": 1},
        {"workers": 2, "torch_threads": 1, "entry_calls_in_flight": 2},
        {"pass_threads": 2, "torch_threads": 1},
        {"pass_threads": 2, "torch_threads": 1, "entry_calls_in_flight": 1},
    ]:
        overrides: dict[str, object] = {"runners": {"gpu": knobs}}
        if knobs.get("max_batch_size", 64) < 64:
            overrides["limits"] = {"max_batch_texts": knobs["max_batch_size"]}
        name = ", ".join(f"{k} {v}" for k, v in knobs.items())
        rows.append(
            ServerSpec(
                name,
                "bentoml",
                f"runners.gpu.{name} in a serving.yaml copy",
                serving_overrides=overrides,
                group="knobs",
            )
        )
    return rows


SUITES = {"main": main_suite, "composition": composition_suite, "knobs": knobs_suite}
