"""Music transcription: basic-pitch imported into the test store, tones of known pitch through the
batched predictor, batch independence, silence, and the MIDI file."""

from __future__ import annotations

import io
import shutil
import subprocess
from pathlib import Path

import numpy as np
import pytest

from bundle.audio import decode, to_pcm16
from tasks.music import basic_pitch
from tasks.music.basic_pitch import SAMPLE_RATE, BasicPitchPredictor
from tasks.music.midi import notes_to_midi, pitch_name


def tone(tmp_path: Path, freqs: tuple[float, ...], seconds: float) -> np.ndarray:
    """A tone made by sox at 44.1 kHz (numpy when sox is absent), decoded and resampled as an upload is."""
    path = tmp_path / f"tone-{'-'.join(f'{f:g}' for f in freqs)}-{seconds:g}.wav"
    if shutil.which("sox"):
        sines = [arg for f in freqs for arg in ("sine", f"{f:g}")]
        mix = ["remix", "-"] if len(freqs) > 1 else []
        subprocess.run(
            ["sox", "-n", "-r", "44100", "-b", "16", str(path), "synth", f"{seconds:g}", *sines, *mix, "vol", "0.5"],
            check=True,
            capture_output=True,
        )
    else:
        import soundfile

        t = np.arange(int(seconds * 44100)) / 44100
        soundfile.write(path, sum(np.sin(2 * np.pi * f * t) for f in freqs) * 0.5 / len(freqs), 44100)
    return decode(path.read_bytes(), SAMPLE_RATE, 60).samples


def request(samples: np.ndarray, **thresholds: float) -> dict:
    return {
        "pcm16": to_pcm16(samples),
        "onset_threshold": thresholds.get("onset_threshold", basic_pitch.DEFAULT_ONSET_THRESHOLD),
        "frame_threshold": thresholds.get("frame_threshold", basic_pitch.DEFAULT_FRAME_THRESHOLD),
        "min_note_ms": thresholds.get("min_note_ms", basic_pitch.DEFAULT_MIN_NOTE_MS),
    }


@pytest.fixture(scope="session")
def music_model() -> str:
    """basic-pitch imported once into the test store (without the quality check); its tag."""
    from train.import_basic_pitch import import_basic_pitch

    return import_basic_pitch(quality=False)


@pytest.fixture(scope="session")
def predictor(music_model: str) -> BasicPitchPredictor:
    import bentoml

    return BasicPitchPredictor(bentoml.models.get(music_model).path, "cpu")


def test_stored_model_carries_its_provenance(music_model: str) -> None:
    import bentoml

    model = bentoml.models.get(music_model)
    assert model.tag.name == "music_basic_pitch"
    assert model.info.labels == {"task": "music", "pipeline": "basic_pitch"}
    meta = model.info.metadata
    assert meta["license"].startswith("Apache-2.0")
    assert meta["provenance"]["requirement"] == "basic-pitch==0.4.0"
    assert set(meta["files_sha256"]) == {"nmp.onnx", "LICENSE", "NOTICE"}
    assert meta["model"]["input"]["shape"] == ["batch", basic_pitch.WINDOW_SAMPLES, 1]
    assert meta["model"]["outputs"]["note"]["shape"] == ["batch", basic_pitch.WINDOW_FRAMES, 88]
    assert meta["note_creation"]["min_note_frames"] == 11
    for name in ("nmp.onnx", "LICENSE", "NOTICE"):
        assert (Path(model.path) / name).is_file()


def test_a4_tone_is_one_a4_note_spanning_the_tone(predictor: BasicPitchPredictor, tmp_path: Path) -> None:
    (notes,) = predictor.predict([request(tone(tmp_path, (440.0,), 2.0))])
    assert notes, "no note found in a 440 Hz tone"
    strongest = max(notes, key=lambda n: n["confidence"] * (n["offset_s"] - n["onset_s"]))
    assert (strongest["pitch_midi"], strongest["pitch_name"]) == (69, "A4")
    assert strongest["onset_s"] < 0.1
    assert abs(strongest["offset_s"] - 2.0) < 0.15
    assert 0.0 < strongest["confidence"] <= 1.0
    assert [n["onset_s"] for n in notes] == sorted(n["onset_s"] for n in notes)


def test_chord_finds_its_three_notes(predictor: BasicPitchPredictor, tmp_path: Path) -> None:
    (notes,) = predictor.predict([request(tone(tmp_path, (261.63, 329.63, 392.0), 2.0))])
    assert {"C4", "E4", "G4"} <= {n["pitch_name"] for n in notes}


def test_a_batch_gives_the_notes_of_one_clip_at_a_time(
    predictor: BasicPitchPredictor, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    clips = [
        tone(tmp_path, (440.0,), 2.0),
        tone(tmp_path, (110.0, 659.26), 5.3),  # several windows
        np.zeros(SAMPLE_RATE // 2, dtype=np.float32),
        tone(tmp_path, (261.63,), 0.7),
    ]
    inputs = [request(c) for c in clips]
    inputs[3] = request(clips[3], min_note_ms=60.0)  # each clip keeps its own thresholds
    alone = [predictor.predict([item])[0] for item in inputs]
    assert predictor.predict(inputs) == alone
    assert alone[0] and alone[1] and alone[3]
    monkeypatch.setattr(basic_pitch, "CHUNK_WINDOWS", 3)  # windows split across several model runs
    assert predictor.predict(inputs) == alone
    assert predictor.predict([]) == []


def test_silence_and_empty_clips_have_no_notes(predictor: BasicPitchPredictor) -> None:
    silence = np.zeros(3 * SAMPLE_RATE, dtype=np.float32)
    assert predictor.predict([request(silence), request(np.zeros(0, dtype=np.float32))]) == [[], []]


def test_pitch_names() -> None:
    assert [pitch_name(m) for m in (21, 49, 60, 69, 70, 108)] == ["A0", "C#3", "C4", "A4", "A#4", "C8"]


def test_midi_round_trips_through_mido(predictor: BasicPitchPredictor, tmp_path: Path) -> None:
    import mido

    (notes,) = predictor.predict([request(tone(tmp_path, (261.63, 329.63, 392.0), 2.0))])
    notes = [*notes, {"onset_s": 2.5, "offset_s": 3.0, "pitch_midi": 69, "pitch_name": "A4", "confidence": 0.5}]
    midi = mido.MidiFile(file=io.BytesIO(notes_to_midi(notes, tempo_bpm=100)))
    now, started, read = 0.0, {}, []
    for message in midi:  # iterating a file gives times in seconds, tempo applied
        now += message.time
        if message.type == "note_on" and message.velocity > 0:
            started[message.note] = (now, message.velocity)
        elif message.type in ("note_off", "note_on"):
            onset, velocity = started.pop(message.note)
            read.append((message.note, onset, now, velocity))
    expected = sorted((n["pitch_midi"], n["onset_s"], n["offset_s"]) for n in notes)
    assert [r[0] for r in sorted(read)] == [e[0] for e in expected]
    for (_, onset, offset, _), (_, want_on, want_off) in zip(sorted(read), expected, strict=True):
        assert abs(onset - want_on) < 0.01 and abs(offset - want_off) < 0.01
    assert (69, 2.5, 3.0, 64) in [(p, round(a, 3), round(b, 3), v) for p, a, b, v in read]
