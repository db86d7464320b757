"""The audio endpoints through the service (in process: the entry service's ASGI app with its runners),
with the real Whisper and basic-pitch models and real sound: spoken prompts from Debian's asterisk
package, speech synthesised by espeak-ng, tones made here. Every bad upload gets a 4xx that says what is
wrong, and the service keeps answering afterwards."""

from __future__ import annotations

import base64
import io
import shutil
import subprocess
from pathlib import Path

import mido
import numpy as np
import pytest
import soundfile

DIGITS = Path("/usr/share/asterisk/sounds/en/digits")


def wav_bytes(samples: np.ndarray, rate: int, fmt: str = "WAV") -> bytes:
    buf = io.BytesIO()
    soundfile.write(buf, samples, rate, format=fmt)
    return buf.getvalue()


def tone(freq: float, seconds: float, rate: int = 22_050) -> np.ndarray:
    t = np.arange(int(seconds * rate)) / rate
    return (0.4 * np.sin(2 * np.pi * freq * t)).astype(np.float32)


def spoken(text: str, tmp_path: Path, voice: str = "en-us") -> bytes:
    if shutil.which("espeak-ng") is None:
        pytest.skip("espeak-ng is not installed (.ci/run installs it)")
    out = tmp_path / "speech.wav"
    subprocess.run(["espeak-ng", "-v", voice, "-s", "150", "-w", str(out), text], check=True)
    return out.read_bytes()


def upload(client, route: str, data: bytes, name: str = "clip.wav", ctype: str = "audio/wav", **fields):
    form = {k: str(v).lower() if isinstance(v, bool) else str(v) for k, v in fields.items()}
    return client.post(route, files={"audio": (name, data, ctype)}, data=form)


def test_spoken_digit_is_transcribed_by_the_english_model(service_client):
    if not DIGITS.is_dir():
        pytest.skip("asterisk-core-sounds-en-wav is not installed (.ci/run installs it)")
    response = upload(service_client, "/transcribe", (DIGITS / "7.wav").read_bytes(), model="whisper_tiny_en")
    assert response.status_code == 200, response.text
    body = response.json()
    assert body["text"].strip(" .").lower() in {"7", "seven"}, body
    assert body["language"] == "en" and body["family"] == "whisper_tiny_en"
    assert body["model"].startswith("speech_whisper_tiny_en:") and body["source_sample_rate"] == 8000
    assert 0.3 < body["duration_s"] < 2


def test_default_model_detects_the_language_and_translates(service_client, tmp_path):
    spanish = spoken("El gato duerme en la cocina todos los días.", tmp_path, voice="es")
    heard = upload(service_client, "/transcribe", spanish).json()
    assert heard["family"] == "whisper_base" and heard["language"] == "es", heard
    assert "gato" in heard["text"].lower()
    english = upload(service_client, "/transcribe", spanish, task="translate").json()
    assert english["task"] == "translate" and "cat" in english["text"].lower(), english


def test_speech_to_sentiment_names_every_model(service_client, tmp_path):
    review = spoken("A gorgeous, witty film with a wonderful cast.", tmp_path)
    response = upload(service_client, "/sentiment/speech", review, model="whisper_tiny_en", sentiment_model="logreg")
    assert response.status_code == 200, response.text
    body = response.json()
    assert "gorgeous" in body["text"].lower() and body["label"] == "positive", body
    assert body["models"]["speech"].startswith("speech_whisper_tiny_en:")
    assert body["models"]["sentiment"].startswith("sentiment_logreg:")


def test_music_notes_and_midi(service_client):
    response = upload(service_client, "/music/notes", wav_bytes(tone(440.0, 1.5, 44_100), 44_100), midi=True)
    assert response.status_code == 200, response.text
    body = response.json()
    longest = max(body["notes"], key=lambda n: n["offset_s"] - n["onset_s"])
    assert longest["pitch_name"] == "A4" and longest["pitch_midi"] == 69, body["notes"]
    midi = mido.MidiFile(file=io.BytesIO(base64.b64decode(body["midi_base64"])))
    assert 69 in {m.note for m in midi.tracks[0] if m.type == "note_on"}


