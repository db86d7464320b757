"""basic-pitch (Spotify, ICASSP 2022): a recording in, its notes out — run on ONNX Runtime, batched.

Ported from basic-pitch 0.4.0, Apache-2.0, Spotify (``basic_pitch/inference.py`` and
``basic_pitch/note_creation.py``): the same windowing, the same unwrapping of the overlapping windows and
the same note creation (onset peak picking, inferred onsets, frame threshold with an energy tolerance,
minimum note length, the "melodia trick"), in NumPy/SciPy only. The package itself is not installed: its
dependencies (TensorFlow, librosa, pretty_midi, mir_eval, resampy) are far heavier than the 230 kB model.
Pitch bends are not computed (they only shape basic-pitch's MIDI output, never which notes it finds), and
frequency limits are not offered.

What is different from the package: every window of every clip in a batch goes through the model in one
run (in chunks when there are very many), then each clip's outputs are unwrapped and turned into notes on
their own, so a clip's notes do not depend on what else shared its batch.
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from typing import Any

import numpy as np
from scipy.signal import argrelmax

from bundle.audio import from_pcm16
from tasks.music.midi import pitch_name

SAMPLE_RATE = 22050  # the model's input rate; clips arrive resampled to it
FFT_HOP = 256  # samples per model frame (about 86 frames a second)
ANNOTATIONS_FPS = SAMPLE_RATE // FFT_HOP  # 86: basic-pitch's integer frame rate, used when trimming
WINDOW_FRAMES = 2 * ANNOTATIONS_FPS  # 172 frames out per window
WINDOW_SAMPLES = 2 * SAMPLE_RATE - FFT_HOP  # 43,844 samples in per window (AUDIO_N_SAMPLES)
OVERLAP_FRAMES = 30  # consecutive windows share 30 frames; half of them is dropped on each side
OVERLAP_SAMPLES = OVERLAP_FRAMES * FFT_HOP
HOP_SAMPLES = WINDOW_SAMPLES - OVERLAP_SAMPLES  # 36,164
MIDI_OFFSET = 21  # the model's 88 pitch bins are the piano's keys, A0 (MIDI 21) to C8
MAX_FREQ_IDX = 87
ENERGY_TOLERANCE = 11  # frames below the frame threshold before a note is ended

# basic-pitch's defaults (``basic_pitch.inference.predict``)
DEFAULT_ONSET_THRESHOLD = 0.5
DEFAULT_FRAME_THRESHOLD = 0.3
DEFAULT_MIN_NOTE_MS = 127.70  # 11 frames

MODEL_FILE = "nmp.onnx"
INPUT_NAME = "serving_default_input_2:0"
# The ONNX export names its outputs after TensorFlow's graph; basic-pitch maps them like this.
OUTPUT_NAMES = {"note": "StatefulPartitionedCall:1", "onset": "StatefulPartitionedCall:2"}
CONTOUR_OUTPUT = "StatefulPartitionedCall:0"  # pitch contours (3 bins a semitone), used only for pitch bends
# Windows per model run: 32 windows are about 58 s of audio and ~6 MB of input; on the CPU 4 to 128 ran alike.
CHUNK_WINDOWS = 32


def windows(audio: np.ndarray) -> np.ndarray:
    """``audio`` (mono, 22,050 Hz) as overlapping model windows, shape (n, WINDOW_SAMPLES, 1).

    As basic-pitch: half an overlap of silence in front (so the first frames are not lost with the
    dropped overlap), then windows every HOP_SAMPLES, the last ones padded with zeros.
    """
    padded = np.concatenate([np.zeros(OVERLAP_SAMPLES // 2, dtype=np.float32), audio.astype(np.float32)])
    starts = range(0, len(padded), HOP_SAMPLES)
    out = np.zeros((len(starts), WINDOW_SAMPLES, 1), dtype=np.float32)
    for row, start in enumerate(starts):
        piece = padded[start : start + WINDOW_SAMPLES]
        out[row, : len(piece), 0] = piece
    return out


def unwrap(output: np.ndarray, original_length: int) -> np.ndarray:
    """One clip's window outputs (n, WINDOW_FRAMES, bins) as one (frames, bins) matrix: half the overlap
    cut from both ends of every window, the rest concatenated and trimmed to the clip's length."""
    n_olap = OVERLAP_FRAMES // 2
    output = output[:, n_olap:-n_olap, :]
    n_frames = int(np.floor(original_length * (ANNOTATIONS_FPS / SAMPLE_RATE)))
    return output.reshape(-1, output.shape[2])[:n_frames]


