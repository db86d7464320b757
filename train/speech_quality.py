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

Normalisation before WER (applied to reference and hypothesis alike; see :func:`normalize`): lower-case;
numerals written out as English words ("10" → "ten", "1,000" → "one thousand"); "mr"/"mrs"/"dr" expanded;
"&" → "and", "%" → "percent"; hyphens become spaces; apostrophes and all other punctuation removed;
whitespace collapsed. Nothing else (no spelling variants, no filler-word removal).

The real-time factor is processing time over audio duration, per set, with the set decoded in batches of
``BATCH``. Prints a Markdown table and writes ``results/evaluation/speech.json`` and ``speech.md``.
"""

from __future__ import annotations

import argparse
import json
import logging
import re
import shutil
import subprocess
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

logger = logging.getLogger("train.speech_quality")

ROOT = Path(__file__).resolve().parent.parent
OUTPUT = ROOT / "results" / "evaluation"
POCKETSPHINX = Path("/usr/share/pocketsphinx/test/data")
ASTERISK_DIGITS = Path("/usr/share/asterisk/sounds/en/digits")
SAMPLE_RATE = 16000
BATCH = 8
ESPEAK_SENTENCES = 20
DIGIT_STRINGS = ("4155", "90210", "3141592")
DIGIT_PAUSE_S = 0.15
# espeak-ng's Spanish and Portuguese voices at their default 175 words/min were mostly unintelligible to base
# (2 of 5 languages detected wrongly, translations unrelated to the text); at 120 they are closer to speech.
FOREIGN_WORDS_PER_MINUTE = 120
# (language, espeak-ng voice, sentence, an English reference for the reader); written for this check
FOREIGN = (
    ("es", "es", "El gato duerme en la casa todos los días.", "The cat sleeps in the house every day."),
    ("es", "es", "Mañana vamos a la playa con mis amigos.", "Tomorrow we are going to the beach with my friends."),
    ("es", "es", "Esta película es muy aburrida y demasiado larga.", "This film is very boring and far too long."),
    ("pt", "pt", "Eu gosto muito de ler livros à noite.", "I really like reading books at night."),
    (
        "pt",
        "pt",
        "O filme foi excelente e os atores estavam ótimos.",
        "The film was excellent and the actors were great.",
    ),
)

_ONES = [
    "zero",
    "one",
    "two",
    "three",
    "four",
    "five",
    "six",
    "seven",
    "eight",
    "nine",
    "ten",
    "eleven",
    "twelve",
    "thirteen",
    "fourteen",
    "fifteen",
    "sixteen",
    "seventeen",
    "eighteen",
    "nineteen",
]
_TENS = ["_", "_", "twenty", "thirty", "forty", "fifty", "sixty", "seventy", "eighty", "ninety"]
_ABBREVIATIONS = {"mr": "mister", "mrs": "missus", "dr": "doctor"}
_DIGIT_WORDS = {w: str(i) for i, w in enumerate(_ONES[:10])} | {"oh": "0", "o": "0"}


def number_words(n: int) -> str:
    """English words for 0 ≤ n < 10**12 ("105" → "one hundred five")."""
    if n < 20:
        return _ONES[n]
    if n < 100:
        return _TENS[n // 10] + ("" if n % 10 == 0 else " " + _ONES[n % 10])
    for size, name in ((10**9, "billion"), (10**6, "million"), (1000, "thousand"), (100, "hundred")):
        if n >= size:
            rest = n % size
            return f"{number_words(n // size)} {name}" + ("" if rest == 0 else " " + number_words(rest))
    raise AssertionError(n)


def normalize(text: str) -> str:
    """The text WER is computed on (the rules are in the module docstring)."""
    text = text.lower().replace("&", " and ").replace("%", " percent ")
    text = re.sub(r"(?<=\d),(?=\d{3})", "", text)  # 1,000 → 1000
    text = re.sub(
        r"\d+", lambda m: " " + number_words(int(m.group())) + " " if len(m.group()) < 13 else m.group(), text
    )
    text = text.replace("-", " ").replace("'", "").replace("’", "")
    text = re.sub(r"[^\w\s]", " ", text)
    words = [_ABBREVIATIONS.get(w, w) for w in text.split()]
    return " ".join(words)


def digits_of(text: str) -> str:
    """Only the digits a transcript states: numerals kept, digit words ("seven", "oh") turned into digits."""
    words = re.sub(r"[^\w\s]", " ", text.lower()).split()
    return "".join(w if w.isdigit() else _DIGIT_WORDS.get(w, "") for w in words)


def wer(references: list[str], hypotheses: list[str]) -> float:
    """Corpus word error rate (jiwer); an empty reference list is 0."""
    import jiwer

    pairs = [(r, h) for r, h in zip(references, hypotheses, strict=True) if r.strip()]
    if not pairs:
        return 0.0
    return float(jiwer.wer([r for r, _ in pairs], [h if h.strip() else "<empty>" for _, h in pairs]))


@dataclass(frozen=True)
class Clip:
    name: str
    samples: np.ndarray
    reference: str

    @property
    def seconds(self) -> float:
        return len(self.samples) / SAMPLE_RATE


def load(path: Path) -> np.ndarray:
    from bundle import audio

    return audio.decode(path.read_bytes(), SAMPLE_RATE, 30.0, path.name).samples


def _transcripts(path: Path) -> dict[str, str]:
    """pocketsphinx's ``<s> words </s> (id)`` lines → {id: words}."""
    out = {}
    for line in path.read_text().splitlines():
        match = re.match(r"\s*(?:<s>)?(.*?)(?:</s>)?\s*\(([^)]+)\)\s*$", line)
        if match:
            out[match.group(2)] = " ".join(match.group(1).split())
    return out


