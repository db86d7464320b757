"""Closed-loop HTTP load with wrk: a fixed number of POST requests at a fixed concurrency.

wrk is a small C program (one thread here, driving all connections with epoll), so the load generator
costs a few percent of one core instead of the core a Python load generator would take from the
servers being measured. Its CPU time is measured and reported with every point.
"""

from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import time
from dataclasses import dataclass, field
from pathlib import Path

LUA_SCRIPT = Path(__file__).resolve().parent / "wrk_post.lua"


class LoadGenError(RuntimeError):
    pass


def wrk_binary() -> str:
    found = shutil.which("wrk")
    if not found:
        raise LoadGenError("wrk is not installed (Debian/Ubuntu: apt-get install wrk)")
    return found


def wrk_version() -> str:
    out = subprocess.run([wrk_binary(), "--version"], capture_output=True, text=True, check=False)
    first = (out.stdout + out.stderr).splitlines()[0].strip()  # "wrk 4.1.0 [epoll] Copyright ..."
    return first.split(" Copyright")[0]


@dataclass
class LoadResult:
    concurrency: int
    requests: int  # responses received (any status)
    seconds: float
    ok: int  # 2xx responses
    statuses: dict[str, int]
    socket_errors: dict[str, int]
    latency_ms: dict[str, float]
    loadgen_cores: float
    extra: dict[str, object] = field(default_factory=dict)

    @property
    def ok_per_s(self) -> float:
        return self.ok / self.seconds if self.seconds > 0 else 0.0


def run_wrk(
    url: str, bodies: Path, concurrency: int, requests: int, timeout_s: float = 60.0, max_seconds: int = 600
) -> LoadResult:
    """``requests`` POSTs at ``concurrency`` connections, cycling through the bodies file.

    wrk itself only knows durations: the Lua script stops its thread after ``requests`` responses and
    prints ``BENCH_DONE``; on that line wrk gets SIGINT, which ends its wait and makes it report.
    """
    cmd = [
        wrk_binary(),
        "-t1",
        f"-c{concurrency}",
        f"-d{max_seconds}s",
        f"--timeout={int(timeout_s)}s",
        "-s",
        str(LUA_SCRIPT),
        url,
        "--",
        str(bodies),
        str(requests),
    ]
    started = time.perf_counter()
    proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, bufsize=1)
    lines: list[str] = []
    try:
        assert proc.stdout is not None
        for line in proc.stdout:
            lines.append(line.rstrip("\n"))
            if line.startswith("BENCH_DONE"):
                proc.send_signal(signal.SIGINT)
        _, status, usage = os.wait4(proc.pid, 0)
        proc.returncode = os.waitstatus_to_exitcode(status)
    finally:
        if proc.returncode is None:
            proc.kill()
            proc.wait()
    wall = time.perf_counter() - started
    text = "\n".join(lines)
    found = next((ln for ln in lines if ln.startswith("BENCH_RESULT ")), None)
    if proc.returncode != 0 or found is None:
        raise LoadGenError(f"wrk failed (exit {proc.returncode}):\n{text[-2000:]}")
    data = json.loads(found.removeprefix("BENCH_RESULT "))
    seconds = data["duration_us"] / 1e6
    statuses = {str(k): int(v) for k, v in data["statuses"].items()}
    ok = sum(v for k, v in statuses.items() if 200 <= int(k) < 300)
    return LoadResult(
        concurrency=concurrency,
        requests=int(data["responses"]),
        seconds=seconds,
        ok=ok,
        statuses=statuses,
        socket_errors=data["socket_errors"],
        latency_ms={k: round(v / 1000, 2) for k, v in data["latency_us"].items()},
        loadgen_cores=round((usage.ru_utime + usage.ru_stime) / wall, 3),
    )
