"""Where a server's CPU goes under load: py-spy samples of every process while wrk drives it.

    python -m bench.profile [--concurrency 32] [--requests 3000] [--variant NAME]

Starts one server of the composition suite (default: the project as committed), drives it at one
concurrency, samples each process with py-spy (from the peers environment; ``--nonblocking`` unless
``--blocking`` is given, so the processes are not paused) and prints, per process, the functions that
hold the most samples: inclusive (the function and what it calls), self, and by area (HTTP stack,
pydantic, serialisation, tokenizer, torch, logging, metrics, ...). Writes the raw stacks and a JSON
summary under ``results/bench/profile/``.
"""

from __future__ import annotations

import argparse
import json
import logging
import os
import re
import subprocess
import tempfile
import threading
from collections import Counter
from pathlib import Path
from typing import Any

from bench import loadgen, peers_env, procstat, sentences, suites
from bench.run import resolve_model
from bench.servers import ROOT, Launcher

logger = logging.getLogger("bench.profile")

# Areas, tried in order on each frame of a stack from the innermost frame outwards: the first area
# that matches any frame names the sample. The markers are file-path or function fragments.
AREAS = [
    ("model: torch forward", ["torch/nn/modules", "transformers/models", "torch/_tensor", "torch/functional"]),
    ("model: tokenizer", ["tokenization_utils", "tokenizers", "tokenization_"]),
    ("model: other pipeline code", ["pipelines/transformer.py"]),
    ("prediction records (monitoring)", ["monitoring", "(observability.py"]),
    ("logging", ["logging/__init__.py", "logging/handlers.py"]),
    ("metrics (prometheus)", ["prometheus_client"]),
    ("tracing (opentelemetry)", ["opentelemetry"]),
    ("(de)serialisation: pickle / json / pydantic", ["pickle", "json/", "pydantic", "serde", "io_models"]),
    ("HTTP client (hop to the runner)", ["aiohttp", "httpx", "httpcore", "_bentoml_impl/client"]),
    ("batching dispatcher", ["marshal/dispatcher"]),
    (
        "entry service code (routing, normalisation, errors)",
        ["(service.py:", "(routing.py", "(contract.py", "(errors.py", "(pipelines/text.py"],
    ),
    ("BentoML server glue", ["_bentoml_impl/server", "bentoml/_internal/server", "bentoml/_internal/context"]),
    ("HTTP server (uvicorn, starlette, h11)", ["uvicorn", "starlette", "h11"]),
    ("asyncio event loop", ["asyncio/"]),
]


def area_of(stack: list[str]) -> str:
    for name, markers in AREAS:
        for frame in reversed(stack):
            if any(m in frame for m in markers):
                return name
    return "other"


