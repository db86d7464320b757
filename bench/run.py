"""Benchmark: does adaptive batching pay off, and what does the entry → runner composition cost?

    python -m bench.run                      # the main suite: limit, BentoML on/off, FastAPI, Ray Serve
    python -m bench.run --suite composition  # where the composition's cores go
    python -m bench.run --suite knobs        # runners.gpu: max_batch_size, max_latency_ms, torch_threads
    python -m bench.run --quick              # seconds: one point, few requests, no peers (the smoke test)

One process tree: this process starts every server as its child, bound to 127.0.0.1 on a free port,
drives it with wrk (closed loop, ``--requests`` POSTs per point at each ``--concurrency``), scrapes
BentoML's ``/metrics`` for the adaptive batch sizes before and after each point, reads every server
process's CPU time from /proc, and stops the server before starting the next one. The in-process
limit runs first, in a child process with the same torch threads as the runner.

Prints a table and writes ``<out>/<suite>.json`` and ``<out>/<suite>.md`` (plus time-stamped copies)
with the machine, cores, versions, date and load average next to the numbers. Timings are only
comparable within one run; the ratios in the goal check are taken from one run, side by side.
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import logging
import os
import platform
import resource
import shutil
import signal
import statistics
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass
from importlib import metadata as importlib_metadata
from pathlib import Path
from typing import Any

from bench import loadgen, procstat, report, sentences, suites
from bench.servers import ROOT, Launcher, ServerSpec, VariantError, oip_body, probe
from bundle.settings import load_settings

logger = logging.getLogger("bench")

DEFAULT_OUT = ROOT / "results" / "bench"
STORE_MODEL = "sentiment_transformer:latest"


# ---- environment --------------------------------------------------------------------------------


def machine_info() -> dict[str, Any]:
    cpu_model = ""
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu_model = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
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
        "cpu_model": cpu_model,
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


def resolve_model(bentoml_home: str) -> tuple[str, str]:
    """(tag, path) of the store's sentiment_transformer:latest; checks every model serving.yaml needs."""
    os.environ["BENTOML_HOME"] = bentoml_home
    import bentoml

    from bundle.settings import load_settings

    settings = load_settings(ROOT / "serving.yaml")
    needed = [t for d in settings.models.values() for t in d.tags()]
    missing = []
    for tag in needed:
        try:
            bentoml.models.get(tag)
        except bentoml.exceptions.NotFound:
            missing.append(tag)
    if missing:
        raise SystemExit(
            f"the Bento store at {bentoml_home} lacks {', '.join(missing)}; make them (make models) "
            "or point --bentoml-home at a store that has them"
        )
    model = bentoml.models.get(STORE_MODEL)
    return str(model.tag), model.path


# ---- measuring ------------------------------------------------------------------------------------


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
    if server.spec.kind in ("fastapi", "ray", "litserve", "mlserver"):
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


# ---- command line -------------------------------------------------------------------------------


