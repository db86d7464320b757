"""What translation costs sentiment: the movie-snippet test split, translated to Portuguese by the
en→pt model, then classified through the graph (pt→en translation, then the sentiment model), against
the same sentences classified in English.

    python -m lifecycle.evaluate_translation [--model transformer] [--n 0]

Loads the configured model versions from the Bento store in process (an offline tool, not the serving
path) and prints a table; ``--out`` writes it as JSON. Also reports the round trip's chrF against the
English originals.
"""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path

import numpy as np

from bundle.settings import load_settings
from tasks.sentiment.pipelines import LABELS, load_pipeline
from train import dataset
from train.import_translation import chrf


def stored_path(family: str) -> tuple[str, str, str]:
    import bentoml

    deployment = load_settings().models[family]
    model = bentoml.models.get(f"{deployment.store_name}:{deployment.versions[0]}")
    return str(model.tag), model.path, model.info.labels.get("pipeline", "")


def main(argv: list[str] | None = None) -> int:
    from tasks.translation.marian import MarianTiny

    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--model", default="transformer", help="the sentiment model (a name in serving.yaml)")
    parser.add_argument("--n", type=int, default=0, help="only the first N test sentences (0: all)")
    parser.add_argument("--seed", type=int, default=42)
    parser.add_argument("--out", type=Path, default=Path("results/translation/graph.json"))
    args = parser.parse_args(argv)

    test = dataset.split(dataset.load_domain(dataset.TRAIN_DOMAIN), seed=args.seed).test
    test = test[: args.n] if args.n else test
    english = [e.text for e in test]
    truth = np.array([LABELS.index(e.label) for e in test])
    en_pt_tag, en_pt_path, _ = stored_path("marian_en_pt")
    pt_en_tag, pt_en_path, _ = stored_path("marian_pt_en")
    sentiment_tag, sentiment_path, kind = stored_path(args.model)
    classifier = load_pipeline(kind, sentiment_path)

    def translate(model: MarianTiny, texts: list[str]) -> list[str]:
        return [t for i in range(0, len(texts), 32) for t in model.translate(texts[i : i + 32])]

    started = time.perf_counter()
    portuguese = translate(MarianTiny(en_pt_path), english)
    back = translate(MarianTiny(pt_en_path), portuguese)
    seconds = time.perf_counter() - started
    direct = float(np.mean(classifier.predict_proba(english).argmax(1) == truth))
    graph = float(np.mean(classifier.predict_proba(back).argmax(1) == truth))
    result = {
        "sentences": len(english),
        "sentiment_model": sentiment_tag,
        "translation_models": [en_pt_tag, pt_en_tag],
        "accuracy_english": round(direct, 4),
        "accuracy_portuguese_through_translation": round(graph, 4),
        "round_trip_chrf": chrf(back, english),
        "translation_seconds": round(seconds, 1),
    }
    print(f"movie-snippet test split, {len(english)} sentences; sentiment model {sentiment_tag}")
    print(f"{'input':<48} {'accuracy':>8}")
    print(f"{'English, classified directly':<48} {direct:>8.4f}")
    print(f"{'Portuguese (en→pt), through pt→en, classified':<48} {graph:>8.4f}")
    print(f"round-trip chrF en→pt→en: {result['round_trip_chrf']}; translation took {seconds:.0f} s")
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(result, indent=2))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
