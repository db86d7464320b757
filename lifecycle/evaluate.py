"""One table: every served sentiment model on every domain's test split, beside VADER.

    make evaluate                        # python -m lifecycle.evaluate
    python -m lifecycle.evaluate --no-write

Loads the default version of every sentiment model serving.yaml lists, in process (an offline tool, not
the serving path), and measures it on the test split of each domain (``split(load_domain(d), seed)``):
accuracy with its 95 % Wilson interval, the paired comparison with VADER on the same texts (exact McNemar
test), expected calibration error (ECE, 10 bins) and the in-process cost per text. Then:

- prints the table and writes it to ``results/evaluation/`` (JSON and Markdown);
- writes each model's numbers into its metadata (``evaluation``), which ``GET /models`` and the page's
  models table show;
- checks every model against the gates of the domains it claims (``claims`` in its metadata; older
  models claim their training domain at ``accuracy_gate``) and exits 1, naming the model and domain,
  when one falls below.
"""

from __future__ import annotations

import argparse
import json
import logging
import sys
import time
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import numpy as np

from bundle.settings import load_settings
from tasks.embedding import runtimes
from tasks.sentiment.pipelines import LABELS, load_pipeline
from train import evaluation
from train.common import DEFAULT_SEED, library_versions

logger = logging.getLogger("lifecycle.evaluate")
BASELINE = "vader"


def claims_of(metadata: dict[str, Any]) -> dict[str, float]:
    """The domains a model claims and its gate for each (older models: their training domain)."""
    if "claims" in metadata:
        return {d: float(g) for d, g in metadata["claims"].items()}
    data = metadata.get("data", {})
    domains = data.get("train_domains") or [data.get("train_domain", "movies")]
    return {d: float(metadata.get("accuracy_gate", 0.0)) for d in domains}


def mcnemar_p(ours: np.ndarray, theirs: np.ndarray) -> float:
    """Exact McNemar test on paired right/wrong answers: how surprising the discordant split is if both
    models were equally accurate on these texts."""
    from scipy.stats import binomtest

    only_ours, only_theirs = int(np.sum(ours & ~theirs)), int(np.sum(~ours & theirs))
    if only_ours + only_theirs == 0:
        return 1.0
    return float(binomtest(only_ours, only_ours + only_theirs, 0.5).pvalue)


def markdown(report: dict[str, Any]) -> str:
    domains = list(evaluation.DOMAINS)
    lines = [
        f"Test split of each domain (seed {report['seed']}): accuracy [95 % Wilson interval]; "
        f"▲/▼: better/worse than VADER on the same texts, with the exact McNemar p-value; cost per text in "
        f"process on {report['machine']['cpu']}. `make evaluate`, {report['date']}.",
        "",
        "| model | " + " | ".join(domains) + " | ms / text |",
        "|---|" + "---:|" * (len(domains) + 1),
    ]
    for family, row in report["models"].items():
        cells = []
        for d in domains:
            m = row["domains"][d]
            cell = f"{m['accuracy']:.3f} [{m['ci95'][0]:.3f}, {m['ci95'][1]:.3f}]"
            versus = row.get("vs_baseline", {}).get(d)
            if versus is not None:
                p = versus["mcnemar_p"]
                cell += f" {'▲' if versus['difference'] >= 0 else '▼'} " + ("p<0.0001" if p < 1e-4 else f"p={p:.2g}")
            cells.append(cell)
        default = " (default)" if family == report["default_model"] else ""
        lines.append(f"| {family}{default} | " + " | ".join(cells) + f" | {row['ms_per_text']:.2f} |")
    lines += [
        "",
        "Calibration: expected calibration error (10 bins) of the probability the API returns.",
        "",
        "| model | " + " | ".join(domains) + " |",
        "|---|" + "---:|" * len(domains),
    ]
    for family, row in report["models"].items():
        lines.append(f"| {family} | " + " | ".join(f"{row['domains'][d]['ece']:.3f}" for d in domains) + " |")
    lines += ["", "Models: " + ", ".join(f"{f} `{row['tag']}`" for f, row in report["models"].items())]
    return "\n".join(lines) + "\n"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--seed", type=int, default=DEFAULT_SEED)
    parser.add_argument("--data-dir", type=Path, default=None)
    parser.add_argument("--output", type=Path, default=Path("results/evaluation"))
    parser.add_argument("--no-write", action="store_true", help="do not write the numbers into model metadata")
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(message)s")
    import bentoml

    settings = load_settings()
    families = [name for name, m in settings.models.items() if m.task == "sentiment"]
    # the baseline first, so every other row can be compared with it
    families.sort(key=lambda name: name != BASELINE)
    splits = evaluation.domain_splits(args.seed, args.data_dir)
    report: dict[str, Any] = {
        "seed": args.seed,
        "date": datetime.now(UTC).strftime("%Y-%m-%d"),
        "machine": {"cpu": runtimes.cpu_model(), **library_versions()},
        "default_model": settings.tasks["sentiment"].default_model,
        "models": {},
    }
    refused = []
    correct: dict[str, dict[str, np.ndarray]] = {}  # per model and domain: was each test text right?
    for family in families:
        deployment = settings.models[family]
        model = bentoml.models.get(f"{deployment.store_name}:{deployment.versions[0]}")
        pipeline = load_pipeline(model.info.labels["pipeline"], model.path, device="cpu")
        logger.info("measuring %s (%s)", family, model.tag)
        by_domain, right, seconds = {}, {}, 0.0
        for domain, split in splits.items():
            texts, labels = [e.text for e in split.test], [e.label for e in split.test]
            started = time.perf_counter()
            proba = pipeline.predict_proba(texts)
            seconds += time.perf_counter() - started
            by_domain[domain] = evaluation.measure(proba, labels)
            right[domain] = proba.argmax(axis=1) == np.array([LABELS.index(label) for label in labels])
        correct[family] = right
        claims = claims_of(model.info.metadata)
        failures = evaluation.claim_failures(by_domain, claims)
        n_texts = sum(len(s.test) for s in splits.values())
        row: dict[str, Any] = {
            "tag": str(model.tag),
            "domains": by_domain,
            "ms_per_text": round(1000 * seconds / max(1, n_texts), 3),
            "claims": claims,
            "gate_failures": failures,
        }
        if family != BASELINE and BASELINE in report["models"]:
            baseline = report["models"][BASELINE]
            row["vs_baseline"] = {
                d: {
                    "difference": round(by_domain[d]["accuracy"] - baseline["domains"][d]["accuracy"], 4),
                    "mcnemar_p": round(mcnemar_p(right[d], correct[BASELINE][d]), 6),
                }
                for d in by_domain
            }
        report["models"][family] = row
        refused += [f"{family} ({model.tag}): {f}" for f in failures]
        if not args.no_write:
            measured: dict[str, Any] = {
                "split_seed": args.seed,
                "part": "test",
                "domains": by_domain,
                "measured_at": report["date"],
            }
            model.info.metadata["evaluation"] = measured
            model.info.metadata["gate_passed"] = model.info.metadata.get("gate_passed", True) and not failures
            model.flush()

    table = markdown(report)
    print("\n" + table)
    args.output.mkdir(parents=True, exist_ok=True)
    (args.output / "evaluation.json").write_text(json.dumps(report, indent=2))
    (args.output / "evaluation.md").write_text(table)
    print(f"written: {args.output / 'evaluation.json'}, {args.output / 'evaluation.md'}")
    if refused:
        for line in refused:
            print(f"REFUSED by its gate: {line}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
