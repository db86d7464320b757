"""Measuring one server (or the in-process limit): wrk points, CPU per process, batch sizes, repeats.

``measure_server`` starts a server through the ``Launcher``, checks its answers against the in-process
reference, measures every concurrency ``repeats`` times (again when something else disturbed the
machine), and reports the median point. ``run_inprocess`` measures the model without a server, in a
child process with the runner's torch threads.
"""

from __future__ import annotations

import json
import logging
import os
import resource
import statistics
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from bench import loadgen, procstat
from bench.machine import load_average, wait_until_others_idle
from bench.peers.launch import PEERS
from bench.servers import ROOT, Launcher, ServerSpec, probe

logger = logging.getLogger("bench")


def run_inprocess(
    model_path: str,
    bodies: Path,
    threads: int,
    batch_sizes: list[int],
    per_point: int,
    repeats: int,
    forward_batch_size: int | None = None,
    runtime: str = "fp32",
    accuracy: bool = False,
) -> dict[str, Any]:
    cmd = [sys.executable, "-m", "bench.inprocess", "--model-path", model_path, "--sentences", str(bodies)]
    cmd += ["--runtime", runtime] + (["--accuracy"] if accuracy else [])
    cmd += ["--threads", str(threads), "--batch-sizes", ",".join(map(str, batch_sizes))]
    cmd += ["--forward-batch-size", str(forward_batch_size or 0)]
    cmd += ["--sentences-per-point", str(per_point), "--repeats", str(repeats)]
    env = {**os.environ, "HF_HUB_OFFLINE": "1", "TRANSFORMERS_OFFLINE": "1"}
    before_children = resource.getrusage(resource.RUSAGE_CHILDREN)
    before = procstat.snapshot([])
    t0 = time.perf_counter()
    res = subprocess.run(cmd, cwd=ROOT, env=env, capture_output=True, text=True, check=False)
    wall = time.perf_counter() - t0
    after = procstat.snapshot([])
    after_children = resource.getrusage(resource.RUSAGE_CHILDREN)
    if res.returncode != 0:
        raise RuntimeError(f"in-process benchmark failed:\n{res.stderr[-3000:]}")
    out: dict[str, Any] = json.loads(res.stdout.strip().splitlines()[-1])
    child = (
        after_children.ru_utime + after_children.ru_stime - before_children.ru_utime - before_children.ru_stime
    ) / wall
    out["cores"] = round(child, 3)
    out["other_cores"] = round(max(0.0, procstat.machine_cores(before, after) - child), 3)
    return out


def measured_runtimes(model_path: str) -> list[str]:
    """fp32 and every other runtime the stored model was exported to that can run on this CPU."""
    from tasks.embedding import runtimes
    from train.export_runtimes import encoder_dirs

    (folder,) = encoder_dirs(model_path)
    entries = runtimes.read_manifest(folder)["runtimes"]
    others = [n for n, e in entries.items() if n != "fp32" and "skipped" not in e]
    return ["fp32"] + [n for n in others if runtimes.unsupported_reason(n, "cpu") is None]


def reference_probabilities(model_path: str, texts: list[str]) -> list[float]:
    code = (
        "import json, sys\n"
        "from bundle.text import normalize_text\n"
        "from tasks.sentiment.pipelines import load_pipeline\n"
        "p = load_pipeline('transformer', sys.argv[1], device='cpu')\n"
        "texts = json.loads(sys.argv[2])\n"
        "print(json.dumps([float(r[1]) for r in p.predict_proba([normalize_text(t) for t in texts], batch_size=1)]))"
    )
    res = subprocess.run(
        [sys.executable, "-c", code, model_path, json.dumps(texts)],
        cwd=ROOT,
        capture_output=True,
        text=True,
        check=False,
        env={**os.environ, "HF_HUB_OFFLINE": "1", "TRANSFORMERS_OFFLINE": "1"},
    )
    if res.returncode != 0:
        raise RuntimeError(f"reference probabilities failed:\n{res.stderr[-2000:]}")
    return json.loads(res.stdout.strip().splitlines()[-1])


