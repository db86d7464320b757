"""Audio in, for every task that takes sound: decode an uploaded file, mix it to mono, resample it, and
carry it to a runner.

Decoding is libsndfile's (``soundfile``: WAV, FLAC, OGG/Vorbis/Opus, MP3 and more), in the entry service,
before anything reaches a model: a file that is not audio, is truncated, is empty, or is longer than the
task allows is refused here with a message that says which, and no runner ever sees it.

Between the entry service and a runner a clip travels as 16-bit PCM in base64 (``pcm16``): half the
bytes of float32, and far below what a model can hear (quantisation noise near -96 dB).
"""

from __future__ import annotations

import base64
import hashlib
import io
import math
from collections.abc import Sequence
from dataclasses import dataclass
from fractions import Fraction
from typing import Any, ClassVar

import numpy as np

from bundle.settings import Monitoring
from bundle.task import Task

# The formats a user can upload, by extension and by content type (also what the page's picker accepts).
AUDIO_EXTENSIONS = (".wav", ".flac", ".ogg", ".oga", ".opus", ".mp3")
AUDIO_CONTENT_TYPES = (
    "audio/wav",
    "audio/x-wav",
    "audio/wave",
    "audio/vnd.wave",
    "audio/flac",
    "audio/x-flac",
    "audio/ogg",
    "audio/opus",
    "audio/webm",
    "audio/mpeg",
    "audio/mp3",
    "application/ogg",
    "application/octet-stream",  # what browsers and curl send when they do not know
)


class AudioError(ValueError):
    """An upload that cannot be used as audio; the message says why, for the person who sent it."""


@dataclass(frozen=True)
class Clip:
    samples: np.ndarray  # float32, mono, in [-1, 1]
    sample_rate: int
    source_rate: int  # the file's own rate, before resampling
    channels: int  # the file's own channel count, before mixing

    @property
    def seconds(self) -> float:
        return len(self.samples) / self.sample_rate


def decode(data: bytes, sample_rate: int, max_seconds: float, name: str = "the upload") -> Clip:
    """``data`` (an audio file's bytes) as a mono clip at ``sample_rate``, or an :class:`AudioError`.

    The duration is read from the header first, so a file over ``max_seconds`` is refused before its
    samples are decoded.
    """
    import soundfile

    if not data:
        raise AudioError(f"{name} is empty (0 bytes); send a WAV, FLAC, OGG or MP3 file")
    try:
        with soundfile.SoundFile(io.BytesIO(data)) as f:
            rate, channels, frames = f.samplerate, f.channels, f.frames
            # MP3 headers may not state a length: then frames is unknown and the decode below is bounded
            if frames > 0 and frames / rate > max_seconds + 0.01:
                raise AudioError(
                    f"{name} lasts {frames / rate:.1f} s; the maximum is {max_seconds:g} s — cut it into shorter clips"
                )
            limit = math.ceil((max_seconds + 0.01) * rate)
            samples = f.read(frames=limit + 1, dtype="float32", always_2d=True)
    except AudioError:
        raise
    except (soundfile.LibsndfileError, RuntimeError, TypeError, ValueError) as exc:
        raise AudioError(
            f"{name} could not be decoded as audio ({_plain(exc)}); send a WAV, FLAC, OGG or MP3 file"
        ) from None
    if len(samples) > limit:
        raise AudioError(f"{name} lasts more than {max_seconds:g} s, the maximum; cut it into shorter clips")
    if len(samples) == 0:
        raise AudioError(f"{name} holds no audio samples (a header without sound, or a truncated file)")
    mono = samples.mean(axis=1) if samples.shape[1] > 1 else samples[:, 0]
    if not np.all(np.isfinite(mono)):
        raise AudioError(f"{name} holds samples that are not numbers (NaN or infinite)")
    return Clip(resample(mono, rate, sample_rate), sample_rate, rate, channels)


def _plain(exc: Exception) -> str:
    text = str(exc).strip().rstrip(".")
    # libsndfile's messages start with the stream's repr; the reason is after the last colon
    return text.rsplit(": ", 1)[-1] if ": " in text else text


def resample(samples: np.ndarray, source_rate: int, target_rate: int) -> np.ndarray:
    """Band-limited polyphase resampling (exact rational ratio, so 44.1 kHz → 16 kHz is 160/441)."""
    if source_rate == target_rate:
        return samples.astype(np.float32, copy=False)
    from scipy.signal import resample_poly

    ratio = Fraction(target_rate, source_rate).limit_denominator(1000)
    out = resample_poly(samples.astype(np.float64), ratio.numerator, ratio.denominator)
    return np.clip(out, -1.0, 1.0).astype(np.float32)


def to_pcm16(samples: np.ndarray) -> str:
    """A clip as base64 16-bit little-endian PCM, the form runners receive."""
    ints = np.round(np.clip(samples, -1.0, 1.0) * 32767.0).astype("<i2")
    return base64.b64encode(ints.tobytes()).decode("ascii")


def from_pcm16(data: str) -> np.ndarray:
    """The float32 samples of :func:`to_pcm16`'s output."""
    return np.frombuffer(base64.b64decode(data), dtype="<i2").astype(np.float32) / 32767.0


def pcm16_seconds(data: str, sample_rate: int) -> float:
    """The duration of a ``pcm16`` clip without decoding it (for length-sorted batches)."""
    size = len(data) * 3 // 4 - data[-2:].count("=")
    return size / 2 / sample_rate


def is_silent(samples: np.ndarray, threshold_dbfs: float = -60.0) -> bool:
    """Whether a clip's loudness (RMS) is below ``threshold_dbfs``: nothing a model could hear."""
    if len(samples) == 0:
        return True
    rms = float(np.sqrt(np.mean(np.square(samples, dtype=np.float64))))
    return rms <= 10 ** (threshold_dbfs / 20)


def describe(clip: Clip) -> dict[str, Any]:
    return {"seconds": round(clip.seconds, 3), "source_rate": clip.source_rate, "channels": clip.channels}


class AudioTask(Task):
    """A task whose inputs are clips (``{"pcm16": ..., <options>}``) at ``sample_rate``: how they are
    priced for length-sorted passes and what a prediction record keeps of them (never the sound)."""

    sample_rate: ClassVar[int]
    text_inputs = False

    def input_cost(self, item: Any) -> int:
        return int(pcm16_seconds(item["pcm16"], self.sample_rate) * 100)

    def describe_inputs(self, inputs: Sequence[Any], monitoring: Monitoring) -> dict[str, Any]:
        fields: dict[str, Any] = {
            "audio_seconds": [round(pcm16_seconds(x["pcm16"], self.sample_rate), 3) for x in inputs]
        }
        if monitoring.record_inputs != "none":  # a digest at most, even with raw: a voice is personal data
            salt = monitoring.digest_salt.encode()
            fields["audio_sha256"] = [hashlib.sha256(salt + x["pcm16"].encode()).hexdigest() for x in inputs]
        return fields