def test_silence_answers_an_empty_transcript(service_client):
    response = upload(service_client, "/transcribe", wav_bytes(np.zeros(32_000, dtype=np.float32), 16_000))
    assert response.status_code == 200, response.text
    assert len(response.json()["text"]) < 20  # nothing heard, not a hallucinated paragraph


@pytest.mark.parametrize(
    "route, data, ctype, fields, status, needle",
    [
        ("/transcribe", b"", "audio/wav", {}, 400, "is empty"),
        ("/transcribe", b"definitely not a recording " * 40, "audio/wav", {}, 400, "could not be decoded"),
        ("/transcribe", wav_bytes(tone(300, 1.0), 22_050)[:40], "audio/wav", {}, 400, "could not be decoded"),
        ("/transcribe", wav_bytes(tone(300, 31.0, 8_000), 8_000), "audio/wav", {}, 400, "the maximum is 30 s"),
        ("/music/notes", wav_bytes(tone(300, 61.0, 8_000), 8_000), "audio/wav", {}, 400, "the maximum is 60 s"),
        ("/transcribe", b"hello", "text/plain", {}, 415, "text/plain is not accepted"),
        ("/transcribe", wav_bytes(tone(300, 1.0), 22_050), "audio/wav", {"task": "sing"}, 400, "task"),
        (
            "/transcribe",
            wav_bytes(tone(300, 1.0), 22_050),
            "audio/wav",
            {"language": "Klingon"},
            400,
            "not a language code",
        ),
        (
            "/transcribe",
            wav_bytes(tone(300, 1.0), 22_050),
            "audio/wav",
            {"model": "whisper_tiny_en", "task": "translate"},
            400,
            "English only",
        ),
        ("/music/notes", wav_bytes(tone(300, 1.0), 22_050), "audio/wav", {"onset_threshold": 3}, 400, "onset"),
    ],
)
def test_bad_uploads_get_a_clear_4xx(service_client, route, data, ctype, fields, status, needle):
    response = upload(service_client, route, data, ctype=ctype, **fields)
    assert response.status_code == status, response.text
    assert needle in response.json()["error"], response.json()


def test_json_bodies_and_huge_uploads_are_refused_before_reading(service_client):
    as_json = service_client.post("/transcribe", json={"audio": "http://169.254.169.254/latest/meta-data"})
    assert as_json.status_code == 415 and "multipart/form-data" in as_json.json()["error"]
    huge = upload(service_client, "/transcribe", bytes(26 * 2**20))
    assert huge.status_code == 413 and "25.0 MiB" in huge.json()["error"]


def test_the_service_keeps_answering_after_bad_audio(service_client):
    for _ in range(3):
        assert upload(service_client, "/transcribe", b"garbage" * 100).status_code == 400
    ok = upload(service_client, "/music/notes", wav_bytes(tone(261.63, 1.0), 22_050))
    assert ok.status_code == 200 and "C4" in {n["pitch_name"] for n in ok.json()["notes"]}


def test_audio_models_are_listed_and_refuse_texts_over_the_inference_protocol(service_client):
    listing = service_client.post("/models", json={}).json()
    assert listing["tasks"]["speech"]["routes"] == ["/transcribe", "/sentiment/speech"]
    assert listing["tasks"]["music"]["default_model"] == "basic_pitch"
    base = next(m for m in listing["models"] if m["family"] == "whisper_base")
    assert base["labels"]["multilingual"] == "true" and base["runner"] == "gpu"
    body = {"inputs": [{"name": "text", "datatype": "BYTES", "shape": [1], "data": ["hello"]}]}
    refused = service_client.post("/v2/models/whisper_base/infer", json=body)
    assert refused.status_code == 400 and "/transcribe" in refused.json()["error"]