def measure_point(server: Any, bodies: Path, concurrency: int, requests: int) -> dict[str, Any]:
    from bench import metrics

    hist_before = metrics.scrape(server.metrics_url) if server.metrics_url else None
    load_before = load_average()
    snap_before = procstat.snapshot(server.roots())
    t0 = time.perf_counter()
    result = loadgen.run_wrk(server.url, bodies, concurrency, requests)
    wall = time.perf_counter() - t0
    snap_after = procstat.snapshot(server.roots())
    hist_after = metrics.scrape(server.metrics_url) if server.metrics_url else None
    cores = procstat.cores_by_role(snap_before, snap_after, wall, server.role)
    statuses = result.statuses
    # CPU milliseconds each process spent per answered request: unlike req/s, this barely depends on
    # what else runs on the machine, so it locates the composition's cost even on a busy machine.
    per_request = {k: round(v * wall * 1000 / result.requests, 2) for k, v in cores.items()} if result.requests else {}
    return {
        "concurrency": concurrency,
        "responses": result.requests,
        "seconds": round(result.seconds, 3),
        "ok_per_s": round(result.ok_per_s, 1),
        "latency_ms": result.latency_ms,
        "statuses": statuses,
        "n_429": statuses.get("429", 0),
        "n_503": statuses.get("503", 0),
        "n_5xx": sum(n for code, n in statuses.items() if 500 <= int(code) < 600),
        "non_2xx": sum(n for code, n in statuses.items() if not 200 <= int(code) < 300),
        "socket_errors": result.socket_errors,
        "batches": metrics.difference(hist_before, hist_after) if hist_before is not None and hist_after else None,
        "cores": {
            "server": round(sum(cores.values()), 3),
            "by_process": cores,
            "cpu_ms_per_request": per_request,
            "loadgen": result.loadgen_cores,
            "machine": procstat.machine_cores(snap_before, snap_after),
        },
        "load_average_before": load_before,
        # Cores busy on the machine outside the server and wrk: another job competing for the cores.
        "other_cores": round(
            max(0.0, procstat.machine_cores(snap_before, snap_after) - sum(cores.values()) - result.loadgen_cores), 3
        ),
    }


def drain(last: Any) -> None:
    """Let the requests a stopped wrk left in flight finish before the next run starts measuring."""
    p99 = last["latency_ms"]["p99"] if isinstance(last, dict) else last.latency_ms["p99"]
    time.sleep(min(5.0, max(0.5, 2 * p99 / 1000)))


