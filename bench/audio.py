"""Audio benchmark: Whisper (speech → text) and basic-pitch (music → notes), in process and served.

    python -m bench.audio                 # make bench-audio
    python -m bench.audio --quick         # a minute: tiny.en only, a few clips, one served point

- In process: clips/s and real-time factor (compute seconds per second of audio; below 1 is faster than
  real time) of each Whisper model's predictor at batch 1/4/8, on spoken movie snippets (espeak-ng, 2–5 s
  each, 16 kHz), with the runner's thread settings; and of basic-pitch on instrument recordings from
  sonic-pi-samples.
- Served: ``bentoml serve`` with the audio models only (the committed runner settings, and a copy with the
  runners' batching off), ``POST /transcribe`` with one uploaded WAV per request at concurrency 1/4/16
  (an asyncio HTTP client: each request costs Whisper hundreds of milliseconds, so a Python client's
  overhead is noise here); successful requests/s, p50, p99, status counts.

Prints a table and writes ``<out>/audio.json`` and ``.md`` with the machine, versions and date. Needs the
Debian packages espeak-ng and sonic-pi-samples (.ci/run installs them). Timings compare only within a run.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import logging
import os
import platform
import shutil
import statistics
import subprocess
import tempfile
import time
from importlib import metadata as importlib_metadata
from pathlib import Path
from typing import Any

import yaml

from bench.sentences import movie_sentences
from bench.servers import ROOT, Launcher, ServerSpec
from tasks.embedding.runtimes import cpu_model

logger = logging.getLogger("bench.audio")

SONIC_PI = Path("/usr/share/sonic-pi/samples")
MUSIC_SAMPLES = ["guit_em9.flac", "bass_woodsy_c.flac", "ambi_piano.flac", "bass_voxy_c.flac"]
AUDIO_TASKS = ("speech", "music")


def audio_only() -> dict[str, Any]:
    """serving.yaml's audio models and audio task settings (deadlines, budgets), and nothing else: the
    text models stay out of the runners' memory and start-up."""
    serving = yaml.safe_load((ROOT / "serving.yaml").read_text())
    return {
        "models": {k: v for k, v in serving["models"].items() if v["task"] in AUDIO_TASKS},
        "tasks": {k: v for k, v in serving["tasks"].items() if k in AUDIO_TASKS},
    }


AUDIO_ONLY = audio_only()
BATCHING_OFF = {"runners": {"gpu": {"max_batch_size": 1, "entry_calls_in_flight": 0}}}
SERVED = [
    ServerSpec(
        "BentoML /transcribe, adaptive batching",
        "bentoml",
        "serving.yaml's runner settings",
        serving_replace=AUDIO_ONLY,
    ),
    ServerSpec(
        "BentoML /transcribe, batching off",
        "bentoml",
        "gpu runner max_batch_size 1, no coalescing",
        serving_overrides=BATCHING_OFF,
        serving_replace=AUDIO_ONLY,
    ),
]


def spoken_clips(n: int, workdir: Path) -> list[bytes]:
    """``n`` movie snippets spoken by espeak-ng, as 16 kHz WAV files (2–5 s each)."""
    if shutil.which("espeak-ng") is None:
        raise SystemExit("espeak-ng is not installed (Debian: apt-get install espeak-ng)")
    clips = []
    for i, text in enumerate(movie_sentences(n, min_words=6, max_words=12)):
        out = workdir / f"spoken-{i}.wav"
        subprocess.run(["espeak-ng", "-s", "160", "-w", str(out), text], check=True, capture_output=True)
        clips.append(out.read_bytes())
    return clips


def decoded(clips: list[bytes], rate: int) -> list[Any]:
    from bundle import audio

    return [audio.decode(c, rate, 60.0) for c in clips]


