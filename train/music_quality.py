"""Does the music transcription find the notes that are there? A check on sound whose pitch is known.

    python -m train.music_quality [--model PATH]

Two kinds of clips, each decoded and resampled to 22,050 Hz by ``bundle.audio.decode`` exactly as an
upload is, then transcribed by tasks/music/basic_pitch.py with basic-pitch's default thresholds:

- tones that sox synthesises (numpy when sox is absent): sines at known frequencies and a C major triad;
  the expected notes follow from the frequencies;
- real recordings from Debian's ``sonic-pi-samples`` (freesound.org, CC0) whose file name states the
  pitch class (``bass_thick_c``: a C; ``guit_em9``: an E minor 9 chord, root E). A name has no octave,
  so the expected octave comes from an independent estimate, the median YIN fundamental frequency
  (de Cheveigné & Kawahara 2002, implemented below); a recording is only used when that estimate lies
  within half a semitone of the named pitch class. Samples whose name and YIN disagree (``bass_drop_c``
  sweeps down, ``guit_e_fifths`` is two strings at once, ``guit_e_slide`` slides) are left out for that
  reason.

A clip passes when every expected note is among the notes found. Without ``--model`` the stored model's
files come from the importer's cache (the wheel is downloaded once). Prints a Markdown table and writes
``results/evaluation/music.json`` and ``music.md``.
"""

from __future__ import annotations

import argparse
import json
import logging
import shutil
import subprocess
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from tasks.music.basic_pitch import SAMPLE_RATE, BasicPitchPredictor
from tasks.music.midi import NOTE_NAMES, pitch_name

logger = logging.getLogger("train.music_quality")

ROOT = Path(__file__).resolve().parent.parent
OUTPUT = ROOT / "results" / "evaluation"
SAMPLES = Path("/usr/share/sonic-pi/samples")
MAX_SECONDS = 30.0
SYNTH_RATE = 44100  # tones are made at a common file rate, so the check also goes through resampling

# (name, frequencies in Hz, seconds): the expected notes are the frequencies' nearest MIDI notes
TONES: tuple[tuple[str, tuple[float, ...], float], ...] = (
    ("sine 440 Hz", (440.0,), 2.0),
    ("sine 261.63 Hz", (261.63,), 2.0),
    ("sine 110 Hz", (110.0,), 2.0),
    ("sine 659.26 Hz", (659.26,), 1.5),
    ("sine 1046.5 Hz", (1046.5,), 1.5),
    ("C major triad 261.63+329.63+392 Hz", (261.63, 329.63, 392.0), 3.0),
)
# sonic-pi-samples whose file name states the pitch class
RECORDINGS: dict[str, str] = {
    "bass_thick_c": "C",
    "bass_trance_c": "C",
    "bass_voxy_c": "C",
    "bass_voxy_hit_c": "C",
    "bass_woodsy_c": "C",
    "bass_hard_c": "C",
    "bass_dnb_f": "F",
    "glitch_bass_g": "G",
    "loop_drone_g_97": "G",
    "guit_em9": "E",
    # named, but YIN disagrees (a downward sweep, two strings at once, a slide): reported as left out
    "bass_drop_c": "C",
    "guit_e_fifths": "E",
    "guit_e_slide": "E",
}


@dataclass(frozen=True)
class Case:
    name: str
    source: str  # "sox" / "numpy" / "sonic-pi-samples"
    samples: np.ndarray  # float32 at SAMPLE_RATE
    expected: tuple[str, ...]
    evidence: str  # how the expected notes were established


def hz_to_midi(hz: float) -> float:
    return 69 + 12 * float(np.log2(hz / 440.0))


def tone_file(freqs: tuple[float, ...], seconds: float, path: Path) -> str:
    """Write the tone (sines mixed, half scale) to ``path`` as 16-bit WAV; returns what made it."""
    if shutil.which("sox"):
        sines = [arg for f in freqs for arg in ("sine", f"{f:g}")]
        mix = ["remix", "-"] if len(freqs) > 1 else []
        cmd = ["sox", "-n", "-r", str(SYNTH_RATE), "-b", "16", str(path), "synth", f"{seconds:g}", *sines, *mix]
        subprocess.run([*cmd, "vol", "0.5"], check=True, capture_output=True)
        return "sox"
    import soundfile

    t = np.arange(int(seconds * SYNTH_RATE)) / SYNTH_RATE
    tone = sum(np.sin(2 * np.pi * f * t) for f in freqs) * (0.5 / len(freqs))
    soundfile.write(path, tone, SYNTH_RATE, subtype="PCM_16")
    return "numpy"


