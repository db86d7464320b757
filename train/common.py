"""Shared training procedure: data → fit → evaluate in and out of domain → gate → Bento model store.

Everything a reader needs to trust a model goes into its metadata: metrics on the held-out split and on
each out-of-domain set, the data checksum, the split sizes, the parameters, the seed and library versions.
Fitting is deterministic, so the same data and seed give the same metrics.
"""

from __future__ import annotations

import argparse
import contextlib
import logging
import platform
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from importlib import metadata as importlib_metadata
from pathlib import Path
from typing import Any

import numpy as np

from tasks.sentiment.pipelines import LABELS, SentimentPipeline
from train import dataset

logger = logging.getLogger(__name__)

DEFAULT_SEED = 42
LIBRARIES = ("bentoml", "nltk", "scikit-learn", "numpy", "torch", "transformers")


class GateError(RuntimeError):
    """The model's held-out accuracy is below its gate; it was not saved."""


@dataclass(frozen=True)
class TrainedModel:
    tag: str
    metrics: dict[str, Any]


def evaluate(pipeline: SentimentPipeline, examples: Sequence[dataset.Example]) -> dict[str, float]:
    """Accuracy, macro-F1 and log-loss of ``pipeline`` on labelled examples."""
    if not examples:
        return {"n": 0}
    proba = pipeline.predict_proba([e.text for e in examples])
    truth = np.array([LABELS.index(e.label) for e in examples])
    pred = proba.argmax(axis=1)
    f1s = []
    for k in range(len(LABELS)):
        tp = np.sum((pred == k) & (truth == k))
        fp = np.sum((pred == k) & (truth != k))
        fn = np.sum((pred != k) & (truth == k))
        f1s.append(0.0 if tp == 0 else 2 * tp / (2 * tp + fp + fn))
    eps = 1e-12
    log_loss = -np.mean(np.log(np.clip(proba[np.arange(len(truth)), truth], eps, 1.0)))
    return {
        "n": len(examples),
        "accuracy": round(float(np.mean(pred == truth)), 4),
        "macro_f1": round(float(np.mean(f1s)), 4),
        "log_loss": round(float(log_loss), 4),
    }


def library_versions() -> dict[str, str]:
    versions = {"python": platform.python_version()}
    for name in LIBRARIES:
        with contextlib.suppress(importlib_metadata.PackageNotFoundError):
            versions[name] = importlib_metadata.version(name)
    return versions


def train_and_save(
    *,
    store_name: str,
    make_pipeline: Callable[[int], SentimentPipeline],
    gate: float,
    seed: int = DEFAULT_SEED,
    allow_below_gate: bool = False,
    data_dir: Path | None = None,
    out_of_domain: Sequence[str] = dataset.OUT_OF_DOMAIN,
    description: str = "",
) -> TrainedModel:
    """Train one pipeline on the movie snippets and save it to the Bento store if it passes its gate."""
    import bentoml  # heavy import, only needed once training is done

    started = time.perf_counter()
    splits = dataset.split(dataset.load_domain(dataset.TRAIN_DOMAIN, data_dir), seed=seed)
    pipeline = make_pipeline(seed)
    pipeline.fit([e.text for e in splits.train], [e.label for e in splits.train])
    fit_seconds = time.perf_counter() - started

    metrics: dict[str, Any] = {
        "validation": evaluate(pipeline, splits.validation),
        "test": evaluate(pipeline, splits.test),
        "out_of_domain": {name: evaluate(pipeline, dataset.load_domain(name, data_dir)) for name in out_of_domain},
    }
    accuracy = metrics["test"].get("accuracy", 0.0)
    logger.info("%s: held-out test accuracy %.4f (gate %.2f)", store_name, accuracy, gate)
    if accuracy < gate and not allow_below_gate:
        raise GateError(
            f"{store_name}: held-out accuracy {accuracy:.4f} is below the gate {gate:.2f}; not saved "
            "(pass --allow-below-gate to save it anyway, labelled gate=failed)"
        )

    model_metadata = {
        "description": description,
        "pipeline": pipeline.kind,
        "labels": list(LABELS),
        "metrics": metrics,
        "accuracy_gate": gate,
        "gate_passed": accuracy >= gate,
        "params": pipeline.params(),
        "seed": seed,
        "data": {
            "source": f"VADER ground truth (Hutto & Gilbert, ICWSM 2014) from {dataset.WHEEL_REQUIREMENT}",
            "sha256": dataset.data_checksum(data_dir),
            "train_domain": dataset.TRAIN_DOMAIN,
            "split_sizes": {
                "train": len(splits.train),
                "validation": len(splits.validation),
                "test": len(splits.test),
            },
        },
        "library_versions": library_versions(),
        "fit_seconds": round(fit_seconds, 2),
    }
    labels = {
        "task": "sentiment",
        "pipeline": pipeline.kind,
        "gate": "passed" if accuracy >= gate else "failed",
    }
    with bentoml.models.create(store_name, labels=labels, metadata=model_metadata) as ref:
        pipeline.save(ref.path)
    return TrainedModel(tag=str(ref.tag), metrics=metrics)


def main(
    *,
    store_name: str,
    make_pipeline: Callable[[int], SentimentPipeline],
    gate: float,
    description: str,
    argv: Sequence[str] | None = None,
) -> None:
    """Command line shared by the training scripts."""
    parser = argparse.ArgumentParser(description=f"Train {store_name} and save it to the Bento model store.")
    parser.add_argument("--seed", type=int, default=DEFAULT_SEED)
    parser.add_argument("--name", default=store_name, help="name in the Bento model store")
    parser.add_argument("--gate", type=float, default=gate, help="minimum held-out accuracy to save")
    parser.add_argument("--allow-below-gate", action="store_true", help="save even below the gate")
    parser.add_argument("--data-dir", type=Path, default=None, help="folder with the VADER files")
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    try:
        trained = train_and_save(
            store_name=args.name,
            make_pipeline=make_pipeline,
            gate=args.gate,
            seed=args.seed,
            allow_below_gate=args.allow_below_gate,
            data_dir=args.data_dir,
            description=description,
        )
    except (GateError, dataset.DatasetError) as exc:
        raise SystemExit(f"error: {exc}") from None
    m = trained.metrics
    ood = ", ".join(f"{k} {v['accuracy']:.4f}" for k, v in m["out_of_domain"].items())
    logger.info(
        "validation %.4f, test %.4f; out of domain: %s", m["validation"]["accuracy"], m["test"]["accuracy"], ood
    )
    print(trained.tag)
