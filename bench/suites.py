"""The server configurations each benchmark suite measures, side by side in one run.

- ``main``: the project at its default knobs (adaptive batching on), the same with batching off, and
  the peers: plain FastAPI (the two configurations that suit a 2-core machine) and Ray Serve batched.
- ``composition``: where the entry → runner composition spends its cores: the runner served alone
  (no entry service, no second hop), and the project with one thing changed at a time (tokenizer
  threads, access log, prediction records, metrics), then all of them together.
- ``knobs``: the runner's batching knobs and torch threads (serving.yaml ``runners.gpu``).
"""

from __future__ import annotations

from bench.servers import ServerSpec

BATCHING_OFF = {"runners": {"gpu": {"max_batch_size": 1}}, "limits": {"max_batch_texts": 1}}
# BentoML rejects max_batch_size 1 on a batchable API ("'max_batch_size' must be > 1"); this patch of
# runners/transformer.py declares plain APIs when serving.yaml asks for max_batch_size 1.
UNBATCHED_PATCH = "batching-off-at-max-batch-size-1.patch"


def main_suite(*, fastapi: bool = True, ray: bool = True) -> list[ServerSpec]:
    specs = [
        ServerSpec(
            "BentoML entry → runner, adaptive batching (defaults)",
            "bentoml",
            "serving.yaml as committed: runners.gpu max_batch_size 64, max_latency_ms 5000, torch_threads 2",
        ),
        ServerSpec(
            "BentoML entry → runner, batching off",
            "bentoml",
            "serving.yaml copy with runners.gpu.max_batch_size 1 (and limits.max_batch_texts 1); the runner "
            f"code with bench/variants/{UNBATCHED_PATCH} (plain, non-batchable APIs at max_batch_size 1)",
            serving_overrides=BATCHING_OFF,
            patches=(UNBATCHED_PATCH,),
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
                "uvicorn --workers 2, asyncio + h11, no access log, no batching",
                workers=2,
                torch_threads=1,
            ),
        ]
    if ray:
        specs.append(
            ServerSpec(
                "Ray Serve @serve.batch (max 64, wait 5 ms)",
                "ray",
                "1 replica, 2 torch threads, max_ongoing_requests 256, batch_wait_timeout_s 0.005",
                ray_batch={"max_batch_size": 64, "wait_ms": 5, "max_ongoing": 256},
            )
        )
    return specs


# Everything in the composition suite that costs CPU per request and can be changed without touching
# code: logs, prediction records, the hop's session recycling, the tokenizer's thread pool.
NO_ACCESS_LOG = {"services.logging.access.enabled": "false"}
NO_RUNNER_ACCESS_LOG = {"services.TransformerRunner.logging.access.enabled": "false"}
NO_MONITORING = {"services.monitoring.enabled": "false"}
KEEP_RUNNER_SESSION = {
    "services.TransformerRunner.runner_connection.max_requests": "1000000000",
    "services.TransformerRunner.runner_connection.max_age": "1000000000.0",
}
NO_TOKENIZER_THREADS = {"TOKENIZERS_PARALLELISM": "false"}
MODEL_THREAD_PATCH = "runner-model-thread.patch"


def composition_suite() -> list[ServerSpec]:
    def row(name: str, description: str, **kwargs: object) -> ServerSpec:
        return ServerSpec(name, "bentoml", description, group="composition", **kwargs)  # type: ignore[arg-type]

    return [
        row("defaults", "the project as committed"),
        ServerSpec(
            "runner alone (no entry, no hop)",
            "bentoml-runner",
            "bentoml serve runners.transformer:TransformerRunner; POST /predict with one item per request",
            group="composition",
        ),
        row(
            "TOKENIZERS_PARALLELISM=false",
            "the Rust tokenizer encodes on the calling thread instead of its own thread pool",
            env=NO_TOKENIZER_THREADS,
        ),
        row(
            "runner session kept (runner_connection)",
            "services.TransformerRunner.runner_connection max_requests/max_age 1e9: the entry's client "
            "never replaces its session to the runner (configuration.yaml sets this for CPUSentimentRunner only)",
            config_options=KEEP_RUNNER_SESSION,
        ),
        row(
            "runner access log off",
            "services.TransformerRunner.logging.access.enabled=false: the internal hop is not logged a second "
            "time (the public request is still logged by the entry service)",
            config_options=NO_RUNNER_ACCESS_LOG,
        ),
        row("all access logs off", "services.logging.access.enabled=false", config_options=NO_ACCESS_LOG),
        row("prediction records off", "services.monitoring.enabled=false", config_options=NO_MONITORING),
        row(
            "runner on a dedicated model thread",
            f"bench/variants/{MODEL_THREAD_PATCH}: torch loads and runs on one thread of its own; the runner's "
            "event loop reads and answers requests while a batch computes",
            patches=(MODEL_THREAD_PATCH,),
        ),
        row(
            "proposed: session kept + runner access log off + model thread",
            "the three changes proposed for the composition, together",
            config_options={**KEEP_RUNNER_SESSION, **NO_RUNNER_ACCESS_LOG},
            patches=(MODEL_THREAD_PATCH,),
        ),
    ]


def _gpu(**knobs: int) -> dict[str, object]:
    return {"runners": {"gpu": knobs}}


def knobs_suite() -> list[ServerSpec]:
    rows = []
    for size, latency, threads in [
        (64, 5000, 2),  # the committed defaults
        (16, 5000, 2),
        (32, 5000, 2),
        (128, 5000, 2),
        (64, 1000, 2),
        (64, 60000, 2),
        (64, 5000, 1),
    ]:
        overrides: dict[str, object] = _gpu(max_batch_size=size, max_latency_ms=latency, torch_threads=threads)
        if size < 64:
            overrides["limits"] = {"max_batch_texts": size}
        rows.append(
            ServerSpec(
                f"max_batch_size {size}, max_latency_ms {latency}, torch_threads {threads}",
                "bentoml",
                "runners.gpu in a serving.yaml copy",
                serving_overrides=overrides,
                group="knobs",
            )
        )
    return rows


SUITES = {"main": main_suite, "composition": composition_suite, "knobs": knobs_suite}
