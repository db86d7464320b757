"""Replay a labelled data set through a running service, as production-like traffic.

    python -m lifecycle.replay --domain tweets --n 500             # out-of-domain traffic
    python -m lifecycle.replay --domain movies --split test --n 500 # in-domain traffic

Prints the replay's start time (for ``lifecycle.drift --since``) and the accuracy the service achieved
on the replayed texts, since the data set carries labels.
"""

from __future__ import annotations

import argparse
import datetime
import os
import random
import sys

import httpx

from train import dataset


def load(domain: str, split: str, n: int, seed: int) -> list[dataset.Example]:
    examples = dataset.load_domain(domain)
    if domain == dataset.TRAIN_DOMAIN:
        examples = getattr(dataset.split(examples, seed=42), split)
    rng = random.Random(seed)
    return rng.sample(examples, min(n, len(examples)))


def replay(url: str, examples: list[dataset.Example], model: str | None, chunk: int = 32) -> float:
    correct = 0
    with httpx.Client(base_url=url, timeout=120) as client:
        for start in range(0, len(examples), chunk):
            part = examples[start : start + chunk]
            body: dict[str, object] = {"texts": [e.text[:5000] for e in part]}
            if model:
                body["model"] = model
            response = client.post("/sentiment/batch", json=body)
            response.raise_for_status()
            predictions = response.json()["predictions"]
            correct += sum(p["label"] == e.label for p, e in zip(predictions, part, strict=True))
    return correct / max(len(examples), 1)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--url", default=os.environ.get("SENTIMENT_API_URL", "http://localhost:3000"))
    parser.add_argument("--domain", choices=sorted(dataset.DOMAIN_FILES), default="tweets")
    parser.add_argument("--split", choices=["train", "validation", "test"], default="test", help="movies only")
    parser.add_argument("--n", type=int, default=500)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--model", default=None, help="model family; default: the service's routing")
    args = parser.parse_args(argv)
    examples = load(args.domain, args.split, args.n, args.seed)
    started = datetime.datetime.now().isoformat(timespec="seconds")
    accuracy = replay(args.url, examples, args.model)
    print(f"replayed {len(examples)} {args.domain} texts from {started}; service accuracy {accuracy:.4f}")
    print(f"drift report: python -m lifecycle.drift --since {started}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
