"""The limit: the model's own throughput in one process, no HTTP, no serialisation.

    python -m bench.inprocess --model-path PATH --sentences FILE [--threads 2] [--batch-sizes 1,4,16,64]
                              [--runtime fp32|bf16|onnx|onnx_int8] [--accuracy]

Runs ``TransformerPipeline.predict_proba`` on consecutive chunks of the benchmark sentences, each
batch as one forward pass (``predict_proba(texts, batch_size=len(texts))``) and, with
``--forward-batch-size N``, also as the runner does with that knob (length-sorted forward passes of N),
and prints one JSON object: sentences/s per batch size (median of the repeats), and a breakdown of one
batch into tokenisation and the model's forward pass. Run as its own process so that the torch thread
count and the thread teams it creates are exactly the ones a runner worker would have. ``--runtime``
runs the encoder on another runtime (tasks/embedding/runtimes.py); ``--accuracy`` adds the accuracy on the
movie snippets' test split (split seed 42), so speed and accuracy of each runtime come from one process.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import sys
import time
from pathlib import Path


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--model-path", required=True)
    parser.add_argument("--sentences", required=True, type=Path, help="one JSON request body per line")
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--batch-sizes", default="1,4,16,64")
    parser.add_argument("--sentences-per-point", type=int, default=1024)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--breakdown-batch", type=int, default=32)
    parser.add_argument("--forward-batch-size", type=int, default=0, help="0: one forward pass per batch only")
    parser.add_argument("--runtime", default="fp32", help="fp32, bf16, onnx or onnx_int8")
    parser.add_argument("--accuracy", action="store_true", help="also measure accuracy on the movie test split")
    parser.add_argument("--data-dir", type=Path, default=None)
    args = parser.parse_args(argv)

    import torch

    from tasks.sentiment.pipelines.transformer import TransformerPipeline

    torch.set_num_threads(args.threads)
    texts = [json.loads(line)["text"] for line in args.sentences.read_text().splitlines() if line.strip()]
    pipeline = TransformerPipeline.load(args.model_path, device="cpu", runtime=args.runtime)
    sizes = [int(s) for s in args.batch_sizes.split(",")]

    def chunks(size: int, count: int) -> list[list[str]]:
        out: list[list[str]] = []
        i = 0
        while len(out) * size < count:
            out.append([texts[(i + k) % len(texts)] for k in range(size)])
            i += size
        return out

    pipeline.predict_proba(texts[:64], batch_size=64)  # warm-up: allocator, thread pool, kernels

    def rate(batches: list[list[str]], forward: int) -> list[float]:
        pipeline.predict_proba(batches[0], batch_size=forward)
        runs = []
        for _ in range(args.repeats):
            started = time.perf_counter()
            for batch in batches:
                pipeline.predict_proba(batch, batch_size=forward)
            elapsed = time.perf_counter() - started
            runs.append(sum(map(len, batches)) / elapsed)
        return runs

    points = []
    for size in sizes:
        batches = chunks(size, max(args.sentences_per_point, size))
        runs = rate(batches, size)
        point = {
            "batch_size": size,
            "sentences_per_s": round(statistics.median(runs), 1),
            "ms_per_batch": round(1000 * size / statistics.median(runs), 2),
            "runs": [round(r, 1) for r in runs],
        }
        if 0 < args.forward_batch_size < size:
            chunked = rate(batches, args.forward_batch_size)
            point["forward_batch_size"] = args.forward_batch_size
            point["chunked_sentences_per_s"] = round(statistics.median(chunked), 1)
            point["chunked_runs"] = [round(r, 1) for r in chunked]
        points.append(point)

    # Where one batch's time goes: tokenising (Rust tokenizer) versus the encoder and head.
    encoder = pipeline.encoder
    batch = chunks(args.breakdown_batch, args.breakdown_batch)[0]
    tok_times, fwd_times = [], []
    for _ in range(20):
        t0 = time.perf_counter()
        encoder.tokenize(batch)
        t1 = time.perf_counter()
        pipeline.predict_proba(batch, batch_size=len(batch))
        t2 = time.perf_counter()
        tok_times.append(t1 - t0)
        fwd_times.append(t2 - t1 - (t1 - t0))  # predict_proba tokenises too
    accuracy = None
    if args.accuracy:
        from train import dataset

        test = dataset.split(dataset.load_domain("movies", args.data_dir), seed=42).test
        predicted = pipeline.predict([e.text for e in test])
        accuracy = {"split": "movies test (seed 42)", "texts": len(test)}
        accuracy["accuracy"] = round(sum(p == e.label for p, e in zip(predicted, test, strict=True)) / len(test), 4)
    result = {
        "runtime": encoder.runtime,
        "accuracy": accuracy,
        "threads": args.threads,
        "torch_num_threads": torch.get_num_threads(),
        "tokenizers_parallelism": os.environ.get("TOKENIZERS_PARALLELISM", "(unset)"),
        "points": points,
        "breakdown": {
            "batch_size": args.breakdown_batch,
            "tokenize_ms": round(1000 * statistics.median(tok_times), 3),
            "forward_ms": round(1000 * statistics.median(fwd_times), 3),
        },
    }
    json.dump(result, sys.stdout)
    sys.stdout.write("\n")


if __name__ == "__main__":
    main()
