"""Train the NLTK Naive Bayes sentiment model and save it as ``sentiment_nb`` in the Bento store.

python -m train.naive_bayes [--seed 42] [--allow-below-gate]
"""

from tasks.sentiment.pipelines.naive_bayes import NaiveBayesPipeline
from train.common import main

STORE_NAME = "sentiment_nb"
GATE = 0.78

if __name__ == "__main__":
    main(
        store_name=STORE_NAME,
        make_pipeline=lambda seed: NaiveBayesPipeline(bigrams=True, min_df=2),
        gate=GATE,
        description="NLTK Naive Bayes on binary Snowball-stem unigram+bigram features",
    )