def _terminate(signum: int, frame: object) -> None:
    raise KeyboardInterrupt(f"signal {signum}")


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--suite", choices=sorted(suites.SUITES), default="main")
    parser.add_argument("--quick", action="store_true", help="one point, few requests, no peers (smoke test)")
    parser.add_argument("--concurrency", default=None, help="comma-separated (default 1,8,32,64)")
    parser.add_argument("--requests", type=int, default=None, help="requests per point (default 1000)")
    parser.add_argument("--repeats", type=int, default=None, help="runs per point; the median is reported (default 3)")
    parser.add_argument("--warmup", type=int, default=None, help="warm-up requests before the points (default 200)")
    parser.add_argument(
        "--only", default=None, help="measure only the servers whose name contains one of these comma-separated texts"
    )
    parser.add_argument("--no-ray", action="store_true")
    parser.add_argument("--no-fastapi", action="store_true")
    parser.add_argument("--no-litserve", action="store_true")
    parser.add_argument("--no-mlserver", action="store_true")
    parser.add_argument("--no-inprocess", action="store_true")
    parser.add_argument("--inprocess-threads", type=int, default=2)
    parser.add_argument("--bentoml-home", default=os.environ.get("BENTOML_HOME", str(Path.home() / "bentoml")))
    parser.add_argument("--data-dir", type=Path, default=None, help="VADER data folder (default: the cache)")
    parser.add_argument("--out", type=Path, default=DEFAULT_OUT)
    parser.add_argument(
        "--wait-quiet",
        type=float,
        default=0.0,
        metavar="SECONDS",
        help="first wait up to this long for a 1-minute load average below --quiet-load",
    )
    parser.add_argument("--quiet-load", type=float, default=1.0)
    parser.add_argument(
        "--max-other-cores",
        type=float,
        default=0.3,
        help="a run during which other processes kept more cores busy than this is measured again",
    )
    parser.add_argument(
        "--retries", type=int, default=None, help="re-measurements of a disturbed run (default 2; 0 with --quick)"
    )
    args = parser.parse_args(argv)
    quick = args.quick
    default_concurrency = "4" if quick else ("1,32,64" if args.suite == "composition" else "1,8,32,64")
    args.concurrency = [int(c) for c in (args.concurrency or default_concurrency).split(",")]
    args.requests = args.requests or (40 if quick else 1000)
    args.repeats = args.repeats or (1 if quick else 3)
    args.warmup = args.warmup if args.warmup is not None else (8 if quick else 200)
    if args.retries is None:
        args.retries = 0 if quick else 2
    if quick:
        args.no_ray = args.no_fastapi = args.no_litserve = args.no_mlserver = True
    return args


