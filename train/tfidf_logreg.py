"""Train the TF-IDF + logistic regression sentiment model and save it as ``sentiment_logreg``.

python -m train.tfidf_logreg [--seed 42] [--allow-below-gate]
"""

from tasks.sentiment.pipelines.tfidf_logreg import TfidfLogRegPipeline
from train.common import main

STORE_NAME = "sentiment_logreg"
GATE = 0.78

if __name__ == "__main__":
    main(
        store_name=STORE_NAME,
        make_pipeline=lambda seed: TfidfLogRegPipeline(C=2.0, seed=seed),
        gate=GATE,
        description="scikit-learn TF-IDF (word 1-2-grams + char_wb 2-5-grams) and logistic regression",
    )