def median_point(runs: list[dict[str, Any]]) -> dict[str, Any]:
    """Median of each number over the repeats; counts of errors are summed (any error counts)."""
    if len(runs) == 1:
        return {**runs[0], "repeats": 1}

    def med(values: list[float]) -> float:
        return round(statistics.median(values), 2)

    by_rate = sorted(runs, key=lambda r: r["ok_per_s"])
    middle = by_rate[len(by_rate) // 2]
    out = dict(middle)
    out["ok_per_s"] = med([r["ok_per_s"] for r in runs])
    out["latency_ms"] = {k: med([r["latency_ms"][k] for r in runs]) for k in middle["latency_ms"]}
    for key in ("n_429", "n_503", "n_5xx", "non_2xx", "responses"):
        out[key] = sum(r[key] for r in runs)
    statuses: dict[str, int] = {}
    for r in runs:
        for code, n in r["statuses"].items():
            statuses[code] = statuses.get(code, 0) + n
    out["statuses"] = statuses
    out["cores"] = {
        "server": med([r["cores"]["server"] for r in runs]),
        "by_process": {
            k: med([r["cores"]["by_process"].get(k, 0.0) for r in runs]) for k in middle["cores"]["by_process"]
        },
        "cpu_ms_per_request": {
            k: med([r["cores"]["cpu_ms_per_request"].get(k, 0.0) for r in runs])
            for k in middle["cores"]["cpu_ms_per_request"]
        },
        "loadgen": med([r["cores"]["loadgen"] for r in runs]),
        "machine": med([r["cores"]["machine"] for r in runs]),
    }
    if middle.get("batches") is not None:
        sizes: dict[str, int] = {}
        batches = texts = 0
        for r in runs:
            b = r["batches"]
            batches += b["batches"]
            texts += b["texts"]
            for k, n in b["sizes"].items():
                sizes[k] = sizes.get(k, 0) + n
        out["batches"] = {
            "batches": batches,
            "texts": texts,
            "mean_batch": round(texts / batches, 2) if batches else None,
            "sizes": sizes,
        }
    out["other_cores"] = med([r["other_cores"] for r in runs])
    out["repeats"] = len(runs)
    out["runs"] = [
        {k: r[k] for k in ("ok_per_s", "latency_ms", "non_2xx", "load_average_before", "other_cores")} for r in runs
    ]
    return out


@dataclass(frozen=True)
class Guard:
    """When a run counts as disturbed by other work on the machine, and what to do about it."""

    max_other_cores: float = 0.3
    retries: int = 2
    wait_s: float = 300.0


def served_runtime(server: Any) -> str | None:
    """The transformer's encoder runtime as the server reports it (peers run PyTorch fp32)."""
    if server.spec.kind in PEERS:
        return "fp32"
    if server.spec.kind != "bentoml":
        return None
    from bench.servers import http

    status, body = http("POST", f"{server.base}/models", {})
    models = json.loads(body).get("models", []) if status == 200 else []
    found = next((m.get("runtime") for m in models if m.get("family") == "transformer"), None)
    return found.split(":")[0] if found else None


def measure_server(
    launcher: Launcher,
    spec: ServerSpec,
    bodies: dict[str, Path],
    concurrency: list[int],
    requests: int,
    repeats: int,
    warmup: int,
    probe_texts: list[str],
    reference: list[float],
    guard: Guard = Guard(retries=0),
) -> dict[str, Any]:
    logger.info("starting %s", spec.name)
    with launcher.start(spec) as server:
        answers = probe(server, probe_texts)
        runtime = served_runtime(server)
        max_diff = max(abs(a - b) for a, b in zip(answers, reference, strict=True))
        body_file = bodies[{"bentoml-runner": "runner", "mlserver": "oip"}.get(spec.kind, "entry")]
        pids = {pid for root in server.roots() for pid, _ in procstat.tree(root)}
        off_loopback = procstat.sockets_off_loopback(pids)
        if off_loopback:
            logger.warning("%s has sockets off loopback:\n%s", spec.name, "\n".join(off_loopback))
        if warmup:
            drain(loadgen.run_wrk(server.url, body_file, max(concurrency), warmup))
        points = []
        for c in concurrency:
            if warmup:
                drain(loadgen.run_wrk(server.url, body_file, c, max(min(warmup, 4 * c), 20)))
            runs = []
            for _ in range(repeats):
                run = measure_point(server, body_file, c, requests)
                drain(run)
                retries = guard.retries
                while run["other_cores"] > guard.max_other_cores and retries > 0:
                    # Something else used the machine during this run: wait for quiet and measure again.
                    logger.warning(
                        "  c=%d disturbed: %.2f cores used outside the server (load %s); measuring again",
                        c,
                        run["other_cores"],
                        load_average(),
                    )
                    wait_until_others_idle(server.roots(), guard.max_other_cores, guard.wait_s)
                    run = measure_point(server, body_file, c, requests)
                    drain(run)
                    retries -= 1
                runs.append(run)
            point = median_point(runs)
            points.append(point)
            logger.info(
                "  %-60s c=%-3d %7.1f req/s  p50 %7.1f  p99 %7.1f ms  non-2xx %d  batch %s  cores %.2f (machine %.2f)",
                spec.name[:60],
                c,
                point["ok_per_s"],
                point["latency_ms"]["p50"],
                point["latency_ms"]["p99"],
                point["non_2xx"],
                (point["batches"] or {}).get("mean_batch"),
                point["cores"]["server"],
                point["cores"]["machine"],
            )
        return {
            "name": spec.name,
            "kind": spec.kind,
            "group": spec.group,
            "description": spec.description,
            "settings": {
                "serving_overrides": spec.serving_overrides,
                "config_options": spec.config_options,
                "env": spec.env,
                **server.info,
            },
            "probe_max_abs_diff_vs_inprocess": round(max_diff, 7),
            "runtime": runtime,
            "sockets_off_loopback": off_loopback,
            "points": points,
        }
