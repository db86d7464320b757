"""Shared training procedure: data → fit → evaluate on every domain → gate → Bento model store.

Everything a reader needs to trust a model goes into its metadata: metrics on the held-out split of its
training domains and on the test split of every domain (accuracy with a 95 % interval, calibration
error; ``train/evaluation.py``), the domains it claims and its gate for each, the data checksum, the split
sizes, the parameters, the seed and library versions. Fitting is deterministic, so the same data and
seed give the same metrics.
"""

from __future__ import annotations

import argparse
import contextlib
import logging
import platform
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from importlib import metadata as importlib_metadata
from pathlib import Path
from typing import Any

from tasks.sentiment.pipelines import LABELS, SentimentPipeline
from tasks.sentiment.pipelines.calibration import TemperatureScaled, fit_temperature
from train import dataset, evaluation

logger = logging.getLogger(__name__)

DEFAULT_SEED = 42
LIBRARIES = ("bentoml", "nltk", "scikit-learn", "numpy", "torch", "transformers")


class GateError(RuntimeError):
    """The model's held-out accuracy is below its gate; it was not saved."""


@dataclass(frozen=True)
class TrainedModel:
    tag: str
    metrics: dict[str, Any]


def evaluate(pipeline: SentimentPipeline, examples: Sequence[dataset.Example]) -> dict[str, Any]:
    """Accuracy (with its 95 % interval), macro-F1, log-loss and calibration error on labelled examples."""
    return evaluation.evaluate(pipeline, examples)


def library_versions() -> dict[str, str]:
    versions = {"python": platform.python_version()}
    for name in LIBRARIES:
        with contextlib.suppress(importlib_metadata.PackageNotFoundError):
            versions[name] = importlib_metadata.version(name)
    return versions


def pooled(splits: Mapping[str, dataset.Splits], domains: Sequence[str], part: str) -> list[dataset.Example]:
    """One part (train, validation or test) of several domains' splits, concatenated in domain order."""
    return [e for d in domains for e in getattr(splits[d], part)]


def data_provenance(data_dir: Path | None, train_domains: Sequence[str], sizes: Mapping[str, int]) -> dict[str, Any]:
    return {
        "source": f"VADER ground truth (Hutto & Gilbert, ICWSM 2014) from {dataset.WHEEL_REQUIREMENT}",
        "sha256": dataset.data_checksum(data_dir),
        "train_domains": list(train_domains),
        "split_sizes": dict(sizes),
    }


def check_gates(store_name: str, domains_measured: Mapping[str, Any], claims: Mapping[str, float]) -> list[str]:
    failures = evaluation.claim_failures(domains_measured, claims)
    for failure in failures:
        logger.warning("%s: %s", store_name, failure)
    return failures


def save_model(
    store_name: str,
    pipeline: SentimentPipeline,
    metadata: dict[str, Any],
    gate_passed: bool,
    data_dir: Path | None = None,
) -> str:
    """Write the pipeline and its metadata into the Bento store; returns the new tag. A pipeline with a
    transformer encoder is stored with its other runtimes (ONNX, int8), each measured against fp32
    (train/export_runtimes.py)."""
    import bentoml  # heavy import, only needed once training is done

    from tasks.sentiment.pipelines import PIPELINES

    labels = {"task": "sentiment", "pipeline": pipeline.kind, "gate": "passed" if gate_passed else "failed"}
    with bentoml.models.create(store_name, labels=labels, metadata=metadata) as ref:
        pipeline.save(ref.path)
        if PIPELINES[pipeline.kind].takes_runtime:
            from train.export_runtimes import runtimes_for

            ref.info.metadata["runtimes"] = runtimes_for("sentiment", pipeline.kind, ref.path, metadata, data_dir)
    return str(ref.tag)


def train_and_save(
    *,
    store_name: str,
    make_pipeline: Callable[[int], SentimentPipeline],
    gate: float,
    seed: int = DEFAULT_SEED,
    allow_below_gate: bool = False,
    data_dir: Path | None = None,
    train_domains: Sequence[str] = (dataset.TRAIN_DOMAIN,),
    claims: Mapping[str, float] | None = None,
    provenance: Mapping[str, Any] | None = None,
    description: str = "",
    calibrate: bool = True,
) -> TrainedModel:
    """Fit one pipeline on the training splits of ``train_domains``, measure it on every domain's test
    split, and save it to the Bento store if it passes its gate on every domain it claims (by default
    ``gate`` on each training domain)."""
    started = time.perf_counter()
    splits = evaluation.domain_splits(seed, data_dir)
    train = pooled(splits, train_domains, "train")
    pipeline: SentimentPipeline = make_pipeline(seed)
    pipeline.fit([e.text for e in train], [e.label for e in train])
    validation = pooled(splits, train_domains, "validation")
    calibration: dict[str, Any] = {}
    if calibrate and validation:
        raw = pipeline.predict_proba([e.text for e in validation])
        temperature = fit_temperature(raw, [e.label for e in validation])
        calibration = {
            "method": "temperature, fitted on the validation split",
            "temperature": round(temperature, 6),
            "validation_ece_before": evaluation.measure(raw, [e.label for e in validation])["ece"],
        }
        pipeline = TemperatureScaled(pipeline, temperature)
    fit_seconds = time.perf_counter() - started

    claims = dict(claims) if claims is not None else {d: gate for d in train_domains}
    metrics: dict[str, Any] = {
        "validation": evaluate(pipeline, validation),
        "test": evaluate(pipeline, pooled(splits, train_domains, "test")),
    }
    by_domain = evaluation.evaluate_domains(pipeline, splits)
    failures = check_gates(store_name, by_domain, claims)
    logger.info("%s: test accuracy %s", store_name, ", ".join(f"{d} {m['accuracy']:.4f}" for d, m in by_domain.items()))
    if failures and not allow_below_gate:
        raise GateError(
            f"{store_name}: {'; '.join(failures)}; not saved "
            "(pass --allow-below-gate to save it anyway, labelled gate=failed)"
        )
    sizes = {part: len(pooled(splits, train_domains, part)) for part in ("train", "validation", "test")}
    model_metadata = {
        "description": description,
        "pipeline": pipeline.kind,
        "labels": list(LABELS),
        "metrics": metrics,
        "evaluation": {"split_seed": seed, "part": "test", "domains": by_domain},
        "claims": claims,
        "accuracy_gate": gate,
        "gate_passed": not failures,
        "params": pipeline.params(),
        "calibration": calibration,
        "seed": seed,
        "data": data_provenance(data_dir, train_domains, sizes),
        "library_versions": library_versions(),
        "fit_seconds": round(fit_seconds, 2),
        **dict(provenance or {}),
    }
    tag = save_model(store_name, pipeline, model_metadata, gate_passed=not failures, data_dir=data_dir)
    return TrainedModel(tag=tag, metrics={**metrics, "domains": by_domain})


def main(
    *,
    store_name: str,
    make_pipeline: Callable[[int], SentimentPipeline],
    gate: float,
    description: str,
    argv: Sequence[str] | None = None,
    train_domains: Sequence[str] = (dataset.TRAIN_DOMAIN,),
    claims: Mapping[str, float] | None = None,
    provenance: Mapping[str, Any] | None = None,
    calibrate: bool = True,
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
            train_domains=train_domains,
            claims=claims,
            provenance=provenance,
            calibrate=calibrate,
        )
    except (GateError, dataset.DatasetError) as exc:
        raise SystemExit(f"error: {exc}") from None
    m = trained.metrics
    logger.info("validation %.4f, test %.4f", m["validation"]["accuracy"], m["test"]["accuracy"])
    print(trained.tag)