def main(argv: list[str] | None = None) -> dict[str, Any]:
    args = parse_args(argv)
    # Stop cleanly (servers stopped, partial results written) on Ctrl-C or SIGTERM, also when started
    # in the background by a shell that ignores SIGINT for background jobs.
    signal.signal(signal.SIGINT, signal.default_int_handler)
    signal.signal(signal.SIGTERM, _terminate)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(message)s", datefmt="%H:%M:%S")
    os.chdir(ROOT)
    started_at = dt.datetime.now(dt.UTC)
    quiet = wait_for_quiet(args.quiet_load, args.wait_quiet) if args.wait_quiet > 0 else None

    from bench import peers_env

    peers_python: Path | None = None
    wants_peers = args.suite == "main" and not (args.no_ray and args.no_fastapi and args.no_litserve)
    if wants_peers:
        if not peers_env.ready():
            logger.info("creating the peers environment (Ray Serve, FastAPI, LitServe) at %s", peers_env.peers_dir())
            peers_env.create()
        peers_python = peers_env.peers_python()
    mlserver_python: Path | None = None
    if args.suite == "main" and not args.no_mlserver:
        if not peers_env.ready("mlserver"):
            logger.info("creating the MLServer environment at %s", peers_env.peers_dir("mlserver"))
            peers_env.create("mlserver")
        mlserver_python = peers_env.peers_python("mlserver")

    model_tag, model_path = resolve_model(args.bentoml_home)
    texts = sentences.movie_sentences(data_dir=args.data_dir)
    workdir = Path(tempfile.mkdtemp(prefix="sentiment-bench-"))
    bodies = {
        "entry": sentences.write_bodies(texts, workdir / "bodies.jsonl"),
        "runner": workdir / "runner-bodies.jsonl",
    }
    with bodies["runner"].open("w") as fh:
        for t in texts:
            fh.write(json.dumps({"items": [{"model_tag": model_tag, "data": t}]}) + "\n")
    bodies["oip"] = workdir / "oip-bodies.jsonl"
    with bodies["oip"].open("w") as fh:
        for t in texts:
            fh.write(json.dumps(oip_body(t)) + "\n")
    probe_texts = texts[:3]
    reference = reference_probabilities(model_path, probe_texts)

    specs = (
        suites.main_suite(
            fastapi=not args.no_fastapi,
            ray=not args.no_ray,
            litserve=not args.no_litserve,
            mlserver=not args.no_mlserver,
        )
        if args.suite == "main"
        else suites.SUITES[args.suite]()
    )
    if args.only:
        wanted = [w.strip().lower() for w in args.only.split(",") if w.strip()]
        specs = [s for s in specs if any(w in s.name.lower() for w in wanted)]

    result: dict[str, Any] = {
        "suite": args.suite,
        "quick": args.quick,
        "date": started_at.isoformat(timespec="seconds"),
        "machine": machine_info(),
        "versions": versions(peers_python, mlserver_python),
        "model": {"tag": model_tag, "bentoml_home": args.bentoml_home},
        "inputs": {**sentences.describe(texts), "source": "VADER movie-review snippets, 9-20 words"},
        "method": {
            "load_generator": "wrk, 1 thread, closed loop; one POST per request, bodies cycled from the inputs",
            "concurrency": args.concurrency,
            "requests_per_point": args.requests,
            "repeats": args.repeats,
            "warmup_requests": args.warmup,
            "endpoint": 'POST /sentiment {"text": ..., "model": "transformer"}',
        },
        "load_average_start": load_average(),
        "quiet_wait": quiet,
    }
    try:
        if not args.no_inprocess:
            sizes = [1, 4] if args.quick else [1, 4, 16, 64]
            logger.info("in-process limit, %d torch threads, batch sizes %s", args.inprocess_threads, sizes)
            result["inprocess_runtimes"] = {}
            for runtime in measured_runtimes(model_path):
                for attempt in range(args.retries + 1):
                    measured = run_inprocess(
                        model_path,
                        bodies["entry"],
                        args.inprocess_threads,
                        sizes,
                        per_point=64 if args.quick else 1024,
                        repeats=1 if args.quick else 3,
                        forward_batch_size=load_settings(ROOT / "serving.yaml").runners["gpu"].forward_batch_size,
                        runtime=runtime,
                        accuracy=not args.quick,
                    )
                    if measured["other_cores"] <= args.max_other_cores or attempt == args.retries:
                        break
                    logger.warning("in-process limit disturbed by other processes; measuring again when quiet")
                    wait_until_others_idle([], args.max_other_cores, 300)
                logger.info("  runtime %s: %s", runtime, [p["sentences_per_s"] for p in measured["points"]])
                result["inprocess_runtimes"][runtime] = measured
            result["inprocess"] = result["inprocess_runtimes"]["fp32"]
            if args.suite == "knobs" and args.inprocess_threads != 1:
                # torch_threads: the same limit with one thread, for the runner's thread budget.
                result["inprocess_1_thread"] = run_inprocess(
                    model_path,
                    bodies["entry"],
                    1,
                    sizes,
                    per_point=64 if args.quick else 1024,
                    repeats=1 if args.quick else 3,
                )
        launcher = Launcher(workdir, args.bentoml_home, peers_python, model_path, model_tag, mlserver_python)
        result["servers"] = []
        result["skipped"] = []
        for spec in specs:
            try:
                measured = measure_server(
                    launcher,
                    spec,
                    bodies,
                    args.concurrency,
                    args.requests,
                    args.repeats,
                    args.warmup,
                    probe_texts,
                    reference,
                    Guard(args.max_other_cores, args.retries),
                )
            except VariantError as exc:
                logger.warning("skipped %s: %s", spec.name, exc)
                result["skipped"].append({"name": spec.name, "reason": str(exc)})
                continue
            result["servers"].append(measured)
    finally:
        if (workdir / "logs").is_dir():
            # The servers' logs of the latest run of this suite, for a look at what a point did.
            kept = args.out / "logs" / (args.suite + ("-quick" if args.quick else ""))
            shutil.rmtree(kept, ignore_errors=True)
            shutil.copytree(workdir / "logs", kept)
        result["load_average_end"] = load_average()
        result["finished"] = dt.datetime.now(dt.UTC).isoformat(timespec="seconds")
        if "servers" in result:
            result["goals"] = report.goals(result) if args.suite == "main" else None
            paths = report.write(result, args.out)
            print(report.markdown(result))
            for p in paths:
                logger.info("wrote %s", p)
        shutil.rmtree(workdir, ignore_errors=True)
    return result


if __name__ == "__main__":
    main()
