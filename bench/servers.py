"""Start, probe and stop the servers under test, each a child process tree bound to 127.0.0.1.

- ``bentoml``: the project itself, ``bentoml serve service:BundleService`` with configuration.yaml,
  optionally a modified copy of serving.yaml (``BUNDLE_SERVING_CONFIG``), extra BentoML config
  options and extra environment variables. Requests go to the public ``POST /sentiment``.
- ``bentoml-runner``: the GPURunner served alone (no entry service), ``POST /predict`` with
  the runner's internal item list: the composition's cost is the difference to ``bentoml``.
- ``fastapi``: the same model behind a plain FastAPI app under uvicorn, no batching.
- ``ray``: the same model behind Ray Serve with ``@serve.batch``.
- ``litserve``: the same model behind LitServe with its batching (``max_batch_size``, ``batch_timeout``).
- ``mlserver``: the same model as an MLServer runtime with its adaptive batching, Open Inference Protocol.

How each peer starts is one entry of ``bench/peers/launch.py``.

Every peer starts with its proxy variables pointed at a closed loopback port: a peer that phones home
(Ray's usage-stats probe asks the cloud metadata addresses at start) then fails on this machine instead
of reaching off it, while loopback traffic stays direct; the report lists any socket a server's
processes hold off loopback (``procstat.sockets_off_loopback``).
"""

from __future__ import annotations

import copy
import json
import logging
import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
import urllib.error
import urllib.request
from collections.abc import Callable, Iterator
from contextlib import contextmanager, suppress
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

from bench import procstat
from bench.peers.launch import PEERS, Start

ROOT = Path(__file__).resolve().parent.parent
VARIANTS = Path(__file__).resolve().parent / "variants"
logger = logging.getLogger(__name__)


@dataclass(frozen=True)
class ServerSpec:
    """One server configuration. ``name`` is the row label in the report."""

    name: str
    kind: str  # bentoml | bentoml-runner | a peer of bench/peers/launch.py (fastapi, litserve, mlserver, ray)
    description: str = ""
    serving_overrides: dict[str, Any] = field(default_factory=dict)  # deep-merged into serving.yaml
    serving_replace: dict[str, Any] = field(default_factory=dict)  # top-level sections replaced outright
    config_options: dict[str, str] = field(default_factory=dict)  # BENTOML_CONFIG_OPTIONS key=value
    env: dict[str, str] = field(default_factory=dict)
    workers: int = 1  # fastapi
    torch_threads: int = 2  # fastapi, ray
    peer_batch: dict[str, float] = field(default_factory=dict)  # ray, litserve: max_batch_size, wait_ms, max_ongoing
    group: str = "main"  # which table the row belongs to
    patches: tuple[str, ...] = ()  # bench/variants/*.patch applied to a copy of the project's code


class VariantError(RuntimeError):
    """A variant's patch does not apply to the current code (it changed since the patch was written)."""


@dataclass
class RunningServer:
    spec: ServerSpec
    url: str  # the endpoint the load goes to
    base: str
    process: subprocess.Popen[bytes]
    log_path: Path
    role: Callable[[str], str]
    metrics_url: str | None = None
    info: dict[str, Any] = field(default_factory=dict)

    def roots(self) -> list[int]:
        return [self.process.pid]


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def http(method: str, url: str, body: Any = None, timeout: float = 30.0) -> tuple[int, bytes]:
    data = None if body is None else json.dumps(body).encode()
    req = urllib.request.Request(url, data=data, method=method, headers={"content-type": "application/json"})
    try:
        with urllib.request.urlopen(req, timeout=timeout) as resp:
            return resp.status, resp.read()
    except urllib.error.HTTPError as exc:
        return exc.code, exc.read()


def deep_merge(base: dict[str, Any], extra: dict[str, Any]) -> dict[str, Any]:
    out = copy.deepcopy(base)
    for key, value in extra.items():
        if isinstance(value, dict) and isinstance(out.get(key), dict):
            out[key] = deep_merge(out[key], value)
        else:
            out[key] = copy.deepcopy(value)
    return out


def bentoml_role(cmd: str) -> str:
    if "--service-name GPURunner" in cmd:
        return "GPURunner"
    if "--service-name CPURunner" in cmd:
        return "CPURunner"
    if "_bentoml_impl.worker.service" in cmd:
        return "entry (BundleService)"
    if "bentoml serve" in cmd or "bentoml.__main__" in cmd:
        return "arbiter"
    return "other"


# Proxies at a closed loopback port (discard, 9): what a peer tries to reach outside fails here at once.
NO_EGRESS = {
    **{k: "http://127.0.0.1:9" for k in ("http_proxy", "https_proxy", "HTTP_PROXY", "HTTPS_PROXY")},
    **{k: "127.0.0.1,localhost,::1" for k in ("no_proxy", "NO_PROXY")},
}