def frame_times(n_frames: int) -> np.ndarray:
    """Seconds of each output frame, with basic-pitch's per-window alignment correction (its constant
    0.0018 s included: "a magic number, but it's needed for this to align properly")."""
    window_offset = (FFT_HOP / SAMPLE_RATE) * (WINDOW_FRAMES - WINDOW_SAMPLES / FFT_HOP) + 0.0018
    frames = np.arange(n_frames)
    return frames * FFT_HOP / SAMPLE_RATE - window_offset * np.floor(frames / WINDOW_FRAMES)


def min_note_frames(min_note_ms: float) -> int:
    return int(np.round(min_note_ms / 1000 * (SAMPLE_RATE / FFT_HOP)))


def inferred_onsets(onsets: np.ndarray, frames: np.ndarray, n_diff: int = 2) -> np.ndarray:
    """The predicted onsets, or a jump in frame activation where that is larger (basic-pitch's
    ``get_infered_onsets``): the smallest rise over 1..n_diff frames, scaled to the onsets' maximum."""
    diffs = []
    for n in range(1, n_diff + 1):
        appended = np.concatenate([np.zeros((n, frames.shape[1])), frames])
        diffs.append(appended[n:, :] - appended[:-n, :])
    frame_diff = np.min(diffs, axis=0)
    frame_diff[frame_diff < 0] = 0
    frame_diff[:n_diff, :] = 0
    peak = np.max(frame_diff) if frame_diff.size else 0.0
    # basic-pitch divides by the peak unconditionally; where it is 0 its result is NaN and no onset is found
    # from it, which leaving the differences at 0 matches without the warning
    if peak > 0:
        frame_diff = np.max(onsets) * frame_diff / peak
    return np.max([onsets, frame_diff], axis=0)


def _note_end(energy: np.ndarray, start: int, frame_threshold: float) -> int:
    """The frame after a note that starts at ``start`` in one pitch's ``energy``: where ENERGY_TOLERANCE
    frames in a row fell below the threshold, or the last frame."""
    i, k = start + 1, 0
    while i < len(energy) - 1 and k < ENERGY_TOLERANCE:
        k = k + 1 if energy[i] < frame_threshold else 0
        i += 1
    return i - k


def output_to_notes(
    frames: np.ndarray,
    onsets: np.ndarray,
    onset_threshold: float = DEFAULT_ONSET_THRESHOLD,
    frame_threshold: float = DEFAULT_FRAME_THRESHOLD,
    min_note_len: int = 11,
    melodia_trick: bool = True,
) -> list[tuple[int, int, int, float]]:
    """basic-pitch's ``output_to_notes_polyphonic`` (with ``infer_onsets=True``): note events as
    (start frame, end frame, MIDI pitch, amplitude), amplitude the mean frame activation over the note.

    First every onset peak above ``onset_threshold`` starts a note, latest first, that lasts while the
    frame activation stays above ``frame_threshold`` (with ENERGY_TOLERANCE frames of tolerance); its energy
    and its neighbours' is then used up. Then (the melodia trick) the strongest energy left, while above
    ``frame_threshold``, grows into a note both ways without needing an onset. Notes of ``min_note_len``
    frames or fewer are dropped.
    """
    n_frames = frames.shape[0]
    frames = frames.astype(np.float64)
    onsets = inferred_onsets(onsets.astype(np.float64), frames)

    peaks = np.zeros(onsets.shape)
    at = argrelmax(onsets, axis=0)
    peaks[at] = onsets[at]
    onset_time, onset_freq = np.where(peaks >= onset_threshold)

    # pitch-major, so a note's frames are contiguous: remaining[freq] is one pitch's activation over time
    remaining = np.ascontiguousarray(frames.T)
    notes: list[tuple[int, int, int, float]] = []
    for start, freq in zip(onset_time[::-1], onset_freq[::-1], strict=True):  # backwards in time
        if start >= n_frames - 1:
            continue
        end = _note_end(remaining[freq], start, frame_threshold)
        if end - start <= min_note_len:
            continue
        remaining[max(freq - 1, 0) : min(freq + 1, MAX_FREQ_IDX) + 1, start:end] = 0
        notes.append((int(start), int(end), int(freq) + MIDI_OFFSET, float(np.mean(frames[start:end, freq]))))

    if not melodia_trick:
        return notes
    while remaining.size and np.max(remaining) > frame_threshold:
        at_max = np.unravel_index(np.argmax(remaining), remaining.shape)
        freq, i_mid = int(at_max[0]), int(at_max[1])
        remaining[freq, i_mid] = 0
        neighbours = slice(max(freq - 1, 0), min(freq + 1, MAX_FREQ_IDX) + 1)
        # basic-pitch zeroes each frame (and the neighbouring pitches) as it walks past it, after testing it
        i, k = i_mid + 1, 0
        while i < n_frames - 1 and k < ENERGY_TOLERANCE:
            k = k + 1 if remaining[freq, i] < frame_threshold else 0
            remaining[neighbours, i] = 0
            i += 1
        end = i - 1 - k
        i, k = i_mid - 1, 0
        while i > 0 and k < ENERGY_TOLERANCE:
            k = k + 1 if remaining[freq, i] < frame_threshold else 0
            remaining[neighbours, i] = 0
            i -= 1
        start = i + 1 + k
        if end - start <= min_note_len:
            continue
        notes.append((int(start), int(end), int(freq) + MIDI_OFFSET, float(np.mean(frames[start:end, freq]))))
    return notes


