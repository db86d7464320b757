"""Export a stored transformer model to its other runtimes and measure each against fp32.

    python -m train.export_runtimes [--model transformer --model stacked --model minilm] [--force]

For each model (serving.yaml names; default: every served model whose encoder can change runtime) this
makes a **new version** of it in the Bento store: the same files and metadata, plus ``runtimes/`` beside
its encoder's weights (tasks/embedding/runtimes.py): ``encoder.onnx`` (float32) and ``encoder.int8.onnx``
(int8 weights), and a manifest with every runtime's quality and speed measured here. Quality is the
model's own: a sentiment model's accuracy on the validation and test splits of every domain it claims
(a runtime qualifies when it loses at most 0.5 points on each of them), the
embedding model's cosine similarity to its fp32 vectors (qualifies at ≥ 0.99 on every text). The runner
then serves ``runtime: auto`` (serving.yaml) on the fastest one that qualifies on the machine it runs on.

Training calls :func:`add_runtimes` itself (train/common.py, train/import_minilm.py), so this script is for
models made before runtimes existed, or to re-measure on another machine (``--force``).
"""

from __future__ import annotations

import argparse
import logging
import shutil
import time
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from tasks.embedding import runtimes
from train import dataset, evaluation
from train.common import DEFAULT_SEED

if TYPE_CHECKING:
    import torch

logger = logging.getLogger(__name__)

SPEED_TEXTS = 128  # movie validation snippets timed per runtime
MIN_EMBEDDING_COSINE = 0.99

Quality = Callable[[str], dict[str, Any]]  # runtime -> {"ok": bool, ...measurements}


def encoder_dirs(model_dir: str | Path) -> list[Path]:
    """The folders inside a stored model that hold a MiniLM encoder (save_pretrained files)."""
    return sorted(p.parent for p in Path(model_dir).rglob("config.json") if (p.parent / "tokenizer.json").exists())


def export_onnx(model: torch.nn.Module, tokenizer: Any, encoder_dir: str | Path) -> dict[str, dict[str, Any]]:
    """Write ``encoder.onnx`` (float32) and ``encoder.int8.onnx`` for the BERT ``model`` into ``runtimes/``.

    The graph includes the masked mean pooling and L2 normalisation, so it answers what
    ``SentenceEncoder.forward`` answers. Returns each file's name, size and sha256."""
    import torch
    from onnxruntime.quantization import QuantType, quantize_dynamic

    class Pooled(torch.nn.Module):
        def __init__(self, bert: torch.nn.Module) -> None:
            super().__init__()
            self.bert = bert

        def forward(self, input_ids: torch.Tensor, attention_mask: torch.Tensor, token_type_ids: torch.Tensor) -> Any:
            hidden = self.bert(
                input_ids=input_ids, attention_mask=attention_mask, token_type_ids=token_type_ids
            ).last_hidden_state
            mask = attention_mask.unsqueeze(-1).to(hidden.dtype)
            mean = (hidden * mask).sum(dim=1) / mask.sum(dim=1).clamp(min=1e-9)
            return torch.nn.functional.normalize(mean, p=2, dim=1)

    folder = Path(encoder_dir) / runtimes.RUNTIME_DIR
    folder.mkdir(parents=True, exist_ok=True)
    fp32_path, int8_path = folder / runtimes.ONNX_FILES["onnx"], folder / runtimes.ONNX_FILES["onnx_int8"]
    sample = tokenizer(["an example", "a second, longer example sentence"], padding="longest", return_tensors="pt")
    axes = {name: {0: "batch", 1: "tokens"} for name in runtimes.INPUT_NAMES}
    wrapped = Pooled(model.cpu()).eval()
    with torch.inference_mode():
        # the TorchScript exporter: one self-contained file, no extra packages (the dynamo one needs onnxscript)
        torch.onnx.export(
            wrapped,
            tuple(sample[name] for name in runtimes.INPUT_NAMES),
            str(fp32_path),
            input_names=list(runtimes.INPUT_NAMES),
            output_names=["embedding"],
            dynamic_axes={**axes, "embedding": {0: "batch"}},
            opset_version=17,
            dynamo=False,
        )
    import onnx

    sensitive = [
        node.name
        for node in onnx.load(str(fp32_path)).graph.node
        if node.op_type == "MatMul" and "/output/dense/" in node.name and "/attention/" not in node.name
    ]
    quantize_dynamic(
        str(fp32_path),
        str(int8_path),
        weight_type=QuantType.QInt8,
        op_types_to_quantize=["MatMul"],
        per_channel=True,
        reduce_range=True,
        nodes_to_exclude=sensitive,
    )
    return {
        name: {
            "file": f"{runtimes.RUNTIME_DIR}/{path.name}",
            "bytes": path.stat().st_size,
            "sha256": dataset.sha256_of(path),
        }
        for name, path in (("onnx", fp32_path), ("onnx_int8", int8_path))
    }


