"""How each peer server starts, where its requests go, and which of its processes does what.

A peer is a row in ``PEERS``: the command line that serves the same fine-tuned weights the way that
server's users would, the endpoint the load goes to, extra environment, how many ready files its
workers write (``BENCH_READY_DIR``), and a ``role`` that names each of its processes in the CPU table.
Adding a peer is one app under ``bench/peers/`` and one entry here; ``bench/servers.py`` does the rest
(environment, no egress, readiness, stopping, the probe).
"""

from __future__ import annotations

import json
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from bench.servers import ServerSpec

HERE = Path(__file__).resolve().parent
BATCH_DEFAULTS = {"max_batch_size": 64, "wait_ms": 5}


@dataclass(frozen=True)
class Start:
    """What a peer's command line is built from."""

    python: Path  # the peer environment's interpreter
    port: int
    spec: ServerSpec
    folder: Path  # a fresh folder of its own, for settings files
    free_port: Callable[[], int]  # for the extra ports a peer opens


@dataclass(frozen=True)
class Peer:
    command: Callable[[Start], list[str]]  # the argv that serves the model
    role: Callable[[str], str]
    path: str = "/sentiment"  # the endpoint the load goes to
    environment: str = "peers"  # bench.peers_env: which virtual environment runs it
    env: dict[str, str] = field(default_factory=dict)
    one_ready_file_per_worker: bool = False

    def ready_files(self, spec: ServerSpec) -> int:
        return spec.workers if self.one_ready_file_per_worker else 1


def batch_of(spec: ServerSpec, **defaults: float) -> dict[str, float]:
    return {**BATCH_DEFAULTS, **defaults, **spec.peer_batch}


def fastapi_command(start: Start) -> list[str]:
    # The same HTTP stack BentoML runs on in the project's environment (asyncio loop, h11), so the
    # comparison is about batching and composition, not about uvloop/httptools.
    # bench.peers.fastapi_serve: uvicorn workers with one SO_REUSEPORT socket each (see there).
    cmd = [str(start.python), "-m", "bench.peers.fastapi_serve", "bench.peers.fastapi_app:app"]
    cmd += ["--host", "127.0.0.1", "--port", str(start.port), "--workers", str(start.spec.workers)]
    return cmd + ["--loop", "asyncio", "--http", "h11", "--log-level", "warning"]


def fastapi_role(cmd: str) -> str:
    return "uvicorn worker" if "--reuse-port-worker" in cmd else "uvicorn"


def litserve_command(start: Start) -> list[str]:
    batch = batch_of(start.spec)
    cmd = [str(start.python), str(HERE / "litserve_app.py"), "--port", str(start.port)]
    cmd += ["--workers", str(start.spec.workers), "--max-batch-size", str(int(batch["max_batch_size"]))]
    return cmd + ["--batch-timeout-ms", str(batch["wait_ms"])]


def litserve_role(cmd: str) -> str:
    return "litserve" if "litserve_app" in cmd else "litserve worker"


def mlserver_command(start: Start) -> list[str]:
    batch = batch_of(start.spec)
    # parallel_workers 0: inference in the server process (≥ 1 crashes with uvloop ≥ 0.22, and 0 measured
    # best here); MLServer always opens gRPC and metrics ports too, so they are bound to loopback as well.
    settings = {
        "host": "127.0.0.1",
        "http_port": start.port,
        "grpc_port": start.free_port(),
        "metrics_port": start.free_port(),
        "parallel_workers": 0,
        "debug": False,
    }
    (start.folder / "settings.json").write_text(json.dumps(settings))
    model_settings = {
        "name": "sentiment",
        "implementation": "bench.peers.mlserver_runtime.SentimentRuntime",
        "max_batch_size": int(batch["max_batch_size"]),
        "max_batch_time": batch["wait_ms"] / 1000,
    }
    (start.folder / "model-settings.json").write_text(json.dumps(model_settings))
    return [str(start.python), "-m", "mlserver.cli.main", "start", str(start.folder)]


def ray_command(start: Start) -> list[str]:
    batch = batch_of(start.spec, max_ongoing=256)
    cmd = [str(start.python), str(HERE / "ray_app.py"), "--port", str(start.port)]
    cmd += ["--max-batch-size", str(int(batch["max_batch_size"])), "--wait-ms", str(batch["wait_ms"])]
    return cmd + ["--max-ongoing", str(int(batch["max_ongoing"]))]


def ray_role(cmd: str) -> str:
    for marker, name in [
        ("ServeReplica", "replica"),
        ("ProxyActor", "proxy"),
        ("ServeController", "controller"),
        ("raylet", "raylet"),
        ("gcs_server", "gcs"),
        ("ray_app", "driver"),
    ]:
        if marker in cmd:
            return name
    return "ray (other)"


PEERS: dict[str, Peer] = {
    "fastapi": Peer(fastapi_command, fastapi_role, one_ready_file_per_worker=True),
    "litserve": Peer(litserve_command, litserve_role, one_ready_file_per_worker=True),
    "mlserver": Peer(
        mlserver_command, lambda cmd: "mlserver", path="/v2/models/sentiment/infer", environment="mlserver"
    ),
    "ray": Peer(
        ray_command,
        ray_role,
        # Every Ray component on loopback (the node's own address otherwise), no usage statistics.
        env={
            "RAY_ENABLE_WINDOWS_OR_OSX_CLUSTER": "0",
            "RAY_USAGE_STATS_ENABLED": "0",
            "RAY_DISABLE_DOCKER_CPU_WARNING": "1",
            "RAY_SERVE_HTTP_HOST": "127.0.0.1",
        },
    ),
}
