"""Drift report: recorded traffic compared with the training distribution.

    python -m lifecycle.drift [--since 2026-11-22T10:00:00] [--until ...] [--last 1000] [--family transformer]

Reads the prediction records the service writes (configuration.yaml ``monitoring``; by default
``var/monitoring/bundle_predictions/data/*.log*``), keeps the answers callers got (not shadows),
and compares the window against the movie-snippet training split:

- inputs: text length in characters and in words, with the two-sample Kolmogorov–Smirnov test and
  the population stability index (PSI) over ten reference-decile bins;
- predictions: the share of positive answers against the training data's positive share, with an
  exact binomial test.

Verdict: DRIFT when an input's PSI exceeds 0.25, or the positive share moves by more than 10 points
with p < 0.001; WATCH when a PSI exceeds 0.1; otherwise OK. The statistics come from SciPy
(``scipy.stats.ks_2samp`` and ``binomtest``): well-tested implementations with exact p-values, and
already installed with scikit-learn.
"""

from __future__ import annotations

import argparse
import datetime
import glob
import json
import os
import sys
from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np
from scipy import stats

from train import dataset

PSI_DRIFT, PSI_WATCH = 0.25, 0.10
SHARE_DRIFT, P_DRIFT = 0.10, 1e-3
DEFAULT_LOG_DIR = Path("var/monitoring")


@dataclass
class FeatureDrift:
    feature: str
    reference_median: float
    window_median: float
    ks_statistic: float
    ks_p_value: float
    psi: float


@dataclass
class Report:
    window: int
    reference: int
    features: list[FeatureDrift]
    reference_positive_share: float
    window_positive_share: float
    share_p_value: float
    verdict: str
    reasons: list[str]

    def table(self) -> str:
        lines = [
            f"window: {self.window} recorded predictions; reference: {self.reference} training texts",
            "",
            f"{'feature':<12} {'ref median':>10} {'win median':>10} {'KS D':>7} {'KS p':>10} {'PSI':>7}",
        ]
        for f in self.features:
            lines.append(
                f"{f.feature:<12} {f.reference_median:>10.1f} {f.window_median:>10.1f} "
                f"{f.ks_statistic:>7.3f} {f.ks_p_value:>10.2e} {f.psi:>7.3f}"
            )
        lines += [
            "",
            f"positive share: reference {self.reference_positive_share:.3f}, window {self.window_positive_share:.3f}"
            f" (binomial p = {self.share_p_value:.2e})",
            "",
            f"verdict: {self.verdict}" + (f" ({'; '.join(self.reasons)})" if self.reasons else ""),
        ]
        return "\n".join(lines)


def psi(reference: np.ndarray, window: np.ndarray, bins: int = 10) -> float:
    """Population stability index over the reference's quantile bins (each holds ~1/bins of it)."""
    edges = np.unique(np.quantile(reference, np.linspace(0, 1, bins + 1)[1:-1]))
    ref_share = np.bincount(np.searchsorted(edges, reference, side="right"), minlength=len(edges) + 1) / len(reference)
    win_share = np.bincount(np.searchsorted(edges, window, side="right"), minlength=len(edges) + 1) / len(window)
    ref_share, win_share = np.clip(ref_share, 1e-4, None), np.clip(win_share, 1e-4, None)
    return float(np.sum((win_share - ref_share) * np.log(win_share / ref_share)))


def read_records(
    log_dir: Path, since: str | None = None, family: str | None = None, until: str | None = None
) -> list[dict]:
    pattern = str(log_dir / "bundle_predictions" / "data" / "*.log*")
    records = []
    for path in sorted(glob.glob(pattern)):
        with open(path) as fh:
            for line in fh:
                try:
                    record = json.loads(line)
                except json.JSONDecodeError:
                    continue
                if record.get("role", "primary") != "primary" or record.get("family") == "ensemble":
                    continue
                if since and record.get("timestamp", "") < since:
                    continue
                if until and record.get("timestamp", "") >= until:
                    continue
                if family and record.get("family") != family:
                    continue
                if record.get("task", "sentiment") != "sentiment":
                    continue
                records.extend(per_text(record))
    records.sort(key=lambda r: r.get("timestamp", ""))
    return records


def per_text(record: dict) -> list[dict]:
    """One row per text: a record holds one request, its list fields one entry per text."""
    lists = {k: v for k, v in record.items() if isinstance(v, list)}
    if not lists:  # a record of one text (the format before records held whole requests)
        return [record]
    context = {k: v for k, v in record.items() if k not in lists}
    n = min(len(v) for v in lists.values())
    return [{**context, **{k: v[i] for k, v in lists.items()}} for i in range(n)]


def reference_profile(seed: int = 42) -> dict[str, np.ndarray | float]:
    train = dataset.split(dataset.load_domain(dataset.TRAIN_DOMAIN), seed=seed).train
    return {
        "text_chars": np.array([len(e.text) for e in train], dtype=float),
        "text_words": np.array([len(e.text.split()) for e in train], dtype=float),
        "positive_share": float(np.mean([e.label == "positive" for e in train])),
    }


def compare(records: list[dict], reference: dict) -> Report:
    if len(records) < 30:
        raise SystemExit(f"only {len(records)} records in the window; need at least 30 for a meaningful report")
    features, reasons, watch = [], [], False
    for name in ("text_chars", "text_words"):
        ref = reference[name]
        win = np.array([r[name] for r in records], dtype=float)
        ks = stats.ks_2samp(ref, win)
        value = psi(ref, win)
        features.append(
            FeatureDrift(name, float(np.median(ref)), float(np.median(win)), ks.statistic, ks.pvalue, value)
        )
        if value > PSI_DRIFT:
            reasons.append(f"{name} PSI {value:.2f} > {PSI_DRIFT}")
        elif value > PSI_WATCH:
            watch = True
    positives = sum(r["label"] == "positive" for r in records)
    share = positives / len(records)
    p_value = stats.binomtest(positives, len(records), reference["positive_share"]).pvalue
    if abs(share - reference["positive_share"]) > SHARE_DRIFT and p_value < P_DRIFT:
        reasons.append(f"positive share {share:.2f} vs {reference['positive_share']:.2f} in training")
    verdict = "DRIFT" if reasons else ("WATCH" if watch else "OK")
    return Report(
        window=len(records),
        reference=len(reference["text_chars"]),
        features=features,
        reference_positive_share=reference["positive_share"],
        window_positive_share=share,
        share_p_value=float(p_value),
        verdict=verdict,
        reasons=reasons,
    )


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument(
        "--log-dir", type=Path, default=Path(os.environ.get("SENTIMENT_MONITORING_DIR", DEFAULT_LOG_DIR))
    )
    parser.add_argument("--since", help="ISO time; only records from then on")
    parser.add_argument("--until", help="ISO time; only records before then")
    parser.add_argument("--last", type=int, default=None, help="only the most recent N records")
    parser.add_argument("--family", help="only answers of this model family")
    parser.add_argument("--json", action="store_true", help="print the report as JSON")
    parser.add_argument("--fail-on-drift", action="store_true", help="exit 3 when the verdict is DRIFT")
    args = parser.parse_args(argv)
    if args.since:
        datetime.datetime.fromisoformat(args.since)  # a clear error for a malformed time
    records = read_records(args.log_dir, args.since, args.family, args.until)
    if args.last:
        records = records[-args.last :]
    report = compare(records, reference_profile())
    print(json.dumps(asdict(report), indent=2) if args.json else report.table())
    return 3 if args.fail_on_drift and report.verdict == "DRIFT" else 0


if __name__ == "__main__":
    sys.exit(main())
