"""Fit the gated stack (``tasks/sentiment/pipelines/stacked.py``) and save it as ``sentiment_stacked``.

    python -m train.stacked     # fit on all four domains, gate, save
    (python -m lifecycle.leave_one_domain_out: the recipe's generalisation report)

Members come from the store: ``sentiment_vader``, ``sentiment_transformer`` and the movie-trained
``sentiment_nb`` and ``sentiment_logreg`` (made first when missing); the TF-IDF member, the transformer's
all-domains head and the domain gate are fitted here on the training splits of every domain. The
combiner learns from rows no member fitted: the validation splits and the out-of-fold predictions on the
tweets', Amazon and NYT training splits (the movie-trained members learned the movie training split, so
those rows are left out). The combiner's C and the cascade's margin are chosen by 5-fold cross-validation
over those rows (``train/stack_recipe.py``); the test splits are read once, at the end, here.

What was tried before this recipe (same rows, same folds): the combiner without the transformer's
all-domains head (Amazon 0.81, NYT 0.74, tweets 0.958), per-domain experts mixed by the gate, hard
gating, gradient-boosted trees instead of the logistic combiner, a word + character gate: none better;
without the movie-trained Naive Bayes and TF-IDF members, movie snippets 0.867 instead of 0.886.
"""

from __future__ import annotations

import argparse
import json
import logging
import subprocess
import sys
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from tasks.sentiment.pipelines import LABELS, PIPELINES, SentimentPipeline
from tasks.sentiment.pipelines.stacked import StackedPipeline
from train import dataset, evaluation
from train.common import DEFAULT_SEED, GateError, data_provenance, library_versions, pooled, save_model
from train.stack_crossfit import OutOfFold, cross_fit, fold_transformers_like
from train.stack_recipe import EmbeddingCache, fit_recipe

logger = logging.getLogger("train.stacked")

STORE_NAME = "sentiment_stacked"
MEMBERS = {
    "vader": ("sentiment_vader", "train.import_vader"),
    "transformer": ("sentiment_transformer", "train.transformer"),
    "naive_bayes": ("sentiment_nb", "train.naive_bayes"),
    "logreg": ("sentiment_logreg", "train.tfidf_logreg"),
}
# Members trained on the movie snippets alone (their feature columns, in this order, follow TF-IDF's)
DOMAIN_MEMBERS = ("naive_bayes", "logreg")
# The stack claims every domain. Measured (seed 42): movies 0.86, tweets 0.96, amazon 0.81, nyt 0.75; the
# gates sit a little lower so that float differences between CPUs cannot fail a fresh machine's install.
CLAIMS = {"movies": 0.84, "tweets": 0.94, "amazon": 0.76, "nyt": 0.70}
# Cross-fitting the movie-trained members on the movie training split (train/stack_crossfit.py) is off by
# default. Measured with 2 folds (seed 42, 2026-12-07): the cross-validated movie estimate became honest
# (0.846, against 0.844 on the test split; without it 0.886 against 0.843) and movie calibration better
# (ECE 0.021 instead of 0.037), but no test accuracy moved (movies 0.8438 vs 0.8434, the other domains
# within 0.3 points) and it costs two more fine-tunes (8 minutes in fp32), past the 15-minute budget.
DEFAULT_FOLDS = 0


def member(name: str) -> tuple[str, Any]:
    """A member model from the store (made first when the store has none): its tag and pipeline."""
    import bentoml

    store_name, module = MEMBERS[name]
    try:
        model = bentoml.models.get(f"{store_name}:latest")
    except bentoml.exceptions.NotFound:
        logger.info("the stack needs %s; making it (python -m %s)", store_name, module)
        subprocess.run([sys.executable, "-m", module], check=True)
        model = bentoml.models.get(f"{store_name}:latest")
    # the member as fitted, without a stored temperature: the combiner learns its own scale for it
    return str(model.tag), PIPELINES[model.info.labels["pipeline"]].load(model.path, device="cpu")


def domain_members_of_store() -> tuple[dict[str, str], dict[str, SentimentPipeline]]:
    """The movie-trained members: their tags and pipelines, in feature order."""
    tags, pipelines = {}, {}
    for name in DOMAIN_MEMBERS:
        tags[name], pipelines[name] = member(name)
    return tags, pipelines


def print_table(title: str, rows: dict[str, dict[str, float]]) -> None:
    domains = list(next(iter(rows.values())))
    print(f"\n{title}\n{'':78s}" + "".join(f"{d:>9s}" for d in domains))
    for name, acc in rows.items():
        print(f"{name:78s}" + "".join(f"{acc[d]:9.4f}" for d in domains))


