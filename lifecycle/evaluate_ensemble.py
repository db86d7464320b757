"""Held-out accuracy of the ensemble (POST /sentiment/ensemble) next to each of its members.

    python -m lifecycle.evaluate_ensemble            # members and weights from serving.yaml
    python -m lifecycle.evaluate_ensemble --search   # also grid-search weights on the validation split

Loads the configured model versions from the Bento store in process (an offline tool, not the serving
path), scores the validation and test splits of the movie snippets once per member, and combines the
probabilities exactly as the service does: a weighted average of class probabilities.
"""

from __future__ import annotations

import argparse
import itertools
import json
import sys

import numpy as np

from bundle.settings import load_settings
from tasks.sentiment.pipelines import LABELS, load_pipeline
from train import dataset


def member_probabilities(split_texts: dict[str, list[str]]) -> tuple[list[str], dict[str, dict[str, np.ndarray]]]:
    import bentoml

    settings = load_settings()
    ensemble = settings.tasks["sentiment"].ensemble
    assert ensemble is not None, "serving.yaml has no tasks.sentiment.ensemble section"
    names, probabilities = [], {}
    for member in ensemble.members:
        deployment = settings.models[member.family]
        version = member.version or deployment.versions[0]
        model = bentoml.models.get(f"{deployment.store_name}:{version}")
        pipeline = load_pipeline(model.info.labels["pipeline"], model.path)
        names.append(member.family)
        probabilities[member.family] = {split: pipeline.predict_proba(texts) for split, texts in split_texts.items()}
    return names, probabilities


def accuracy(proba: np.ndarray, truth: np.ndarray) -> float:
    return float(np.mean(proba.argmax(axis=1) == truth))


def combine(probabilities: dict[str, np.ndarray], weights: dict[str, float]) -> np.ndarray:
    total = sum(weights.values())
    return sum(w / total * probabilities[name] for name, w in weights.items())  # type: ignore[return-value]


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--search", action="store_true", help="grid-search weights on the validation split")
    parser.add_argument("--seed", type=int, default=42)
    args = parser.parse_args(argv)

    splits = dataset.split(dataset.load_domain(dataset.TRAIN_DOMAIN), seed=args.seed)
    texts = {"validation": [e.text for e in splits.validation], "test": [e.text for e in splits.test]}
    truth = {
        "validation": np.array([LABELS.index(e.label) for e in splits.validation]),
        "test": np.array([LABELS.index(e.label) for e in splits.test]),
    }
    names, probabilities = member_probabilities(texts)
    ensemble = load_settings().tasks["sentiment"].ensemble
    assert ensemble is not None
    configured = {m.family: m.weight for m in ensemble.members}

    rows = [(name, {name: 1.0}) for name in names] + [("ensemble (serving.yaml)", configured)]
    if args.search:
        grid = [w / 10 for w in range(0, 11)]
        best = max(
            (dict(zip(names, ws, strict=True)) for ws in itertools.product(grid, repeat=len(names)) if sum(ws) > 0),
            key=lambda ws: accuracy(
                combine({n: probabilities[n]["validation"] for n in names}, ws), truth["validation"]
            ),
        )
        rows.append(("ensemble (best on validation)", best))

    print(f"{'model':<32} {'weights':<44} {'validation':>10} {'test':>8}")
    results = []
    for label, weights in rows:
        scores = {
            split: accuracy(combine({n: probabilities[n][split] for n in weights}, weights), truth[split])
            for split in ("validation", "test")
        }
        shown = ", ".join(f"{n} {w:g}" for n, w in weights.items())
        print(f"{label:<32} {shown:<44} {scores['validation']:>10.4f} {scores['test']:>8.4f}")
        results.append({"model": label, "weights": weights, **scores})
    print(json.dumps(results))
    return 0


if __name__ == "__main__":
    sys.exit(main())
