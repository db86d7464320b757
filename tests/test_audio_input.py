"""The audio path every audio task shares (bundle/audio.py) and the upload guard (bundle/uploads.py), as
plain Python and plain ASGI: real files in real formats, made here with soundfile."""

from __future__ import annotations

import asyncio
import io
import json
from pathlib import Path

import numpy as np
import pytest
import soundfile

from bundle import audio
from bundle.uploads import UploadGuard, upload_field, upload_fields


def tone(freq: float = 440.0, seconds: float = 1.0, rate: int = 44_100, channels: int = 1) -> np.ndarray:
    t = np.arange(int(seconds * rate)) / rate
    mono = 0.5 * np.sin(2 * np.pi * freq * t)
    return np.stack([mono] * channels, axis=1) if channels > 1 else mono


def encoded(samples: np.ndarray, rate: int, fmt: str, subtype: str | None = None) -> bytes:
    buf = io.BytesIO()
    soundfile.write(buf, samples, rate, format=fmt, subtype=subtype)
    return buf.getvalue()


@pytest.mark.parametrize("fmt", ["WAV", "FLAC", "OGG", "MP3"])
def test_every_format_decodes_to_mono_at_the_asked_rate(fmt: str) -> None:
    data = encoded(tone(seconds=1.0, rate=44_100, channels=2), 44_100, fmt)
    clip = audio.decode(data, 16_000, max_seconds=30)
    assert clip.sample_rate == 16_000 and clip.source_rate == 44_100 and clip.channels == 2
    assert clip.samples.ndim == 1 and clip.samples.dtype == np.float32
    assert abs(clip.seconds - 1.0) < 0.1  # MP3 adds encoder padding
    # the tone survives: its spectrum peaks at 440 Hz after resampling
    spectrum = np.abs(np.fft.rfft(clip.samples[:16_000]))
    assert abs(np.argmax(spectrum) * 16_000 / 16_000 - 440) <= 2


@pytest.mark.parametrize(
    "data, needle",
    [
        (b"", "is empty"),
        (b"this is plain text, not a recording" * 10, "could not be decoded"),
        (encoded(tone(), 44_100, "WAV")[:30], "could not be decoded"),  # a header cut short
        (encoded(tone(seconds=3, rate=8_000), 8_000, "WAV"), "lasts 3.0 s; the maximum is 2 s"),
    ],
)
def test_unusable_audio_is_refused_with_the_reason(data: bytes, needle: str) -> None:
    with pytest.raises(audio.AudioError, match=needle):
        audio.decode(data, 16_000, max_seconds=2)


