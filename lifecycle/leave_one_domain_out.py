"""The stack's recipe trained on three domains and tested on the fourth, beside VADER on the same texts.

    python -m lifecycle.leave_one_domain_out     # ~5 minutes on 2 cores; saves no model

Uses the C and cascade margin of the stored ``sentiment_stacked`` (``python -m train.stacked`` first) and
the same members; writes ``results/evaluation/leave_one_domain_out.json``.
"""

from __future__ import annotations

import argparse
import json
import logging
from pathlib import Path
from typing import Any

from train import evaluation
from train.common import DEFAULT_SEED
from train.stack_recipe import EmbeddingCache, fit_recipe
from train.stacked import STORE_NAME, domain_members_of_store, member, movie_out_of_fold


def leave_one_domain_out(seed: int, data_dir: Path | None) -> dict[str, Any]:
    """Train the recipe (with the stored stack's C and margin) on three domains and test on the fourth."""
    import bentoml

    stored = bentoml.models.get(f"{STORE_NAME}:latest")  # make it first: python -m train.stacked
    params: dict[str, Any] = dict(stored.info.metadata["params"])  # type: ignore[arg-type]
    C, skip_margin = float(params["C"]), float(params["skip_margin"])
    cross_fitting: Any = stored.info.metadata.get("cross_fit") or {"folds": 0}
    folds = int(cross_fitting["folds"])
    vader_tag, vader = member("vader")
    transformer_tag, transformer = member("transformer")
    domain_tags, domain_members = domain_members_of_store()
    embed = EmbeddingCache(transformer)
    splits = evaluation.domain_splits(seed, data_dir)
    # the stack's own cross-fitted movie predictions (cached by train.stacked), used when movies are in
    movie_oof = movie_out_of_fold(splits, transformer, domain_members, seed, folds)
    table: dict[str, Any] = {}
    for held_out in evaluation.DOMAINS:
        others = [d for d in evaluation.DOMAINS if d != held_out]
        pipeline, _ = fit_recipe(
            splits,
            others,
            vader,
            transformer,
            embed,
            seed,
            domain_members,
            C=C,
            skip_margin=skip_margin,
            movie_oof=movie_oof,
        )
        test = splits[held_out].test
        labels = [e.label for e in test]
        texts = [e.text for e in test]
        table[held_out] = {
            "stack (trained without this domain)": evaluation.measure(pipeline.predict_proba(texts, embed), labels),
            "vader": evaluation.measure(vader.predict_proba(texts), labels),
        }
    note = (
        "the transformer, Naive Bayes and TF-IDF movie members are the movie-trained ones in every row, so the "
        "movie row is not a clean hold-out: they learned the movie snippets' training split (never their test split)"
    )
    return {
        "seed": seed,
        "stack": str(stored.tag),
        "C": C,
        "skip_margin": skip_margin,
        "members": {"vader": vader_tag, "transformer": transformer_tag, **domain_tags},
        "table": table,
        "note": note,
    }


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--seed", type=int, default=DEFAULT_SEED)
    parser.add_argument("--data-dir", type=Path, default=None, help="folder with the VADER files")
    parser.add_argument("--output", type=Path, default=Path("results/evaluation/leave_one_domain_out.json"))
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    report = leave_one_domain_out(args.seed, args.data_dir)
    print("\nleave one domain out (test split of the held-out domain; accuracy [95% CI])")
    for domain, row in report["table"].items():
        cells = "   ".join(f"{k} {m['accuracy']:.4f} [{m['ci95'][0]:.3f}, {m['ci95'][1]:.3f}]" for k, m in row.items())
        print(f"  {domain:8s} {cells}")
    print(f"  note: {report['note']}")
    args.output.parent.mkdir(parents=True, exist_ok=True)
    args.output.write_text(json.dumps(report, indent=2))


if __name__ == "__main__":
    main()