class Launcher:
    """Starts servers for one benchmark run; everything temporary lives in ``workdir``."""

    def __init__(
        self,
        workdir: Path,
        bentoml_home: str,
        peers_python: Path | None,
        model_path: str,
        model_tag: str,
        mlserver_python: Path | None = None,
    ):
        self.workdir = workdir
        self.mlserver_python = mlserver_python
        self.bentoml_home = bentoml_home
        self.peers_python = peers_python
        self.model_path = model_path
        self.model_tag = model_tag
        self.logs = workdir / "logs"
        self.logs.mkdir(parents=True, exist_ok=True)
        self._sources: dict[tuple[str, ...], Path] = {}

    def source_tree(self, patches: tuple[str, ...]) -> Path:
        """The project's code with ``patches`` applied, in a copy (the working tree is never touched)."""
        if not patches:
            return ROOT
        if patches in self._sources:
            return self._sources[patches]
        listed = subprocess.run(
            ["git", "ls-files", "--cached", "--others", "--exclude-standard", "-z"],
            cwd=ROOT,
            capture_output=True,
            check=True,
        ).stdout.split(b"\0")
        target = self.workdir / f"src-{len(self._sources)}"
        for raw in listed:
            if not raw:
                continue
            rel = Path(raw.decode())
            if rel.parts[0] in ("bench", "tests", "results", "deploy") or not (ROOT / rel).is_file():
                continue
            (target / rel).parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(ROOT / rel, target / rel)
        for name in patches:

            def patch(*flags: str, name: str = name) -> subprocess.CompletedProcess[str]:
                # --force: ask nothing, and never guess that a patch is reversed (--batch would).
                cmd = ["patch", "-p1", "--force", "-d", str(target), "-i", str(VARIANTS / name), *flags]
                return subprocess.run(cmd, capture_output=True, text=True, check=False)

            if patch("--dry-run").returncode == 0:
                res = patch()
                if res.returncode != 0:
                    raise VariantError(f"{name} did not apply:\n{res.stdout}{res.stderr}")
            elif patch("--reverse", "--dry-run").returncode == 0:
                logger.info("%s is already part of the code; nothing to apply", name)
            else:
                res = patch("--dry-run")
                raise VariantError(f"{name} does not apply to the current code:\n{res.stdout}{res.stderr}")
        self._sources[patches] = target
        return target

    def base_env(self, root: Path = ROOT) -> dict[str, str]:
        env = dict(os.environ)
        for key in ("BUNDLE_SERVING_CONFIG", "BENTOML_CONFIG_OPTIONS", "PYTHONPATH"):
            env.pop(key, None)
        env.update(
            {
                "BENTOML_HOME": self.bentoml_home,
                "BENTOML_CONFIG": str(root / "configuration.yaml"),
                "BENTOML_DO_NOT_TRACK": "true",
                "HF_HUB_OFFLINE": "1",
                "TRANSFORMERS_OFFLINE": "1",
                "PYTHONUNBUFFERED": "1",
            }
        )
        return env

    @contextmanager
    def start(self, spec: ServerSpec, ready_timeout: float = 300.0) -> Iterator[RunningServer]:
        root = self.source_tree(spec.patches)
        port = free_port()
        log_path = self.logs / f"{spec.name.replace(' ', '_').replace('/', '_')}-{port}.log"
        env = self.base_env(root)
        env.update(spec.env)
        base = f"http://127.0.0.1:{port}"
        ready_dir: Path | None = None
        if spec.kind in ("bentoml", "bentoml-runner"):
            serving = yaml.safe_load((root / "serving.yaml").read_text())
            if spec.serving_overrides:
                serving = deep_merge(serving, spec.serving_overrides)
            serving.update(spec.serving_replace)
            serving_path = self.workdir / f"serving-{port}.yaml"
            serving_path.write_text(yaml.safe_dump(serving, sort_keys=False))
            env["BUNDLE_SERVING_CONFIG"] = str(serving_path)
            options = {"services.monitoring.options.log_path": str(self.workdir / "monitoring"), **spec.config_options}
            env["BENTOML_CONFIG_OPTIONS"] = " ".join(f"{k}={v}" for k, v in options.items())
            target = "service:BundleService" if spec.kind == "bentoml" else "runners.profiles:GPURunner"
            cmd = [sys.executable, "-m", "bentoml", "serve", target, "--host", "127.0.0.1", "--port", str(port)]
            role: Callable[[str], str] = bentoml_role
            url = f"{base}/sentiment" if spec.kind == "bentoml" else f"{base}/predict"
            metrics_url: str | None = f"{base}/metrics"
            info: dict[str, Any] = {
                "serving_yaml_runners": serving.get("runners", {}),
                "serving_yaml_limits": serving.get("limits", {}),
                "bentoml_config_options": options,
                "model_tag": self.model_tag,
                "patches": list(spec.patches),
            }
        elif spec.kind in PEERS:
            peer = PEERS[spec.kind]
            python = self.mlserver_python if peer.environment == "mlserver" else self.peers_python
            if python is None:
                which = f"--name {peer.environment}" if peer.environment != "peers" else ""
                raise RuntimeError(f"{spec.name} needs its environment (python -m bench.peers_env {which})")
            ready_dir = Path(tempfile.mkdtemp(prefix="ready-", dir=self.workdir))
            env.update(
                {
                    "BENCH_MODEL_PATH": self.model_path,
                    "BENCH_MODEL_TAG": self.model_tag,
                    "BENCH_TORCH_THREADS": str(spec.torch_threads),
                    "BENCH_READY_DIR": str(ready_dir),
                    "PYTHONPATH": str(ROOT),
                    **NO_EGRESS,
                    **peer.env,
                }
            )
            folder = Path(tempfile.mkdtemp(prefix=f"{spec.kind}-", dir=self.workdir))
            cmd = peer.command(Start(python, port, spec, folder, free_port))
            role = peer.role
            url = base + peer.path
            metrics_url = None
            info = {"workers": spec.workers, "torch_threads": spec.torch_threads, **spec.peer_batch}
        else:
            raise ValueError(f"unknown server kind {spec.kind!r}")

        log = log_path.open("w")
        proc = subprocess.Popen(cmd, cwd=root, env=env, stdout=log, stderr=subprocess.STDOUT, start_new_session=True)
        server = RunningServer(spec, url, base, proc, log_path, role, metrics_url, info)
        started = time.monotonic()
        try:
            self._wait_ready(server, ready_dir, started + ready_timeout)
            server.info["start_seconds"] = round(time.monotonic() - started, 1)
            logger.info("%s ready on %s in %.0f s", spec.name, base, server.info["start_seconds"])
            yield server
        finally:
            self._stop(server)
            log.close()

    def _wait_ready(self, server: RunningServer, ready_dir: Path | None, deadline: float) -> None:
        spec = server.spec
        while True:
            if server.process.poll() is not None:
                tail = server.log_path.read_text()[-3000:]
                raise RuntimeError(f"{spec.name} exited with {server.process.returncode} before it was ready:\n{tail}")
            if time.monotonic() > deadline:
                raise TimeoutError(f"{spec.name} was not ready in time; log: {server.log_path}")
            try:
                if ready_dir is not None:
                    expected = PEERS[spec.kind].ready_files(spec)
                    if len(list(ready_dir.iterdir())) >= expected:
                        return
                elif http("GET", f"{server.base}/readyz", timeout=2)[0] == 200:
                    return
            except OSError:
                pass
            time.sleep(0.5)

    def _stop(self, server: RunningServer) -> None:
        proc = server.process
        leftovers = procstat.tree(proc.pid)  # every process we started, by pid and start time
        if proc.poll() is None:
            with suppress(ProcessLookupError):
                os.killpg(proc.pid, signal.SIGTERM)
            try:
                proc.wait(timeout=60)
            except subprocess.TimeoutExpired:
                os.killpg(proc.pid, signal.SIGKILL)
                proc.wait()

        # Processes that left the group (Ray starts some in sessions of their own): end them by pid,
        # and only while the pid still belongs to the process we started (same start time).
        def alive() -> list[int]:
            out = []
            for pid, start in leftovers:
                current = procstat._read(pid)
                if current is not None and current.start == start:
                    out.append(pid)
            return out

        for sig, wait in ((signal.SIGTERM, 10.0), (signal.SIGKILL, 5.0)):
            pids = alive()
            if not pids:
                return
            for pid in pids:
                with suppress(ProcessLookupError):
                    os.kill(pid, sig)
            deadline = time.monotonic() + wait
            while alive() and time.monotonic() < deadline:
                time.sleep(0.25)


