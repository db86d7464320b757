"""Import VADER into the Bento store as ``sentiment_vader``: the baseline every report prints.

    python -m train.import_vader

VADER (Hutto & Gilbert, ICWSM 2014; MIT licence) is rule-based: nothing is trained. The lexicon files
come from the installed ``vaderSentiment`` package (a pinned project dependency) and are checked against
the checksums below before they are copied into the store, so a stored VADER pins the exact lexicon it
was measured with. Its one fitted number is the temperature that turns the valence sum into a
probability (fitted on the training splits of the four domains; the label stays the paper's rule).
It claims every domain, with gates a few points under what it measured (seed 42): a damaged or
different lexicon fails them.
"""

from __future__ import annotations

from importlib import metadata as importlib_metadata
from pathlib import Path

from tasks.sentiment.pipelines.vader import LEXICON_FILES, VaderPipeline, installed_lexicon_dir
from train import dataset
from train.common import main

STORE_NAME = "sentiment_vader"
PACKAGE = "vaderSentiment"
VERSION = "3.3.2"
LEXICON_SHA256 = {
    "vader_lexicon.txt": "1ec9c6e9ee19aade328f8beb393a6afa71a5bb3acf7d3cc22d4ef568df374bf5",
    "emoji_utf8_lexicon.txt": "b8d54223ae1ce22a3e12c1f745316b71678c328eb5f5d3063a842f37cfbe2823",
}
# measured at import (test splits, seed 42): movies 0.617, tweets 0.958, amazon 0.711, nyt 0.635
CLAIMS = {"movies": 0.58, "tweets": 0.93, "amazon": 0.68, "nyt": 0.60}


def checked_lexicon_dir() -> Path:
    installed = importlib_metadata.version(PACKAGE)
    if installed != VERSION:
        raise SystemExit(f"error: {PACKAGE}=={installed} is installed; this importer expects {VERSION}")
    folder = installed_lexicon_dir()
    for name in LEXICON_FILES:
        actual = dataset.sha256_of(folder / name)
        if actual != LEXICON_SHA256[name]:
            raise SystemExit(
                f"error: {folder / name}: sha256 {actual} differs from the expected {LEXICON_SHA256[name]}"
            )
    return folder


PROVENANCE = {
    "licence": "MIT",
    "provenance": {
        "package": f"{PACKAGE}=={VERSION}",
        "lexicon_sha256": LEXICON_SHA256,
        "paper": "C.J. Hutto and E. Gilbert. VADER: A Parsimonious Rule-based Model for Sentiment Analysis of "
        "Social Media Text. ICWSM 2014.",
    },
}

if __name__ == "__main__":
    main(
        store_name=STORE_NAME,
        make_pipeline=lambda seed: VaderPipeline(lexicon_dir=checked_lexicon_dir()),
        gate=min(CLAIMS.values()),
        description="VADER: lexicon and rules, no training (the data's own paper); temperature-calibrated",
        train_domains=tuple(dataset.DOMAIN_FILES),
        claims=CLAIMS,
        provenance=PROVENANCE,
        calibrate=False,  # VADER's own fit() is its calibration
    )
