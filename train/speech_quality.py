"""How well does a stored Whisper model hear? Word error rate on real and synthesised speech, on this machine.

    python -m train.speech_quality [--variant base|tiny_en|all] [--throughput]

Every clip goes through the service's own predictor (tasks/speech/whisper.py), as 16 kHz PCM the way the
entry service sends it (files are decoded and resampled by ``bundle.audio.decode``, as uploads are):

- ``read speech``: the clips of Debian's ``pocketsphinx-testdata`` that come with a transcript: five
  LibriVox sentences (Sense and Sensibility, a male reader, 3-7 s) and five "cards" utterances ("ten of
  clubs", a different speaker, 1-3.5 s);
- ``espeak-ng``: 20 sentences of the VADER movie snippets' test split (the first of 6-16 words without
  digits, brackets or ellipses, in split order, seed 42) spoken by espeak-ng's default English voice. A
  formant synthesiser is not a person, and the snippets are full of proper names, so this measures
  robustness on the sentiment task's own kind of text more than everyday accuracy;
- ``digits``: the Asterisk prompts 0-9 (``asterisk-core-sounds-en-wav``, 8 kHz telephone recordings of a
  female voice), one digit per clip, and three digit strings made by joining them with 150 ms pauses.
  Scored on the digits alone: number words and numerals both become digits, everything else is dropped;
  the metric is the exact-match share and the digit error rate (edit distance over digits);
- for multilingual models, ``translate``: five espeak-ng Spanish and Portuguese sentences (spoken at 120
  words/min), language detection (the predictor's, without a language given) and the translation to
  English, reported as text next to a reference translation.

Transcripts are normalised before WER as ``train/transcripts.py`` says (reference and hypothesis alike).

The real-time factor is processing time over audio duration, per set, with the set decoded in batches of
``BATCH``. Prints a Markdown table and writes ``results/evaluation/speech.json`` and ``speech.md``.
"""

from __future__ import annotations

import argparse
import json
import logging
import shutil
import tempfile
import time
from pathlib import Path
from typing import Any

from train.speech_clips import (
    ASTERISK_DIGITS,
    FOREIGN,
    FOREIGN_WORDS_PER_MINUTE,
    POCKETSPHINX,
    Clip,
    digit_clips,
    espeak,
    read_speech,
    synthesised,
)
from train.transcripts import digits_of, normalize, wer

logger = logging.getLogger("train.speech_quality")

ROOT = Path(__file__).resolve().parent.parent
OUTPUT = ROOT / "results" / "evaluation"
BATCH = 8


def run(
    predictor: Any, clips: list[Clip], task: str = "transcribe", language: str | None = None
) -> tuple[list[dict[str, str]], float]:
    """The predictor's outputs for ``clips`` in batches of ``BATCH``, and the seconds it took."""
    from bundle.audio import to_pcm16

    outputs: list[dict[str, str]] = []
    started = time.perf_counter()
    for i in range(0, len(clips), BATCH):
        batch = clips[i : i + BATCH]
        outputs += predictor.predict(
            [{"pcm16": to_pcm16(c.samples), "task": task, "language": language} for c in batch]
        )
    return outputs, time.perf_counter() - started


def score_words(name: str, clips: list[Clip], outputs: list[dict[str, str]], seconds: float) -> dict[str, Any]:
    references = [normalize(c.reference) for c in clips]
    hypotheses = [normalize(o["text"]) for o in outputs]
    audio = sum(c.seconds for c in clips)
    return {
        "set": name,
        "clips": len(clips),
        "audio_seconds": round(audio, 2),
        "wer": round(wer(references, hypotheses), 4),
        "exact_match": round(sum(r == h for r, h in zip(references, hypotheses, strict=True)) / len(clips), 4),
        "rtf": round(seconds / audio, 3),
        "examples": [
            {"clip": c.name, "reference": c.reference, "output": o["text"]} for c, o in zip(clips, outputs, strict=True)
        ],
    }


def score_digits(clips: list[Clip], outputs: list[dict[str, str]], seconds: float) -> dict[str, Any]:
    import jiwer

    found = [digits_of(o["text"]) for o in outputs]
    references = [c.reference for c in clips]
    audio = sum(c.seconds for c in clips)
    return {
        "set": "digits",
        "clips": len(clips),
        "audio_seconds": round(audio, 2),
        "accuracy": round(sum(f == r for f, r in zip(found, references, strict=True)) / len(clips), 4),
        "digit_error_rate": round(float(jiwer.cer(references, [f or "-" for f in found])), 4),
        "rtf": round(seconds / audio, 3),
        "examples": [
            {"clip": c.name, "reference": c.reference, "output": o["text"]} for c, o in zip(clips, outputs, strict=True)
        ],
    }


def translation(predictor: Any, folder: Path) -> dict[str, Any]:
    clips = [
        Clip(f"{lang}/{i}", espeak(text, voice, folder, f"{lang}{i}", FOREIGN_WORDS_PER_MINUTE), english)
        for i, (lang, voice, text, english) in enumerate(FOREIGN)
    ]
    outputs, seconds = run(predictor, clips, task="translate")
    detected = [o["language"] for o in outputs]
    expected = [lang for lang, *_ in FOREIGN]
    return {
        "set": "translate (espeak-ng es/pt → en)",
        "clips": len(clips),
        "language_accuracy": round(sum(d == e for d, e in zip(detected, expected, strict=True)) / len(clips), 4),
        "wer_vs_reference_translation": round(
            wer([normalize(c.reference) for c in clips], [normalize(o["text"]) for o in outputs]), 4
        ),
        "rtf": round(seconds / sum(c.seconds for c in clips), 3),
        "examples": [
            {"source": text, "language": lang, "detected": o["language"], "output": o["text"], "reference": english}
            for (lang, _, text, english), o in zip(FOREIGN, outputs, strict=True)
        ],
    }