def yin_f0(
    x: np.ndarray, sr: int, fmin: float = 30.0, fmax: float = 1000.0, frame: int = 4096, hop: int = 1024
) -> np.ndarray:
    """Fundamental frequency of each voiced frame by YIN (cumulative mean normalised difference,
    absolute threshold 0.15, parabolic interpolation); frames quieter than -60 dBFS or unvoiced are left out."""
    from scipy.signal import fftconvolve

    tmin, tmax = int(sr / fmax), int(sr / fmin)
    x = x.astype(np.float64)
    f0 = []
    for s in range(0, len(x) - frame - tmax, hop):
        w = x[s : s + frame + tmax]
        if np.sqrt(np.mean(w[:frame] ** 2)) < 1e-3:
            continue
        # d(t) = sum_j (w[j] - w[j+t])^2 over the frame, from energies and a cross-correlation
        corr = fftconvolve(w, w[:frame][::-1], mode="full")[frame - 1 : frame + tmax]
        energy = np.cumsum(np.concatenate([[0.0], w**2]))
        shifted = energy[frame : frame + tmax + 1] - energy[: tmax + 1]
        d = np.maximum(energy[frame] + shifted - 2 * corr, 0.0)
        cmnd = np.ones_like(d)
        cmnd[1:] = d[1:] * np.arange(1, tmax + 1) / np.maximum(np.cumsum(d[1:]), 1e-12)
        below = np.flatnonzero(cmnd[tmin:tmax] < 0.15)
        if not len(below):
            continue
        t = int(below[0]) + tmin
        while t + 1 < tmax and cmnd[t + 1] < cmnd[t]:
            t += 1
        a, b, c = cmnd[t - 1], cmnd[t], cmnd[t + 1]
        shift = 0.5 * (a - c) / (a - 2 * b + c) if a - 2 * b + c != 0 else 0.0
        f0.append(sr / (t + shift))
    return np.array(f0)


def tone_cases(folder: Path) -> list[Case]:
    from bundle.audio import decode

    cases: list[Case] = []
    for name, freqs, seconds in TONES:
        path = folder / f"tone{len(cases)}.wav"
        source = tone_file(freqs, seconds, path)
        clip = decode(path.read_bytes(), SAMPLE_RATE, MAX_SECONDS, name=name)
        expected = tuple(pitch_name(round(hz_to_midi(f))) for f in freqs)
        cases.append(Case(name, source, clip.samples, expected, "frequency"))
    return cases


def recording_cases(samples: Path = SAMPLES) -> tuple[list[Case], list[dict[str, Any]]]:
    """The named-pitch recordings whose YIN estimate agrees with their name, and those left out."""
    from bundle.audio import decode

    cases, skipped = [], []
    for stem, pitch_class in RECORDINGS.items():
        path = samples / f"{stem}.flac"
        if not path.is_file():
            skipped.append({"file": path.name, "reason": "not installed (Debian package sonic-pi-samples)"})
            continue
        clip = decode(path.read_bytes(), SAMPLE_RATE, MAX_SECONDS, name=path.name)
        f0 = yin_f0(clip.samples, SAMPLE_RATE)
        if len(f0) == 0:
            skipped.append({"file": path.name, "reason": "YIN found no voiced frame"})
            continue
        median = float(np.median(f0))
        midi = hz_to_midi(median)
        # the named pitch class in the octave nearest YIN's estimate
        nearest = round(midi)
        candidates = [m for m in range(nearest - 6, nearest + 7) if NOTE_NAMES[m % 12] == pitch_class]
        target = min(candidates, key=lambda m: abs(m - midi))
        evidence = f"name: {pitch_class}; YIN median {median:.1f} Hz (MIDI {midi:.2f}) over {len(f0)} frames"
        if abs(target - midi) > 0.5:
            skipped.append({"file": path.name, "reason": f"{evidence}: disagrees with the name"})
            continue
        cases.append(Case(path.name, "sonic-pi-samples", clip.samples, (pitch_name(target),), evidence))
    return cases, skipped


