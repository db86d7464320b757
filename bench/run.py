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
import shutil
import signal
import tempfile
from pathlib import Path
from typing import Any

from bench import report, sentences, suites
from bench.machine import load_average, machine_info, versions, wait_for_quiet, wait_until_others_idle
from bench.measure import Guard, measure_server, measured_runtimes, reference_probabilities, run_inprocess
from bench.servers import ROOT, Launcher, VariantError, oip_body
from bundle.settings import load_settings

logger = logging.getLogger("bench")

DEFAULT_OUT = ROOT / "results" / "bench"
STORE_MODEL = "sentiment_transformer:latest"


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