def oip_body(text: str) -> dict[str, Any]:
    """An Open Inference Protocol request for one text (what MLServer's clients send)."""
    return {"inputs": [{"name": "text", "shape": [1], "datatype": "BYTES", "data": [text]}]}


def probe(server: RunningServer, texts: list[str]) -> list[float]:
    """The positive-class probability the server gives each text (one request per text)."""
    out = []
    for text in texts:
        if server.spec.kind == "bentoml-runner":
            tag = server.info["model_tag"]
            status, body = http("POST", server.url, {"items": [{"model_tag": tag, "text": text}]})
            data = json.loads(body)
            if status != 200:
                raise RuntimeError(f"{server.spec.name}: probe answered {status}: {body[:300]!r}")
            out.append(float(data[0]["probabilities"][1]))
        elif server.spec.kind == "mlserver":
            status, body = http("POST", server.url, oip_body(text))
            if status != 200:
                raise RuntimeError(f"{server.spec.name}: probe answered {status}: {body[:300]!r}")
            out.append(float(json.loads(body)["outputs"][0]["data"][1]))
        else:
            status, body = http("POST", server.url, {"text": text, "model": "transformer"})
            if status != 200:
                raise RuntimeError(f"{server.spec.name}: probe answered {status}: {body[:300]!r}")
            out.append(float(json.loads(body)["probabilities"]["positive"]))
    return out