def timed_batches(
    name: str, predictor: Any, items: list[dict[str, Any]], seconds_of_audio: float, batches: list[int]
) -> dict[str, Any]:
    """Clips/s and real-time factor of ``predictor`` over ``items`` at each batch size (after a warm-up)."""
    predictor.predict(items[:1])
    rows = {}
    for size in batches:
        started = time.perf_counter()
        for i in range(0, len(items), size):
            predictor.predict(items[i : i + size])
        took = time.perf_counter() - started
        rows[f"batch {size}"] = {"clips_per_s": round(len(items) / took, 2), "rtf": round(took / seconds_of_audio, 3)}
        logger.info("%s batch %d: %s", name, size, rows[f"batch {size}"])
    return rows


def inprocess_speech(store_name: str, clips: list[Any], batches: list[int], threads: int) -> dict[str, Any]:
    import bentoml
    import torch

    from bundle import audio
    from tasks.speech.whisper import WhisperPredictor

    torch.set_num_threads(threads)
    predictor = WhisperPredictor(bentoml.models.get(f"{store_name}:latest").path, "cpu")
    items = [{"pcm16": audio.to_pcm16(c.samples), "task": "transcribe", "language": "en"} for c in clips]
    return timed_batches(store_name, predictor, items, sum(c.seconds for c in clips), batches)


def inprocess_music(clips: list[Any], batches: list[int]) -> dict[str, Any]:
    import bentoml

    from bundle import audio
    from tasks.music.basic_pitch import (
        DEFAULT_FRAME_THRESHOLD,
        DEFAULT_MIN_NOTE_MS,
        DEFAULT_ONSET_THRESHOLD,
        BasicPitchPredictor,
    )

    predictor = BasicPitchPredictor(bentoml.models.get("music_basic_pitch:latest").path, "cpu")
    options = {
        "onset_threshold": DEFAULT_ONSET_THRESHOLD,
        "frame_threshold": DEFAULT_FRAME_THRESHOLD,
        "min_note_ms": DEFAULT_MIN_NOTE_MS,
    }
    items = [{"pcm16": audio.to_pcm16(c.samples), **options} for c in clips]
    return timed_batches("music_basic_pitch", predictor, items, sum(c.seconds for c in clips), batches)


