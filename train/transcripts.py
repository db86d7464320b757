"""Transcripts made comparable: the normalisation word error rate is computed on, WER itself, digits.

Normalisation before WER (applied to reference and hypothesis alike; see :func:`normalize`): lower-case;
numerals written out as English words ("10" → "ten", "1,000" → "one thousand"); "mr"/"mrs"/"dr" expanded;
"&" → "and", "%" → "percent"; hyphens become spaces; apostrophes and all other punctuation removed;
whitespace collapsed. Nothing else (no spelling variants, no filler-word removal).

Used by ``train/speech_quality.py`` (the quality report) and ``train/import_whisper.py`` (the conversion
check).
"""

from __future__ import annotations

import re

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