def measure_speed(
    embed: Callable[[Sequence[str]], np.ndarray], texts: Sequence[str], device: str, sizes: Sequence[int] = (1, 16, 64)
) -> dict[str, Any]:
    """Sentences per second of ``embed`` at each batch size (one warm-up batch first), on ``texts``."""
    import time

    rates: dict[str, float] = {}
    for size in sizes:
        rounds = max(1, 64 // size) if size < 64 else 2
        batches = [list(texts[(i * size) % len(texts) :][:size]) for i in range(rounds)]
        embed(batches[0])
        started = time.perf_counter()
        for batch in batches:
            embed(batch)
        rates[str(size)] = round(sum(len(b) for b in batches) / (time.perf_counter() - started), 1)
    return {"machine": runtimes.machine_signature(device), "sentences_per_s": rates}


def movie_texts(data_dir: Path | None = None) -> list[str]:
    """The movie snippets' validation split: what speed (and the embedding model's quality) is measured on."""
    return [e.text for e in dataset.split(dataset.load_domain("movies", data_dir), seed=DEFAULT_SEED).validation]


def add_runtimes(
    model_dir: str | Path,
    quality: Quality,
    embedder: Callable[[str], Callable[..., np.ndarray]],
    speed_texts: Sequence[str],
) -> dict:
    """Export every encoder in ``model_dir`` to ONNX, then measure each runtime that can run here:
    ``quality(runtime)`` for the whole model, ``embedder(runtime)`` on ``speed_texts`` for speed. Writes
    the manifest next to each encoder and returns it."""
    import torch
    from transformers import AutoModel, AutoTokenizer

    started = time.perf_counter()
    folders = encoder_dirs(model_dir)
    if not folders:
        raise ValueError(f"{model_dir} holds no transformer encoder (no config.json beside a tokenizer.json)")
    files: dict[str, dict[str, Any]] = {}
    for folder in folders:
        model = AutoModel.from_pretrained(folder).eval()
        files = export_onnx(model, AutoTokenizer.from_pretrained(folder), folder)
    measured: dict[str, Any] = {}
    for runtime in runtimes.RUNTIMES:
        reason = runtimes.unsupported_reason(runtime, "cpu")
        if reason:
            measured[runtime] = {"skipped": reason, "quality_ok": False}
            continue
        result = quality(runtime)
        measured[runtime] = {
            **files.get(runtime, {}),
            "quality": result,
            "quality_ok": bool(result.pop("ok")),
            "speed": measure_speed(embedder(runtime), list(speed_texts)[:SPEED_TEXTS], "cpu"),
        }
        logger.info(
            "runtime %s: quality %s (%s), sentences/s at batch 1/16/64: %s",
            runtime,
            result,
            "passes" if measured[runtime]["quality_ok"] else "fails",
            measured[runtime]["speed"]["sentences_per_s"],
        )
    manifest = {
        "reference": "fp32",
        "max_accuracy_loss": runtimes.MAX_ACCURACY_LOSS,
        "min_embedding_cosine": MIN_EMBEDDING_COSINE,
        "torch": torch.__version__,
        "onnxruntime": _version("onnxruntime"),
        "measured_at": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
        "seconds": round(time.perf_counter() - started, 1),
        "runtimes": measured,
    }
    for folder in folders:
        runtimes.write_manifest(folder, manifest)
    return manifest


def _version(package: str) -> str:
    from importlib import metadata

    return metadata.version(package)


# ------------------------------------------------------------------------------ each task's quality


def sentiment_quality(
    kind: str, model_dir: str | Path, claims: Sequence[str], data_dir: Path | None = None
) -> tuple[Quality, Callable]:
    """Accuracy on the validation and test splits of each claimed domain; ok within 0.5 points of fp32 on
    every one of them (the test split too: choosing a runtime fits nothing, and a runtime that loses more
    than that on held-out text should not serve in fp32's place)."""
    from tasks.sentiment.pipelines import encoder_of, load_pipeline

    splits = evaluation.domain_splits(DEFAULT_SEED, data_dir)
    reference: dict[str, float] = {}

    def load(runtime: str) -> Any:
        return load_pipeline(kind, str(model_dir), device="cpu", runtime=runtime)

    def quality(runtime: str) -> dict[str, Any]:
        pipeline = load(runtime)
        result: dict[str, Any] = {"validation_accuracy": {}, "test_accuracy": {}}
        for domain in claims:
            for part in ("validation", "test"):
                examples = getattr(splits[domain], part)
                predicted = pipeline.predict([e.text for e in examples])
                accuracy = float(np.mean([p == e.label for p, e in zip(predicted, examples, strict=True)]))
                result[f"{part}_accuracy"][domain] = round(accuracy, 4)
        measured = {f"{part} {d}": a for part in ("validation", "test") for d, a in result[f"{part}_accuracy"].items()}
        if runtime == "fp32":
            reference.update(measured)
        losses = {key: round(reference[key] - a, 4) for key, a in measured.items()}
        result["loss_vs_fp32"] = losses
        # a hair of float rounding on top of the limit, so that a loss of exactly 0.5 points qualifies
        result["ok"] = all(loss <= runtimes.MAX_ACCURACY_LOSS + 1e-9 for loss in losses.values())
        return result

    def embedder(runtime: str) -> Callable[..., np.ndarray]:
        return encoder_of(load(runtime)).embed

    return quality, embedder


def embedding_quality(model_dir: str | Path, texts: Sequence[str]) -> tuple[Quality, Callable]:
    """Cosine similarity of each runtime's vectors to fp32's on ``texts``."""
    from tasks.embedding.encoder import SentenceEncoder

    reference = SentenceEncoder(model_dir, device="cpu").embed(texts)

    def quality(runtime: str) -> dict[str, Any]:
        cosine = (SentenceEncoder(model_dir, device="cpu", runtime=runtime).embed(texts) * reference).sum(axis=1)
        return {
            "min_cosine_to_fp32": round(float(cosine.min()), 5),
            "mean_cosine_to_fp32": round(float(cosine.mean()), 5),
            "texts": len(texts),
            "ok": bool(cosine.min() >= MIN_EMBEDDING_COSINE),
        }

    def embedder(runtime: str) -> Callable[..., np.ndarray]:
        return SentenceEncoder(model_dir, device="cpu", runtime=runtime).embed

    return quality, embedder


def runtimes_for(
    task: str, kind: str, model_dir: str | Path, metadata: dict[str, Any], data_dir: Path | None = None
) -> dict[str, Any]:
    """Export and measure the runtimes of a model of ``task`` saved in ``model_dir``; the manifest's summary."""
    texts = movie_texts(data_dir)
    if task == "sentiment":
        claims = sorted(metadata.get("claims") or {"movies": 0})
        quality, embedder = sentiment_quality(kind, model_dir, claims, data_dir)
    elif task == "embedding":
        quality, embedder = embedding_quality(model_dir, texts)
    else:
        raise ValueError(f"task {task!r} has no runtimes to export")
    return summary(add_runtimes(model_dir, quality, embedder, texts))


# ------------------------------------------------------------------------ a new version of a stored model


def export_new_version(tag: str, force: bool = False, data_dir: Path | None = None) -> str:
    """Copy the stored model ``tag`` into a new version with runtimes added; returns the new tag (or
    ``tag`` itself when it already has them and ``force`` is not set)."""
    import bentoml

    source = bentoml.models.get(tag)
    folders = encoder_dirs(source.path)
    if not folders:
        logger.info("%s has no transformer encoder: it runs one way only", source.tag)
        return str(source.tag)
    if not force and runtimes.read_manifest(folders[0])["runtimes"]:
        logger.info("%s already has measured runtimes (--force measures again)", source.tag)
        return str(source.tag)
    labels = dict(source.info.labels)
    metadata = dict(source.info.metadata)
    with bentoml.models.create(source.tag.name, labels=labels, metadata=metadata) as ref:
        shutil.copytree(source.path, ref.path, dirs_exist_ok=True, ignore=shutil.ignore_patterns("model.yaml"))
        task, kind = labels.get("task", ""), labels.get("pipeline", "")
        ref.info.metadata["runtimes"] = runtimes_for(task, kind, ref.path, metadata, data_dir)
        ref.info.metadata["runtimes_added_to"] = str(source.tag)
    logger.info("%s: new version %s with runtimes", source.tag, ref.tag)
    return str(ref.tag)


def summary(manifest: dict[str, Any]) -> dict[str, Any]:
    """What the model's metadata (and /models) shows of a manifest."""
    return {
        "measured_at": manifest["measured_at"],
        "max_accuracy_loss": manifest["max_accuracy_loss"],
        **{
            name: {k: v for k, v in entry.items() if k in ("quality", "quality_ok", "speed", "skipped", "sha256")}
            for name, entry in manifest["runtimes"].items()
        },
    }


def main(argv: Sequence[str] | None = None) -> None:
    from bundle.settings import load_settings
    from tasks.registry import TASKS

    settings = load_settings()
    with_runtimes = [name for name, d in settings.models.items() if TASKS[d.task].runtimes]
    parser = argparse.ArgumentParser(description="Export transformer models to their other runtimes.")
    parser.add_argument("--model", action="append", choices=with_runtimes, help="serving.yaml model (repeatable)")
    parser.add_argument("--force", action="store_true", help="measure again even if the version has runtimes")
    parser.add_argument("--data-dir", type=Path, default=None, help="VADER ground-truth folder (default: cache)")
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    for name in args.model or with_runtimes:
        print(export_new_version(settings.models[name].tags()[0], force=args.force, data_dir=args.data_dir))


if __name__ == "__main__":
    main()