def notes_from_output(
    note: np.ndarray,
    onset: np.ndarray,
    onset_threshold: float = DEFAULT_ONSET_THRESHOLD,
    frame_threshold: float = DEFAULT_FRAME_THRESHOLD,
    min_note_ms: float = DEFAULT_MIN_NOTE_MS,
) -> list[dict[str, Any]]:
    """One clip's unwrapped model outputs as notes in seconds, sorted by onset (then pitch)."""
    events = output_to_notes(note, onset, onset_threshold, frame_threshold, min_note_frames(min_note_ms))
    times = frame_times(note.shape[0])
    return [
        {
            "onset_s": round(float(times[start]), 4),
            "offset_s": round(float(times[end]), 4),
            "pitch_midi": pitch,
            "pitch_name": pitch_name(pitch),
            "confidence": round(min(max(amplitude, 0.0), 1.0), 4),
        }
        for start, end, pitch, amplitude in sorted(events, key=lambda e: (e[0], e[2], e[1]))
    ]


class BasicPitchPredictor:
    """The stored basic-pitch model on ONNX Runtime; ``predict`` transcribes a batch of clips at once."""

    def __init__(self, path: str, device: str, threads: int | None = None) -> None:
        import onnxruntime as ort

        model = os.path.join(path, MODEL_FILE) if os.path.isdir(path) else path
        options = ort.SessionOptions()
        # One thread: on this project's two shared CPU cores a second thread was slower, not faster
        # (interleaved runs, 4 clips of 10 s: 27.5 vs 24.8 s of audio a second; 39 vs 32 at best).
        options.intra_op_num_threads = threads or 1
        options.inter_op_num_threads = 1
        providers = ["CPUExecutionProvider"]
        if device == "cuda" and "CUDAExecutionProvider" in ort.get_available_providers():
            providers.insert(0, "CUDAExecutionProvider")
        self.session = ort.InferenceSession(model, sess_options=options, providers=providers)
        self.device = "cuda" if self.session.get_providers()[0] == "CUDAExecutionProvider" else "cpu"

    def model_outputs(self, clips: Sequence[np.ndarray]) -> list[dict[str, np.ndarray]]:
        """Each clip's unwrapped note and onset activations, (frames, 88) each; all clips' windows are
        run through the model together."""
        per_clip = [windows(c) for c in clips]
        counts = [len(w) for w in per_clip]
        stacked = np.concatenate(per_clip) if per_clip else np.zeros((0, WINDOW_SAMPLES, 1), np.float32)
        names = list(OUTPUT_NAMES.values())
        runs = [
            self.session.run(names, {INPUT_NAME: stacked[i : i + CHUNK_WINDOWS]})
            for i in range(0, len(stacked), CHUNK_WINDOWS)
        ]
        joined = {key: np.concatenate([r[j] for r in runs]) for j, key in enumerate(OUTPUT_NAMES)} if runs else {}
        bounds = np.cumsum([0, *counts])
        return [
            {key: unwrap(joined[key][bounds[n] : bounds[n + 1]], len(clip)) for key in OUTPUT_NAMES}
            for n, clip in enumerate(clips)
        ]

    def predict(self, inputs: Sequence[dict[str, Any]]) -> list[list[dict[str, Any]]]:
        clips = [from_pcm16(item["pcm16"]) for item in inputs]
        return [
            notes_from_output(
                out["note"],
                out["onset"],
                float(item.get("onset_threshold", DEFAULT_ONSET_THRESHOLD)),
                float(item.get("frame_threshold", DEFAULT_FRAME_THRESHOLD)),
                float(item.get("min_note_ms", DEFAULT_MIN_NOTE_MS)),
            )
            for item, out in zip(inputs, self.model_outputs(clips), strict=True)
        ]