def test_truncated_body_decodes_what_is_there() -> None:
    # a WAV whose data chunk was cut: libsndfile reads the samples that arrived, like any player
    data = encoded(tone(seconds=1.0, rate=16_000), 16_000, "WAV")
    clip = audio.decode(data[: len(data) // 2], 16_000, max_seconds=30)
    assert 0.4 < clip.seconds < 0.6


def test_pcm16_round_trip_and_silence() -> None:
    samples = tone(seconds=0.5, rate=16_000).astype(np.float32)
    back = audio.from_pcm16(audio.to_pcm16(samples))
    assert np.max(np.abs(back - samples)) < 1e-4
    assert audio.pcm16_seconds(audio.to_pcm16(samples), 16_000) == pytest.approx(0.5)
    assert audio.is_silent(np.zeros(16_000, dtype=np.float32)) and not audio.is_silent(samples)


def test_resampling_keeps_duration_for_odd_rates() -> None:
    for rate in (8_000, 11_025, 22_050, 44_100, 48_000, 96_000):
        out = audio.resample(tone(seconds=1.0, rate=rate).astype(np.float32), rate, 16_000)
        assert abs(len(out) - 16_000) <= 1


# ---- the upload guard, as ASGI ------------------------------------------------------------------------


class Echo:
    """The app behind the guard: answers the bytes it received, to prove the body is replayed intact."""

    def __init__(self) -> None:
        self.bodies: list[bytes] = []

    async def __call__(self, scope, receive, send) -> None:  # type: ignore[no-untyped-def]
        body = b""
        while True:
            message = await receive()
            body += message.get("body", b"")
            if not message.get("more_body"):
                break
        self.bodies.append(body)
        await send({"type": "http.response.start", "status": 200, "headers": []})
        await send({"type": "http.response.body", "body": b"ok"})


def call(guard: UploadGuard, body: bytes, content_type: str, chunks: int = 1, length: bool = True) -> tuple[int, dict]:
    headers = [(b"content-type", content_type.encode())]
    if length:
        headers.append((b"content-length", str(len(body)).encode()))
    scope = {"type": "http", "method": "POST", "path": "/transcribe", "headers": headers}
    step = max(1, len(body) // chunks)
    parts = [body[i : i + step] for i in range(0, len(body), step)] or [b""]
    messages = [{"type": "http.request", "body": p, "more_body": i < len(parts) - 1} for i, p in enumerate(parts)]
    sent: list[dict] = []

    async def receive() -> dict:
        return messages.pop(0) if messages else {"type": "http.disconnect"}

    async def send(message: dict) -> None:
        sent.append(message)

    asyncio.run(guard(scope, receive, send))
    status = sent[0]["status"]
    payload = sent[1].get("body", b"")
    return status, json.loads(payload) if status != 200 else {"body": payload}


def multipart(fields: dict[str, tuple[str | None, bytes, str | None]]) -> tuple[bytes, str]:
    boundary = "testboundary1234"
    out = b""
    for name, (filename, data, ctype) in fields.items():
        out += f"--{boundary}\r\n".encode()
        disposition = f'form-data; name="{name}"' + (f'; filename="{filename}"' if filename else "")
        out += f"Content-Disposition: {disposition}\r\n".encode()
        if ctype:
            out += f"Content-Type: {ctype}\r\n".encode()
        out += b"\r\n" + data + b"\r\n"
    out += f"--{boundary}--\r\n".encode()
    return out, f"multipart/form-data; boundary={boundary}"


@pytest.fixture
def guarded() -> tuple[UploadGuard, Echo]:
    app = Echo()
    return UploadGuard(
        app, routes={"/transcribe": {"audio": ["audio/*", "application/octet-stream"]}}, max_bytes=4096
    ), app


def test_a_good_upload_reaches_the_app_byte_for_byte(guarded: tuple[UploadGuard, Echo]) -> None:
    guard, app = guarded
    body, ctype = multipart({"audio": ("a.wav", b"RIFF" + bytes(100), "audio/wav"), "task": (None, b"translate", None)})
    status, _ = call(guard, body, ctype, chunks=5)
    assert status == 200 and app.bodies == [body]


@pytest.mark.parametrize(
    "fields, content_type, status, needle",
    [
        (None, "application/json", 415, "multipart/form-data"),
        ({"audio": (None, b"http://169.254.169.254/latest", None)}, None, 400, "does not fetch URLs"),
        ({"task": (None, b"transcribe", None)}, None, 400, "audio: this field is required"),
        ({"audio": ("a.txt", b"hello", "text/plain")}, None, 415, "text/plain is not accepted"),
    ],
)
def test_bad_uploads_are_refused_before_the_app(
    guarded: tuple[UploadGuard, Echo], fields: dict | None, content_type: str | None, status: int, needle: str
) -> None:
    guard, app = guarded
    body, ctype = multipart(fields) if fields else (b'{"audio": "x"}', "")
    got, answer = call(guard, body, content_type or ctype)
    assert got == status and needle in answer["error"], answer
    assert app.bodies == []


def test_oversized_uploads_are_refused_by_length_and_while_streaming(guarded: tuple[UploadGuard, Echo]) -> None:
    guard, app = guarded
    body, ctype = multipart({"audio": ("a.wav", bytes(10_000), "audio/wav")})
    assert call(guard, body, ctype)[0] == 413  # by Content-Length
    status, answer = call(guard, body, ctype, chunks=20, length=False)  # chunked: counted as it arrives
    assert status == 413 and "4096 bytes" in answer["error"] and app.bodies == []


def test_file_fields_come_from_the_request_models() -> None:
    from tasks.music.contract import NotesRequest
    from tasks.speech.contract import TranscribeRequest
    from tasks.translation.contract import TranslateRequest

    assert "audio/wav" in upload_fields(TranscribeRequest)["audio"]
    assert set(upload_fields(NotesRequest)) == {"audio"}
    assert upload_fields(TranslateRequest) == {}
    from pydantic import BaseModel

    class Doc(BaseModel):
        scan: Path = upload_field("a scan", ["image/png"])

    assert upload_fields(Doc) == {"scan": ["image/png"]}