def throughput(predictor: Any, clips: list[Clip], sizes: tuple[int, ...] = (1, 4, 8)) -> dict[str, float]:
    """Clips per second for the same 8 clips at each batch size (one warm-up call first)."""
    from bundle.audio import to_pcm16

    items = [{"pcm16": to_pcm16(c.samples), "task": "transcribe", "language": "en"} for c in clips[:8]]
    predictor.predict(items[:1])
    out = {}
    for size in sizes:
        started = time.perf_counter()
        for i in range(0, len(items), size):
            predictor.predict(items[i : i + size])
        out[f"batch_{size}"] = round(len(items) / (time.perf_counter() - started), 3)
    return out


def measure(folder: str | Path, variant: str, multilingual: bool, with_throughput: bool = False) -> dict[str, Any]:
    """Every set for the transformers model in ``folder``; a dict for the importer's metadata."""
    from tasks.speech.whisper import WhisperPredictor

    predictor = WhisperPredictor(str(folder), "cpu")
    started = time.perf_counter()
    with tempfile.TemporaryDirectory(prefix="speech-quality-") as tmp:
        # each set needs a Debian package (.ci/run installs them); a set whose package is missing is
        # recorded as not measured rather than failing the import of a model that works
        makers = {
            "read_speech": (read_speech, POCKETSPHINX.is_dir(), "pocketsphinx-testdata"),
            "espeak_ng": (lambda: synthesised(Path(tmp)), shutil.which("espeak-ng") is not None, "espeak-ng"),
            "digits": (digit_clips, ASTERISK_DIGITS.is_dir(), "asterisk-core-sounds-en-wav"),
        }
        results: dict[str, Any] = {}
        sets = {}
        for name, (make, available, package) in makers.items():
            if available:
                sets[name] = make()
            else:
                results[name] = {"not_measured": f"the Debian package {package} is not installed"}
                logger.warning("%s %s: not measured (install the Debian package %s)", variant, name, package)
        for name, clips in sets.items():
            outputs, seconds = run(predictor, clips)
            results[name] = (
                score_digits(clips, outputs, seconds)
                if name == "digits"
                else score_words(name, clips, outputs, seconds)
            )
            logger.info("%s %s: %s", variant, name, {k: v for k, v in results[name].items() if k != "examples"})
        if multilingual and shutil.which("espeak-ng"):
            results["translate"] = translation(predictor, Path(tmp))
    if with_throughput and "read_speech" in sets:
        results["throughput_clips_per_s"] = throughput(predictor, sets["read_speech"])
    results["total_seconds"] = round(time.perf_counter() - started, 1)
    results["device"] = "cpu, fp32, 1 intra-op thread for generation"
    results["normalisation"] = (
        "lower-case, numerals as words, mr/mrs/dr expanded, hyphens to spaces, punctuation removed"
    )
    return results


def markdown(all_results: dict[str, dict[str, Any]]) -> str:
    lines = [
        "# Speech to text: Whisper on real and synthesised speech",
        "",
        "Produced by `python -m train.speech_quality`; the method is in train/speech_quality.py.",
        "",
        "| model | read speech WER (10 clips) | espeak-ng WER (20) | digits accuracy (13) | digit error rate "
        "| RTF read / espeak / digits |",
        "|---|---|---|---|---|---|",
    ]

    def cell(result: dict[str, Any], key: str, fmt: str) -> str:
        return format(result[key], fmt) if key in result else "not measured"

    for variant, r in all_results.items():
        rs, es, dg = r["read_speech"], r["espeak_ng"], r["digits"]
        lines.append(
            f"| {variant} | {cell(rs, 'wer', '.3f')} | {cell(es, 'wer', '.3f')} | {cell(dg, 'accuracy', '.2f')} "
            f"| {cell(dg, 'digit_error_rate', '.3f')} "
            f"| {cell(rs, 'rtf', '.2f')} / {cell(es, 'rtf', '.2f')} / {cell(dg, 'rtf', '.2f')} |"
        )
    for variant, r in all_results.items():
        if "throughput_clips_per_s" in r:
            lines += ["", f"{variant} throughput (clips/s, 8 read-speech clips): {r['throughput_clips_per_s']}"]
        if "translate" in r:
            t = r["translate"]
            lines += [
                "",
                f"## {variant}: translation to English (language detection {t['language_accuracy']:.0%})",
                "",
                "| source | detected | output | reference |",
                "|---|---|---|---|",
            ]
            lines += [f"| {e['source']} | {e['detected']} | {e['output']} | {e['reference']} |" for e in t["examples"]]
    return "\n".join(lines) + "\n"


def main(argv: list[str] | None = None) -> None:
    from train.ctranslate2_whisper import convert
    from train.import_whisper import VARIANTS, unpack

    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--variant", choices=[*VARIANTS, "all"], default="all")
    parser.add_argument("--throughput", action="store_true", help="also measure clips/s at batch 1, 4 and 8")
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    results = {}
    for name in VARIANTS if args.variant == "all" else [args.variant]:
        spec = VARIANTS[name]
        with tempfile.TemporaryDirectory(prefix=f"whisper-{name}-") as tmp:
            convert(unpack(spec), tmp)
            results[name] = measure(tmp, name, spec.multilingual, with_throughput=args.throughput)
    OUTPUT.mkdir(parents=True, exist_ok=True)
    (OUTPUT / "speech.json").write_text(json.dumps(results, indent=2, ensure_ascii=False) + "\n")
    table = markdown(results)
    (OUTPUT / "speech.md").write_text(table)
    print(table)


if __name__ == "__main__":
    main()
