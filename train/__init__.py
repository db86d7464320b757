"""Training scripts: each fits one pipeline on the VADER movie snippets and saves it to the Bento store.

``TRAINERS`` maps a Bento store name to the module that creates it; ``python -m train.ensure`` uses it
to train whatever serving.yaml needs and the store lacks.
"""

TRAINERS: dict[str, str] = {
    "sentiment_nb": "train.naive_bayes",
    "sentiment_logreg": "train.tfidf_logreg",
    "sentiment_transformer": "train.transformer",
    "minilm_encoder": "train.import_minilm",
}
