"""CPU time per process from /proc: how many cores each part of a server used during one point.

A snapshot maps every process of a tree (the server's root process and all its descendants) to its
user+system CPU seconds; the difference of two snapshots divided by the wall time is the number of
cores that process kept busy. Processes are grouped into roles by a caller-supplied function of their
command line (entry service, runner, arbiter, Ray's raylet, ...). The whole machine's busy time is read
from /proc/stat too, so a point measured while something else ran shows it.
"""

from __future__ import annotations

import os
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

CLOCK_TICKS = os.sysconf("SC_CLK_TCK")


@dataclass(frozen=True)
class Proc:
    pid: int
    ppid: int
    start: int  # start time in clock ticks: with the pid, identifies a process across snapshots
    cpu_s: float
    cmdline: str


def _read(pid: int) -> Proc | None:
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
        cmd = Path(f"/proc/{pid}/cmdline").read_bytes().replace(b"\0", b" ").decode(errors="replace").strip()
    except (FileNotFoundError, ProcessLookupError, PermissionError):
        return None
    # The command name in parentheses may contain spaces: split after the last ')'.
    fields = stat[stat.rindex(")") + 2 :].split()
    ppid, utime, stime, start = int(fields[1]), int(fields[11]), int(fields[12]), int(fields[19])
    if not cmd:
        cmd = stat[stat.index("(") + 1 : stat.rindex(")")]
    return Proc(pid, ppid, start, (utime + stime) / CLOCK_TICKS, cmd)


def tree(root: int) -> dict[tuple[int, int], Proc]:
    """``root`` and all its descendants, keyed by (pid, start time)."""
    procs = [p for p in (_read(int(d)) for d in os.listdir("/proc") if d.isdigit()) if p is not None]
    children: dict[int, list[Proc]] = {}
    for p in procs:
        children.setdefault(p.ppid, []).append(p)
    found: dict[tuple[int, int], Proc] = {}
    stack = [p for p in procs if p.pid == root]
    while stack:
        p = stack.pop()
        found[(p.pid, p.start)] = p
        stack.extend(children.get(p.pid, []))
    return found


def machine_busy_s() -> tuple[float, float]:
    """(busy CPU seconds of all cores, total CPU seconds of all cores) since boot."""
    fields = [int(x) for x in Path("/proc/stat").read_text().splitlines()[0].split()[1:]]
    idle = fields[3] + fields[4]  # idle + iowait
    total = sum(fields[:8])  # guest time is already counted in user
    return (total - idle) / CLOCK_TICKS, total / CLOCK_TICKS


@dataclass
class Snapshot:
    procs: dict[tuple[int, int], Proc]
    busy_s: float
    total_s: float


def snapshot(roots: list[int]) -> Snapshot:
    procs: dict[tuple[int, int], Proc] = {}
    for root in roots:
        procs.update(tree(root))
    busy, total = machine_busy_s()
    return Snapshot(procs, busy, total)


def cores_by_role(before: Snapshot, after: Snapshot, seconds: float, role: Callable[[str], str]) -> dict[str, float]:
    """Cores used per role between two snapshots (processes started in between count from zero)."""
    used: dict[str, float] = {}
    for key, p in after.procs.items():
        start_cpu = before.procs[key].cpu_s if key in before.procs else 0.0
        name = role(p.cmdline)
        used[name] = used.get(name, 0.0) + (p.cpu_s - start_cpu) / seconds
    return {k: round(v, 3) for k, v in sorted(used.items()) if v >= 0.0005}


def machine_cores(before: Snapshot, after: Snapshot) -> float:
    """Cores the whole machine kept busy between the snapshots (everything, not just the server)."""
    wall_cpu = after.total_s - before.total_s
    if wall_cpu <= 0:
        return 0.0
    return round((after.busy_s - before.busy_s) / wall_cpu * (os.cpu_count() or 1), 3)


def sockets_off_loopback(pids: set[int]) -> list[str]:
    """TCP sockets of these processes whose local address is not loopback (``ss -tanp``).

    A server under test must listen and talk on 127.0.0.1 only; anything listed here says otherwise.
    """
    import re
    import subprocess

    out = subprocess.run(["ss", "-tanpH"], capture_output=True, text=True, check=False).stdout
    offending = []
    for line in out.splitlines():
        owners = {int(p) for p in re.findall(r"pid=(\d+)", line)}
        if not owners & pids:
            continue
        fields = line.split()
        local = fields[3] if len(fields) > 3 else ""
        host = local.rsplit(":", 1)[0].strip("[]")
        if host not in ("127.0.0.1", "::1", "::ffff:127.0.0.1") and not host.startswith("127."):
            offending.append(line.strip())
    return offending
