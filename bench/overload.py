"""Overload measurement: what a running service answers when offered more than it can do.

    python -m bench.overload --url http://127.0.0.1:3000 --concurrency 256 --seconds 60
    python -m bench.overload --wedge GPURunner --seconds 20     # SIGSTOP that runner for the run

Closed loop: ``--concurrency`` clients (honouring ``Retry-After``, as the SDK does) each send long texts
(``--chars`` characters, one per request, routed to the default sentiment model) back to back for
``--seconds``. Every answer is counted by status; the latency percentiles are of the answered (200)
requests, as the client saw them and as the service reports them (``elapsed_ms``). With ``--wedge`` the
named runner process (found on this machine) is stopped with SIGSTOP for the run and resumed after it,
and each client sends one kind of request (routed, explicit, ensemble, /embed), so the table shows what
each kind of request got and how long it took. Prints a table and writes ``--out`` (JSON).
"""

from __future__ import annotations

import argparse
import asyncio
import collections
import json
import os
import platform
import signal
import statistics
import time
from pathlib import Path
from typing import Any

import httpx

from bundle import samples
from tasks.embedding.runtimes import cpu_model

KINDS: dict[str, tuple[str, dict[str, Any]]] = {
    "routed /sentiment": ("/sentiment", {}),
    "explicit transformer": ("/sentiment", {"model": "transformer"}),
    "explicit logreg": ("/sentiment", {"model": "logreg"}),
    "ensemble": ("/sentiment/ensemble", {}),
    "embed": ("/embed", {}),
}


def long_text(chars: int, i: int) -> str:
    base = f"{samples.MIXED} {samples.NEGATIVE} {samples.POSITIVE} "
    return f"#{i} " + (base * (chars // len(base) + 1))[:chars]


def body_of(kind: str, text: str) -> tuple[str, dict[str, Any]]:
    path, extra = KINDS[kind]
    return path, ({"texts": [text], **extra} if path == "/embed" else {"text": text, **extra})


async def run(url: str, concurrency: int, seconds: float, chars: int, kinds: list[str]) -> dict[str, Any]:
    results: dict[str, list[tuple[int | str, float]]] = collections.defaultdict(list)
    in_service: dict[str, list[float]] = collections.defaultdict(list)  # elapsed_ms the service reports
    degraded: collections.Counter[str] = collections.Counter()  # 200s answered by the cheaper model
    stop_at = time.monotonic() + seconds
    limits = httpx.Limits(max_connections=concurrency, max_keepalive_connections=concurrency)
    async with httpx.AsyncClient(base_url=url, timeout=120, limits=limits) as client:

        async def user(n: int) -> None:
            i = 0
            while time.monotonic() < stop_at:
                kind = kinds[n % len(kinds)]  # each client sends one kind, so every kind gets a steady stream
                path, body = body_of(kind, long_text(chars, n * 100_000 + i))
                started = time.monotonic()
                retry_after = 0.0
                try:
                    r = await client.post(path, json=body)
                    status: int | str = r.status_code
                    if r.status_code in (429, 503):
                        if "retry-after" in r.headers:
                            retry_after = float(r.headers["retry-after"])
                        else:
                            status = f"{r.status_code} without Retry-After"
                    elif r.status_code == 200:
                        answer = r.json()
                        in_service[kind].append(answer["elapsed_ms"])
                        degraded[kind] += bool(answer.get("degraded"))
                except httpx.HTTPError as exc:
                    status = type(exc).__name__
                results[kind].append((status, time.monotonic() - started))
                i += 1
                if retry_after:  # a client that honours Retry-After, as the SDK does
                    await asyncio.sleep(min(retry_after, max(0.0, stop_at - time.monotonic())))

        await asyncio.gather(*(user(n) for n in range(concurrency)))
    table = {}
    for kind, rows in results.items():
        ok = sorted(s for status, s in rows if status == 200)
        refused = [s for status, s in rows if status != 200]
        table[kind] = {
            "requests": len(rows),
            "statuses": dict(collections.Counter(str(status) for status, _ in rows)),
            "degraded": degraded[kind],
            "answered_p50_ms": round(1000 * statistics.median(ok), 1) if ok else None,
            "answered_p99_ms": round(1000 * ok[min(len(ok) - 1, int(0.99 * len(ok)))], 1) if ok else None,
            "refused_p50_ms": round(1000 * statistics.median(refused), 1) if refused else None,
            "refused_max_ms": round(1000 * max(refused), 1) if refused else None,
            "in_service_p99_ms": round(sorted(in_service[kind])[int(0.99 * (len(in_service[kind]) - 1))], 1)
            if in_service[kind]
            else None,
        }
    return table


def runner_pid(name: str) -> int:
    import psutil

    for proc in psutil.process_iter(["cmdline"]):
        if f"--service-name {name}" in " ".join(proc.info["cmdline"] or []):
            return proc.pid
    raise SystemExit(f"no process of {name} found on this machine")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--url", default="http://127.0.0.1:3000")
    parser.add_argument("--concurrency", type=int, default=256)
    parser.add_argument("--seconds", type=float, default=60)
    parser.add_argument("--chars", type=int, default=2000, help="characters per text")
    parser.add_argument("--wedge", help="runner service to SIGSTOP during the run, e.g. GPURunner")
    parser.add_argument("--out", type=Path, default=Path("results/overload/overload.json"))
    args = parser.parse_args(argv)

    kinds = list(KINDS) if args.wedge else ["routed /sentiment"]
    pid = runner_pid(args.wedge) if args.wedge else None
    if pid:
        os.kill(pid, signal.SIGSTOP)
    try:
        table = asyncio.run(run(args.url, args.concurrency, args.seconds, args.chars, kinds))
    finally:
        if pid:
            os.kill(pid, signal.SIGCONT)
    print(
        f"{args.concurrency} clients, {args.seconds:g} s, texts of {args.chars} characters"
        + (f", {args.wedge} stopped (SIGSTOP) throughout" if args.wedge else "")
    )
    print(
        f"{'request':<22} {'sent':>6}  {'statuses':<40} {'p50 ok':>8} {'p99 ok':>8} {'p99 in service':>14} "
        f"{'p50 refused':>11}"
    )
    for kind, row in table.items():
        statuses = ", ".join(f"{k}: {v}" for k, v in sorted(row["statuses"].items()))
        if row["degraded"]:
            statuses += f" ({row['degraded']} degraded)"
        print(
            f"{kind:<22} {row['requests']:>6}  {statuses:<40} {row['answered_p50_ms'] or '-':>8} "
            f"{row['answered_p99_ms'] or '-':>8} {row['in_service_p99_ms'] or '-':>14} "
            f"{row['refused_p50_ms'] or '-':>11}"
        )
    args.out.parent.mkdir(parents=True, exist_ok=True)
    facts = {
        "machine": platform.processor() or platform.machine(),
        "cpu": cpu_model(),
        "cores": os.cpu_count(),
        "date": time.strftime("%Y-%m-%dT%H:%M:%S%z"),
    }
    args.out.write_text(
        json.dumps({"args": {k: str(v) for k, v in vars(args).items()}, **facts, "table": table}, indent=2)
    )
    print(f"written: {args.out}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