def evaluate(model_path: str, device: str = "cpu", samples: Path = SAMPLES) -> dict[str, Any]:
    """Transcribe every case (all in one batch) and compare; returns the summary and one row per case."""
    from bundle.audio import to_pcm16

    with tempfile.TemporaryDirectory() as tmp:
        tones = tone_cases(Path(tmp))
    recordings, skipped = recording_cases(samples)
    cases = tones + recordings
    predictor = BasicPitchPredictor(model_path, device)
    started = time.perf_counter()
    # basic-pitch's defaults, as a request that names no thresholds gets
    found = predictor.predict(
        [
            {"pcm16": to_pcm16(c.samples), "onset_threshold": 0.5, "frame_threshold": 0.3, "min_note_ms": 127.7}
            for c in cases
        ]
    )
    seconds = time.perf_counter() - started
    rows: list[dict[str, Any]] = []
    for case, notes in zip(cases, found, strict=True):
        held: dict[str, float] = {}  # seconds each detected pitch sounds, for ordering the report
        for n in notes:
            held[n["pitch_name"]] = held.get(n["pitch_name"], 0.0) + n["offset_s"] - n["onset_s"]
        detected = sorted(held, key=lambda k: -held[k])
        rows.append(
            {
                "clip": case.name,
                "source": case.source,
                "seconds": round(len(case.samples) / SAMPLE_RATE, 2),
                "expected": list(case.expected),
                "evidence": case.evidence,
                "detected": [{"note": k, "seconds": round(held[k], 2)} for k in detected],
                "passed": all(e in held for e in case.expected),
                # stricter, for information: the note held longest is an expected one
                "longest_expected": bool(detected) and detected[0] in case.expected,
            }
        )
    audio = sum(len(c.samples) for c in cases) / SAMPLE_RATE

    def summary(kind: str) -> dict[str, int]:
        chosen = [r for r in rows if (r["source"] == "sonic-pi-samples") == (kind == "recordings")]
        return {
            "clips": len(chosen),
            "passed": sum(r["passed"] for r in chosen),
            "longest_expected": sum(r["longest_expected"] for r in chosen),
        }

    return {
        "synthesised": summary("tones"),
        "recordings": summary("recordings"),
        "criterion": "every expected note is among the detected notes (basic-pitch defaults: onset 0.5, "
        "frame 0.3, minimum note 127.7 ms)",
        "cases": rows,
        "recordings_left_out": skipped,
        "audio_seconds": round(audio, 1),
        "transcribe_seconds": round(seconds, 2),
    }


def markdown(result: dict[str, Any]) -> str:
    lines = [
        "| clip | source | expected | detected (longest first) | longest is expected | result |",
        "|---|---|---|---|---|---|",
    ]
    for r in result["cases"]:
        detected = ", ".join(f"{d['note']} ({d['seconds']:.2f} s)" for d in r["detected"][:6]) or "none"
        verdict = "pass" if r["passed"] else "**FAIL**"
        longest = "yes" if r["longest_expected"] else "no"
        lines.append(
            f"| {r['clip']} | {r['source']} | {', '.join(r['expected'])} | {detected} | {longest} | {verdict} |"
        )
    s, rec = result["synthesised"], result["recordings"]
    lines += [
        "",
        f"Synthesised: {s['passed']}/{s['clips']} passed; recordings: {rec['passed']}/{rec['clips']} passed "
        f"({result['criterion']}). The note held longest is an expected one for {s['longest_expected']}/{s['clips']} "
        f"tones and {rec['longest_expected']}/{rec['clips']} recordings.",
    ]
    for r in result["cases"]:
        if r["source"] == "sonic-pi-samples":
            lines.append(f"- {r['clip']}: expected {r['expected'][0]} from {r['evidence']}")
    for s in result["recordings_left_out"]:
        lines.append(f"- left out: {s['file']}: {s['reason']}")
    return "\n".join(lines) + "\n"


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--model", help="nmp.onnx or a folder holding it (default: the importer's cache)")
    parser.add_argument("--device", default="cpu", choices=["cpu", "cuda"])
    parser.add_argument("--output", type=Path, default=OUTPUT)
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    if args.model is None:
        from train.import_basic_pitch import unpack

        args.model = str(unpack())
    result = evaluate(args.model, args.device)
    table = markdown(result)
    args.output.mkdir(parents=True, exist_ok=True)
    (args.output / "music.json").write_text(json.dumps(result, indent=2) + "\n")
    (args.output / "music.md").write_text("# Music transcription (basic-pitch): notes of known pitch\n\n" + table)
    logger.info("wrote %s and %s", args.output / "music.json", args.output / "music.md")
    print(table)


if __name__ == "__main__":
    main()