def summarise(raw: Path, top: int = 25) -> dict[str, Any]:
    inclusive: Counter[str] = Counter()
    leaf: Counter[str] = Counter()
    areas: Counter[str] = Counter()
    total = 0
    for line in raw.read_text().splitlines():
        stack_text, _, count_text = line.rpartition(" ")
        if not stack_text:
            continue
        n = int(count_text)
        frames = stack_text.split(";")
        total += n
        areas[area_of(frames)] += n
        leaf[re.sub(r":\d+\)", ")", frames[-1])] += n
        for frame in {re.sub(r":\d+\)", ")", f) for f in frames}:
            inclusive[frame] += n
    return {
        "samples": total,
        "areas": {k: round(v / total, 3) for k, v in areas.most_common()} if total else {},
        # Frames every sample passes through (the event loop, the worker's main) say nothing: left out.
        "inclusive_top": [(k, round(v / total, 3)) for k, v in inclusive.most_common() if v < 0.8 * total][:top]
        if total
        else [],
        "self_top": [(k, round(v / total, 3)) for k, v in leaf.most_common(top)] if total else [],
    }


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--concurrency", type=int, default=32)
    parser.add_argument("--requests", type=int, default=3000)
    parser.add_argument("--seconds", type=int, default=15, help="py-spy sampling time")
    parser.add_argument("--variant", default="defaults", help="a server name from the composition suite")
    parser.add_argument(
        "--blocking",
        action="store_true",
        help="pause each process for every sample (exact stacks, slightly slower server)",
    )
    parser.add_argument("--bentoml-home", default=os.environ.get("BENTOML_HOME", str(Path.home() / "bentoml")))
    parser.add_argument("--out", type=Path, default=ROOT / "results" / "bench" / "profile")
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(message)s", datefmt="%H:%M:%S")

    pyspy = peers_env.peers_dir() / "bin" / "py-spy"
    if not pyspy.exists():
        peers_env.create()
    spec = next(s for s in suites.composition_suite() if s.name == args.variant)
    tag, path = resolve_model(args.bentoml_home)
    workdir = Path(tempfile.mkdtemp(prefix="sentiment-profile-"))
    texts = sentences.movie_sentences()
    bodies = sentences.write_bodies(texts, workdir / "bodies.jsonl")
    if spec.kind == "bentoml-runner":
        with bodies.open("w") as fh:
            for t in texts:
                fh.write(json.dumps({"items": [{"model_tag": tag, "data": t}]}) + "\n")
    args.out.mkdir(parents=True, exist_ok=True)
    launcher = Launcher(workdir, args.bentoml_home, None, path, tag)
    processes: dict[str, dict[str, Any]] = {}
    summary: dict[str, Any] = {"variant": spec.name, "concurrency": args.concurrency, "processes": processes}
    with launcher.start(spec) as server:
        loadgen.run_wrk(server.url, bodies, args.concurrency, 300)
        procs = procstat.tree(server.process.pid)
        targets = {
            p.pid: server.role(p.cmdline)
            for p in procs.values()
            if server.role(p.cmdline) not in ("arbiter", "CPURunner")
        }
        result: dict[str, loadgen.LoadResult] = {}
        load = threading.Thread(
            target=lambda: result.setdefault(
                "load", loadgen.run_wrk(server.url, bodies, args.concurrency, args.requests)
            )
        )
        load.start()
        spies = []
        for pid, role in targets.items():
            raw = args.out / f"{re.sub(r'[^A-Za-z0-9]+', '_', spec.name)}-{re.sub(r'[^A-Za-z0-9]+', '_', role)}.txt"
            cmd = [str(pyspy), "record", "-p", str(pid), "-d", str(args.seconds), "-r", "200", "-f", "raw"]
            cmd += ["-o", str(raw)] + ([] if args.blocking else ["--nonblocking"])
            spies.append((role, raw, subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)))
        for _, _, spy in spies:
            spy.wait()
        load.join()
        for role, raw, _ in spies:
            if raw.exists():
                processes[role] = summarise(raw)
        lr = result.get("load")
        if lr is not None:
            summary["ok_per_s"] = round(lr.ok_per_s, 1)
    out = args.out / f"{re.sub(r'[^A-Za-z0-9]+', '_', spec.name)}-c{args.concurrency}.json"
    out.write_text(json.dumps(summary, indent=2) + "\n")
    for role, data in processes.items():
        print(f"\n== {role}: {data['samples']} samples")
        for area, share in data["areas"].items():
            print(f"   {share:6.1%}  {area}")
        print("   top functions (inclusive):")
        for frame, share in data["inclusive_top"]:
            print(f"   {share:6.1%}  {frame[:150]}")
        print("   top functions (self):")
        for frame, share in data["self_top"][:12]:
            print(f"   {share:6.1%}  {frame[:150]}")
    if "ok_per_s" in summary:
        print(f"\nthroughput while sampling: {summary['ok_per_s']} req/s at c={args.concurrency}")
    logger.info("wrote %s", out)


if __name__ == "__main__":
    main()
