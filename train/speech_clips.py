"""The clips the speech quality report listens to: real read speech, synthesised sentences, spoken digits.

Each source is a Debian package (``pocketsphinx-testdata``, ``asterisk-core-sounds-en-wav``, ``espeak-ng``);
what each set holds and why is in ``train/speech_quality.py``. Every clip is 16 kHz mono float audio decoded
by ``bundle.audio.decode``, as uploads are.
"""

from __future__ import annotations

import re
import subprocess
from dataclasses import dataclass
from pathlib import Path

import numpy as np

POCKETSPHINX = Path("/usr/share/pocketsphinx/test/data")
ASTERISK_DIGITS = Path("/usr/share/asterisk/sounds/en/digits")
SAMPLE_RATE = 16000
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
