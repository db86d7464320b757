"""The machine a benchmark runs on: what it is, what else keeps it busy, and waiting for it to be quiet.

Every benchmark writes these facts next to its numbers, because timings are only comparable on one
machine, in one run.
"""

from __future__ import annotations

import json
import logging
import os
import platform
import subprocess
import time
from importlib import metadata as importlib_metadata
from pathlib import Path
from typing import Any

from bench import loadgen, procstat
from tasks.embedding.runtimes import cpu_model

logger = logging.getLogger("bench")


def machine_info() -> dict[str, Any]:
    mem_gib = None
    try:
        for line in Path("/proc/meminfo").read_text().splitlines():
            if line.startswith("MemTotal:"):
                mem_gib = round(int(line.split()[1]) / 1024 / 1024, 1)
    except OSError:
        pass
    return {
        "hostname": platform.node(),
        "platform": platform.platform(),
        "cpu_model": cpu_model(),
        "logical_cores": os.cpu_count(),
        "usable_cores": len(os.sched_getaffinity(0)),
        "memory_gib": mem_gib,
        "gpu": "none used (CPU benchmark)",
    }


def _version(dist: str) -> str | None:
    try:
        return importlib_metadata.version(dist)
    except importlib_metadata.PackageNotFoundError:
        return None


def versions(peers_python: Path | None, mlserver_python: Path | None = None) -> dict[str, Any]:
    out: dict[str, Any] = {
        "python": platform.python_version(),
        **{d: _version(d) for d in ("bentoml", "torch", "transformers", "tokenizers", "uvicorn", "starlette")},
        "uvloop_in_project_env": _version("uvloop"),
        "wrk": loadgen.wrk_version(),
    }
    code = (
        "import json, importlib.metadata as m\n"
        "def v(d):\n"
        "    try: return m.version(d)\n"
        "    except m.PackageNotFoundError: return None\n"
        "print(json.dumps({d: v(d) for d in ('ray', 'fastapi', 'uvicorn', 'uvloop', 'litserve', 'mlserver')}))"
    )
    for key, python in (("peers_env", peers_python), ("mlserver_env", mlserver_python)):
        if python is not None:
            res = subprocess.run([str(python), "-c", code], capture_output=True, text=True, check=False)
            if res.returncode == 0:
                out[key] = {k: v for k, v in json.loads(res.stdout).items() if v}
    return out


def load_average() -> list[float]:
    return [round(x, 2) for x in os.getloadavg()]


def other_cores(exclude_roots: list[int], seconds: float = 5.0) -> float:
    """Cores that processes outside ``exclude_roots`` (and this process) keep busy, over ``seconds``."""
    roots = [os.getpid(), *exclude_roots]
    before = procstat.snapshot(roots)
    time.sleep(seconds)
    after = procstat.snapshot(roots)
    ours = sum(procstat.cores_by_role(before, after, seconds, lambda _: "ours").values())
    return max(0.0, procstat.machine_cores(before, after) - ours)


def wait_until_others_idle(exclude_roots: list[int], max_other: float, max_wait_s: float) -> float:
    """Wait until other processes use less than ``max_other`` cores (two 5-s windows in a row).

    Unlike the load average, this ignores the server under test itself and reacts within seconds.
    Returns the seconds waited.
    """
    started = time.monotonic()
    calm = 0
    while time.monotonic() - started < max_wait_s:
        used = other_cores(exclude_roots)
        calm = calm + 1 if used < max_other else 0
        if calm >= 2:
            break
        if calm == 0:
            logger.info("other processes use %.2f cores; waiting", used)
    return round(time.monotonic() - started, 1)


def wait_for_quiet(threshold: float, max_wait_s: float, poll_s: float = 60.0) -> dict[str, Any]:
    """Poll the 1-minute load average until it drops below ``threshold`` or ``max_wait_s`` passes."""
    started = time.monotonic()
    while True:
        load = load_average()
        if load[0] < threshold:
            return {"waited_s": round(time.monotonic() - started), "load_average": load, "quiet": True}
        if time.monotonic() - started >= max_wait_s:
            return {"waited_s": round(time.monotonic() - started), "load_average": load, "quiet": False}
        logger.info("load average %s >= %.2f; waiting %.0f s for a quiet machine", load, threshold, poll_s)
        time.sleep(poll_s)