async def closed_loop(
    url: str, clips: list[bytes], concurrency: int, requests: int, model: str | None
) -> dict[str, Any]:
    """``requests`` uploads, ``concurrency`` at a time, each client sending its next when answered."""
    import httpx

    latencies: list[float] = []
    statuses: dict[str, int] = {}
    sent = 0

    async def client(http: httpx.AsyncClient) -> None:
        nonlocal sent
        while sent < requests:
            data = clips[sent % len(clips)]
            sent += 1
            fields = {"model": model} if model else {}
            started = time.perf_counter()
            try:
                r = await http.post(url, files={"audio": ("clip.wav", data, "audio/wav")}, data=fields)
                status = str(r.status_code)
            except httpx.HTTPError as exc:
                status = type(exc).__name__
            statuses[status] = statuses.get(status, 0) + 1
            if status == "200":
                latencies.append((time.perf_counter() - started) * 1000)

    limits = httpx.Limits(max_connections=concurrency + 4)
    async with httpx.AsyncClient(timeout=120.0, limits=limits) as http:
        started = time.perf_counter()
        await asyncio.gather(*(client(http) for _ in range(concurrency)))
        took = time.perf_counter() - started
    q = statistics.quantiles(latencies, n=100) if len(latencies) >= 2 else [latencies[0]] * 99 if latencies else []
    return {
        "ok_per_s": round(len(latencies) / took, 2),
        "p50_ms": round(q[49], 1) if q else None,
        "p99_ms": round(q[98], 1) if q else None,
        "statuses": statuses,
    }


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--quick", action="store_true")
    parser.add_argument("--clips", type=int, default=16)
    parser.add_argument("--requests", type=int, default=48, help="requests per served point")
    parser.add_argument("--concurrency", default="1,4,16")
    parser.add_argument("--threads", type=int, default=2, help="torch threads in process (the gpu runner's)")
    parser.add_argument("--served-model", default="whisper_base")
    parser.add_argument("--bentoml-home", default=os.environ.get("BENTOML_HOME", str(Path.home() / "bentoml")))
    parser.add_argument("--out", type=Path, default=Path("results/bench"))
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(message)s", datefmt="%H:%M:%S")
    logging.getLogger("httpx").setLevel(logging.WARNING)  # not a line per request
    os.environ["BENTOML_HOME"] = args.bentoml_home
    concurrency = [1] if args.quick else [int(c) for c in args.concurrency.split(",")]
    batches = [1, 4] if args.quick else [1, 4, 8]
    requests = 6 if args.quick else args.requests
    served_model = "whisper_tiny_en" if args.quick else args.served_model
    speech_models = ["speech_whisper_tiny_en"] if args.quick else ["speech_whisper_tiny_en", "speech_whisper_base"]

    with tempfile.TemporaryDirectory(prefix="bench-audio-") as tmp:
        work = Path(tmp)
        wavs = spoken_clips(4 if args.quick else args.clips, work)
        clips = decoded(wavs, 16_000)
        logger.info("%d spoken clips, %.1f s of audio", len(clips), sum(c.seconds for c in clips))
        speech = {name: inprocess_speech(name, clips, batches, args.threads) for name in speech_models}
        music_files = [SONIC_PI / f for f in MUSIC_SAMPLES if (SONIC_PI / f).is_file()]
        music = inprocess_music(decoded([f.read_bytes() for f in music_files], 22_050), batches) if music_files else {}

        served: dict[str, dict[str, Any]] = {}
        launcher = Launcher(work, args.bentoml_home, None, "", "")
        for spec in SERVED[:1] if args.quick else SERVED:
            with launcher.start(spec) as server:
                url = f"{server.base}/transcribe"
                asyncio.run(closed_loop(url, wavs, 2, 4, served_model))  # warm-up
                for c in concurrency:
                    point = asyncio.run(closed_loop(url, wavs, c, max(requests, 2 * c), served_model))
                    served.setdefault(spec.name, {})[f"c={c}"] = point
                    logger.info("%s c=%d: %s", spec.name, c, point)

    report = {
        "date": time.strftime("%Y-%m-%dT%H:%M:%S%z"),
        "machine": {"cpu": cpu_model(), "cores": os.cpu_count(), "python": platform.python_version()},
        "versions": {p: importlib_metadata.version(p) for p in ("bentoml", "torch", "transformers", "onnxruntime")},
        "quick": args.quick,
        "clips": len(wavs),
        "audio_seconds": round(sum(c.seconds for c in clips), 1),
        "in_process_speech": speech,
        "in_process_music": music,
        "served_model": served_model,
        "served": served,
    }
    lines = [
        f"# Audio benchmark, {report['date']}",
        "",
        f"{report['machine']['cpu']}, {os.cpu_count()} cores; {len(wavs)} movie snippets spoken by espeak-ng "
        f"({report['audio_seconds']} s in all); torch threads {args.threads}. "
        "RTF: compute seconds per second of audio.",
        "",
        "| in process | " + " | ".join(f"batch {b}: clips/s (RTF)" for b in batches) + " |",
        "|---|" + "---:|" * len(batches),
    ]
    for name, rows in [*speech.items(), *([("music_basic_pitch", music)] if music else [])]:
        lines.append(
            f"| {name} | "
            + " | ".join(f"{rows[f'batch {b}']['clips_per_s']} ({rows[f'batch {b}']['rtf']})" for b in batches)
            + " |"
        )
    lines += [
        "",
        f"| served `POST /transcribe` ({served_model}), one clip per request | "
        + " | ".join(f"c={c} req/s (p50 / p99 ms)" for c in concurrency)
        + " |",
        "|---|" + "---:|" * len(concurrency),
    ]
    for name, points in served.items():
        cells = [
            f"{p['ok_per_s']} ({p['p50_ms']} / {p['p99_ms']}) {p['statuses']}"
            for p in (points[f"c={c}"] for c in concurrency)
        ]
        lines.append(f"| {name} | " + " | ".join(cells) + " |")
    table = "\n".join(lines) + "\n"
    print(table)
    args.out.mkdir(parents=True, exist_ok=True)
    (args.out / "audio.json").write_text(json.dumps(report, indent=2))
    (args.out / "audio.md").write_text(table)
    logger.info("wrote %s", args.out / "audio.json")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