def movie_out_of_fold(
    splits: dict[str, dataset.Splits],
    transformer: Any,
    domain_members: dict[str, SentimentPipeline],
    seed: int,
    folds: int,
) -> OutOfFold | None:
    """The movie-trained members' cross-fitted predictions on the movie training split (``folds`` 0: none)."""
    if folds == 0:
        return None
    return cross_fit(
        splits[dataset.TRAIN_DOMAIN].train, fold_transformers_like(transformer), domain_members, seed, folds
    )


def train_and_save(
    seed: int = DEFAULT_SEED,
    data_dir: Path | None = None,
    allow_below_gate: bool = False,
    claims: dict[str, float] | None = None,
    folds: int = DEFAULT_FOLDS,
) -> str:
    claims = CLAIMS if claims is None else claims
    started = time.perf_counter()
    vader_tag, vader = member("vader")
    transformer_tag, transformer = member("transformer")
    domain_tags, domain_members = domain_members_of_store()
    embed = EmbeddingCache(transformer)
    splits = evaluation.domain_splits(seed, data_dir)
    movie_oof = movie_out_of_fold(splits, transformer, domain_members, seed, folds)
    pipeline, tried = fit_recipe(
        splits, evaluation.DOMAINS, vader, transformer, embed, seed, domain_members, movie_oof=movie_oof
    )
    print_table(
        "what was tried: accuracy, 5-fold cross-validated over the validation splits "
        "and the other domains' out-of-fold training rows",
        tried,
    )
    fit_seconds = time.perf_counter() - started

    # The test splits, once, through the pipeline's own prediction path (cascade included).
    by_domain, share = {}, {}
    for domain, s in splits.items():
        proba = pipeline.predict_proba([e.text for e in s.test], embed)
        by_domain[domain] = evaluation.measure(proba, [e.label for e in s.test])
        share[domain] = round(pipeline.last_transformer_share, 4)
    failures = evaluation.claim_failures(by_domain, claims)
    for domain, m in by_domain.items():
        logger.info(
            "%s: test accuracy %.4f [%.4f, %.4f], ECE %.4f, transformer used for %.0f%% of texts",
            domain,
            m["accuracy"],
            *m["ci95"],
            m["ece"],
            100 * share[domain],
        )
    if failures and not allow_below_gate:
        raise GateError(f"{STORE_NAME}: {'; '.join(failures)}; not saved (--allow-below-gate saves it anyway)")
    pooled_test = pooled(splits, evaluation.DOMAINS, "test")
    sizes = {part: len(pooled(splits, evaluation.DOMAINS, part)) for part in ("train", "validation", "test")}
    metadata = {
        "description": "gated stack of VADER, TF-IDF (all domains), movie-trained Naive Bayes and TF-IDF, "
        "and the fine-tuned transformer; "
        "the transformer only for texts the cheap members are unsure of",
        "pipeline": StackedPipeline.kind,
        "labels": list(LABELS),
        "metrics": {
            "validation": {"cross_validated": tried},
            "test": evaluation.measure(
                pipeline.predict_proba([e.text for e in pooled_test], embed), [e.label for e in pooled_test]
            ),
        },
        "evaluation": {"split_seed": seed, "part": "test", "domains": by_domain},
        "transformer_share": share,
        "claims": claims,
        "accuracy_gate": min(claims.values()),
        "gate_passed": not failures,
        "params": {
            **pipeline.params(),
            "member_tags": {"vader": vader_tag, "transformer": transformer_tag, **domain_tags},
        },
        "seed": seed,
        "data": data_provenance(data_dir, evaluation.DOMAINS, sizes),
        "library_versions": library_versions(),
        "fit_seconds": round(fit_seconds, 2),
        "cross_fit": {"folds": folds, "seconds": movie_oof.seconds} if movie_oof else {"folds": 0},
        "licence": "MIT (VADER lexicon), Apache-2.0 (MiniLM encoder); the rest trained here",
    }
    return save_model(
        STORE_NAME, pipeline, json.loads(json.dumps(metadata)), gate_passed=not failures, data_dir=data_dir
    )


def main(argv: Sequence[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--seed", type=int, default=DEFAULT_SEED)
    parser.add_argument("--data-dir", type=Path, default=None, help="folder with the VADER files")
    parser.add_argument("--allow-below-gate", action="store_true", help="save even below a claimed domain's gate")
    parser.add_argument(
        "--folds",
        type=int,
        default=DEFAULT_FOLDS,
        help="cross-fit the movie-trained members on the movie training split in this many folds, so that "
        "those rows teach the combiner too (default 0: they are left out; 2 was measured, see DEFAULT_FOLDS)",
    )
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    try:
        print(train_and_save(args.seed, args.data_dir, args.allow_below_gate, folds=args.folds))
    except (GateError, dataset.DatasetError) as exc:
        raise SystemExit(f"error: {exc}") from None


if __name__ == "__main__":
    main()
