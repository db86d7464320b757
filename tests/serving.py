"""Start and stop a real ``bentoml serve`` of the project for integration tests."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import httpx

ROOT = Path(__file__).resolve().parent.parent


class ServerURL(str):
    """The server's URL; ``pid`` is the ``bentoml serve`` process (its runners are its children)."""

    pid: int


@contextmanager
def running_server(port: int, *, env: dict[str, str] | None = None, timeout: float = 120.0) -> Iterator[ServerURL]:
    """Serve ``service:BundleService`` on 127.0.0.1:``port`` until the block exits; yields the URL."""
    full_env = {
        **os.environ,
        "BENTOML_CONFIG": str(ROOT / "configuration.yaml"),
        "BENTOML_DO_NOT_TRACK": "true",
        **(env or {}),
    }
    logs = ROOT / ".pytest_cache"
    logs.mkdir(exist_ok=True)
    log = open(logs / f"serve-{port}.log", "w")  # noqa: SIM115 -- open for the server's whole lifetime
    cmd = [
        sys.executable,
        "-m",
        "bentoml",
        "serve",
        "service:BundleService",
        "--host",
        "127.0.0.1",
        "--port",
        str(port),
    ]
    proc = subprocess.Popen(cmd, cwd=ROOT, env=full_env, stdout=log, stderr=subprocess.STDOUT, start_new_session=True)
    url = ServerURL(f"http://127.0.0.1:{port}")
    url.pid = proc.pid
    try:
        deadline = time.monotonic() + timeout
        while True:
            if proc.poll() is not None:
                raise RuntimeError(f"bentoml serve exited with {proc.returncode} before it was ready")
            try:
                if httpx.get(f"{url}/readyz", timeout=2).status_code == 200:
                    break
            except httpx.TransportError:
                pass
            if time.monotonic() > deadline:
                raise TimeoutError(f"bentoml serve was not ready within {timeout} s")
            time.sleep(0.5)
        yield url
    finally:
        if proc.poll() is None:
            os.killpg(proc.pid, signal.SIGTERM)
            try:
                proc.wait(timeout=30)
            except subprocess.TimeoutExpired:
                os.killpg(proc.pid, signal.SIGKILL)
                proc.wait()
        log.close()