def read_speech() -> list[Clip]:
    clips = []
    for folder, transcript in (("librivox", "transcription"), ("cards", "cards.transcription")):
        for clip_id, text in sorted(_transcripts(POCKETSPHINX / folder / transcript).items()):
            clips.append(Clip(f"{folder}/{clip_id}", load(POCKETSPHINX / folder / f"{clip_id}.wav"), text))
    return clips


def espeak(text: str, voice: str, folder: Path, name: str, words_per_minute: int | None = None) -> np.ndarray:
    path = folder / f"{name}.wav"
    speed = ["-s", str(words_per_minute)] if words_per_minute else []
    subprocess.run(["espeak-ng", "-v", voice, *speed, "-w", str(path), text], check=True, capture_output=True)
    return load(path)


def movie_sentences(n: int = ESPEAK_SENTENCES) -> list[str]:
    """The first ``n`` movie-snippet test sentences of 6-16 words that a speaker could read as written."""
    from train import dataset

    test = dataset.split(dataset.load_domain(dataset.TRAIN_DOMAIN), seed=42).test
    chosen = []
    for example in test:
        text = " ".join(example.text.split())
        if 6 <= len(text.split()) <= 16 and not re.search(r"[\d()\[\]#*/]|\.\.\.|''|--", text):
            chosen.append(text)
        if len(chosen) == n:
            break
    return chosen


def synthesised(folder: Path) -> list[Clip]:
    return [Clip(f"movie/{i}", espeak(s, "en", folder, f"movie{i}"), s) for i, s in enumerate(movie_sentences())]


def digit_clips() -> list[Clip]:
    digits = {d: load(ASTERISK_DIGITS / f"{d}.wav") for d in "0123456789"}
    clips = [Clip(f"digit/{d}", s, d) for d, s in digits.items()]
    pause = np.zeros(int(DIGIT_PAUSE_S * SAMPLE_RATE), np.float32)
    for string in DIGIT_STRINGS:
        parts = [p for d in string for p in (digits[d], pause)]
        clips.append(Clip(f"digits/{string}", np.concatenate(parts[:-1]), string))
    return clips


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
