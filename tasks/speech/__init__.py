"""Speech to text: OpenAI's Whisper (MIT), imported from CTranslate2 files shipped in wheels and rebuilt as
transformers models by train/import_whisper.py; run by tasks/speech/whisper.py on the gpu runner (CUDA
when present, else the CPU).

Two stored models: ``speech_whisper_base`` (multilingual: transcribes ~99 languages and translates them to
English; the default) and ``speech_whisper_tiny_en`` (English only, faster, weaker; the tests use it).
Endpoints: ``/transcribe`` (a recording → its text and language) and ``/sentiment/speech``, an inference
graph across tasks: a spoken review → transcript (→ English, when spoken in another language) → the
sentiment task's routing, naming every model that answered.

Pre-processing (decoding, mixing to mono, resampling to 16 kHz, the duration bound) happens here, in the
entry service, so a runner only ever receives clean 16 kHz PCM.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

from bundle import audio
from bundle.audio import AudioTask
from bundle.contract import answered
from bundle.overload import RequestRefused
from bundle.task import Endpoint, Predictor
from tasks.speech.contract import (
    MAX_SPEECH_SECONDS,
    SAMPLE_RATE,
    SpeechSentimentRequest,
    SpeechSentimentResponse,
    TranscribeRequest,
    TranscribeResponse,
)

if TYPE_CHECKING:
    from bundle.gateway import TaskGateway
    from bundle.runner_contract import LoadedModel

PIPELINE = "whisper"


class BadAudio(RequestRefused):
    def __init__(self, message: str) -> None:
        super().__init__(400, message)


async def read_clip(path: Path, sample_rate: int, max_seconds: float, field: str = "audio") -> audio.Clip:
    """Decode an uploaded file off the event loop; a file that is not usable audio is a 400 that says why."""
    try:
        return await asyncio.to_thread(audio.decode, path.read_bytes(), sample_rate, max_seconds, field)
    except audio.AudioError as exc:
        raise BadAudio(str(exc)) from None


def check_capable(model: LoadedModel, task: str, language: str | None) -> None:
    """A 400 when the chosen model cannot do what the request asks (English-only models translate nothing)."""
    if model.labels.get("multilingual") == "true":
        known = model.metadata.get("languages")
        if language and known and language not in known:
            raise RequestRefused(
                400, f"language: {language!r} is not one {model.family} knows; known: {', '.join(known)}"
            )
        return
    if task == "translate" or (language and language != "en"):
        asked = "translation" if task == "translate" else f"language {language!r}"
        raise RequestRefused(
            400, f"{model.family} understands English only and cannot do {asked}; ask for a multilingual model"
        )


async def hear(
    gateway: TaskGateway, clip: audio.Clip, task: str, language: str | None, model: str | None, **choice: Any
) -> Any:
    """One clip through the routed Whisper model: the gateway's answer (outputs[0] = text and language)."""
    decision = gateway.decide(model, choice.get("version"), choice.get("user"))
    try:
        check_capable(await gateway.choose(decision.family, decision.version), task, language)
    except RequestRefused as refused:
        # a model still being made falls back inside infer(); only requests it could not serve are refused
        if refused.status != 503 or task == "translate" or (language and language != "en"):
            raise
    item = {"pcm16": audio.to_pcm16(clip.samples), "task": task, "language": language}
    return await gateway.infer([item], model=model, **choice)


async def transcribe(gateway: TaskGateway, request: TranscribeRequest) -> TranscribeResponse:
    """Transcribe a recording (or translate it to English): upload it as multipart/form-data in `audio`."""
    started = time.perf_counter()
    clip = await read_clip(request.audio, SAMPLE_RATE, MAX_SPEECH_SECONDS)
    answer = await hear(
        gateway, clip, request.task, request.language, request.model, version=request.version, user=request.user
    )
    heard = answer.outputs[0]
    return TranscribeResponse(
        text=heard["text"],
        language=heard["language"],
        duration_s=round(clip.seconds, 3),
        task=request.task,
        source_sample_rate=clip.source_rate,
        **answered(answer, started),
    )


async def sentiment_of_speech(gateway: TaskGateway, request: SpeechSentimentRequest) -> SpeechSentimentResponse:
    """Is a spoken review positive or negative? Speech → transcript (→ English) → sentiment, in one request."""
    from tasks.sentiment import to_prediction

    started = time.perf_counter()
    clip = await read_clip(request.audio, SAMPLE_RATE, MAX_SPEECH_SECONDS)
    answer = await hear(gateway, clip, "transcribe", request.language, request.model, version=request.version)
    heard = answer.outputs[0]
    models = {"speech": answer.model.tag}
    english = heard["text"]
    if heard["language"] != "en" and english:
        # Whisper translates what it hears; the same model, asked again, gives the English text
        translated = await hear(gateway, clip, "translate", heard["language"], answer.model.family)
        english = translated.outputs[0]["text"]
        models["translation"] = translated.model.tag
    if not english.strip():
        raise RequestRefused(400, "audio: no speech was heard in the recording, so there is nothing to classify")
    sentiment = await gateway.peer("sentiment").infer([english], model=request.sentiment_model, user=request.user)
    models["sentiment"] = sentiment.model.tag
    return SpeechSentimentResponse(
        **to_prediction(sentiment.outputs[0]).model_dump(),
        text=heard["text"],
        language=heard["language"],
        duration_s=round(clip.seconds, 3),
        english=english,
        models=models,
        elapsed_ms=round((time.perf_counter() - started) * 1000, 3),
    )


class SpeechTask(AudioTask):
    name = "speech"
    sample_rate = SAMPLE_RATE
    store_models = {
        "speech_whisper_tiny_en": "train.import_whisper --variant tiny_en",
        "speech_whisper_base": "train.import_whisper --variant base",
    }
    # base is converted, checked against CTranslate2 and measured on real speech: minutes
    slow_store_models = frozenset({"speech_whisper_base"})

    @property
    def endpoints(self) -> list[Endpoint]:
        return [
            Endpoint("/transcribe", TranscribeRequest, TranscribeResponse, transcribe),
            Endpoint("/sentiment/speech", SpeechSentimentRequest, SpeechSentimentResponse, sentiment_of_speech),
        ]

    def load_model(self, kind: str, path: str, device: str, runtime: str = "auto") -> Predictor:
        if kind != PIPELINE:
            raise ValueError(f"unknown speech model kind {kind!r}; known kinds: [{PIPELINE!r}]")
        from tasks.speech.whisper import WhisperPredictor

        return WhisperPredictor(path, device)

    def describe_outputs(self, outputs: Sequence[Any]) -> dict[str, Any]:
        return {"language": [o["language"] for o in outputs], "text_chars": [len(o["text"]) for o in outputs]}

    def output_labels(self, outputs: Sequence[Any]) -> list[str]:
        return [o["language"] for o in outputs]

    tensor_outputs = [("text", "BYTES", [-1]), ("language", "BYTES", [-1])]

    def to_tensors(self, outputs: Sequence[Any]) -> dict[str, list[Any]]:
        return {"text": [o["text"] for o in outputs], "language": [o["language"] for o in outputs]}
