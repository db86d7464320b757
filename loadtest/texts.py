"""What the load test sends: real sentences of three lengths, and batch sizes as clients make them.

Short and medium texts are single sentences (the shared samples, reviews written for this load test and,
when the data cache exists, the VADER movie snippets); long ones are joined from medium sentences up to a
few thousand characters, under the API's 5,000-character limit.
"""

from __future__ import annotations

import logging
import math
import random

from bundle import samples

logger = logging.getLogger("loadtest")

# Written for this load test in the style of short reviews, so that it runs without the VADER cache.
REVIEWS = [
    "Loved it.",
    "Terrible.",
    "Not bad at all.",
    "A total waste of two hours.",
    "Five stars, would watch again.",
    "The soundtrack alone is worth the ticket.",
    "I fell asleep halfway through and did not miss anything.",
    "Charming, funny and surprisingly sad in the last twenty minutes.",
    "The dialogue is clunky and the villain never feels like a real threat.",
    "Great battery life, but the screen scratches far too easily.",
    "Arrived two weeks late and the box was crushed; the blender works fine though.",
    "The hotel staff were friendly, the room was clean, and breakfast was better than expected.",
    "Customer service hung up on me twice, so I will not be ordering from this shop again.",
    "It does exactly what it says on the tin, nothing more and nothing less.",
    "An ambitious film that never quite decides whether it wants to be a thriller or a comedy.",
    "The lead actress carries the whole thing with a performance that is warm, sly and completely "
    "believable, even when the script asks her to do ridiculous things.",
    "After the first episode I was hooked; by the fifth I was checking my phone every few minutes, "
    "and the finale tied everything up so neatly that it felt like nothing had really been at stake.",
    "The restaurant is loud and the wait was long, but the pasta was perfect, the wine list is "
    "sensible, and the waiter remembered our order without writing anything down.",
    "I wanted to like this book, I really did, but the characters are thin, the plot is borrowed from "
    "better novels, and the ending arrives with a shrug.",
    "Quiet, patient and beautifully shot, it is the kind of film that stays with you for days.",
]

SHORT_MAX, MEDIUM_MAX = 60, 250  # characters; longer texts are built by joining sentences
LONG_CHARS = (600, 3000)  # stays well under the API's 5,000-character limit


def _load_texts() -> tuple[list[str], str]:
    """Sentences to send: the shared samples, the reviews above and, when cached, the VADER movie snippets.

    Only an existing cache is read: a load test must never start a download.
    """
    texts = [*samples.TEXTS, *(t for t, _ in samples.LABELLED), *REVIEWS]
    source = "built-in"
    try:
        from train import dataset

        folder = dataset.cache_dir()
        if all((folder / name).is_file() for name in dataset.DOMAIN_FILES.values()):
            texts += [e.text for e in dataset.load_domain("movies")]
            source = "built-in + VADER movie snippets"
    except Exception as exc:  # the sample texts are enough; say why the larger set was not used
        logger.warning("using built-in texts only: %s: %s", type(exc).__name__, exc)
    return texts, source


TEXTS, TEXT_SOURCE = _load_texts()
SHORT = [t for t in TEXTS if len(t) <= SHORT_MAX]
MEDIUM = [t for t in TEXTS if SHORT_MAX < len(t) <= MEDIUM_MAX]


def long_text() -> str:
    """A review of several paragraphs' length, joined from real sentences."""
    target = random.randint(*LONG_CHARS)
    parts: list[str] = []
    while sum(len(p) + 1 for p in parts) < target:
        parts.append(random.choice(MEDIUM))
    return " ".join(parts)


def text_of(length: str) -> str:
    if length == "short":
        return random.choice(SHORT)
    if length == "medium":
        return random.choice(MEDIUM)
    return long_text()


def some_length() -> str:
    return random.choices(("short", "medium", "long"), weights=(40, 45, 15))[0]


def batch_size() -> int:
    """2..32, log-uniform: as many batches of 2-4 as of 8-16 or 16-32."""
    return min(32, int(2 ** random.uniform(1, math.log2(33))))


def batch_bucket(n: int) -> str:
    return "2-4" if n <= 4 else "5-16" if n <= 16 else "17-32"
