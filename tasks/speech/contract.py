"""The speech task's public contract. Requests are ``multipart/form-data``: the recording in ``audio``,
the other fields as form fields (``curl -F audio=@clip.wav -F task=translate URL``)."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Literal

from pydantic import BaseModel, Field, field_validator

from bundle.audio import AUDIO_CONTENT_TYPES
from bundle.contract import Answered, ModelSelection
from bundle.uploads import upload_field
from tasks.sentiment.contract import Prediction

# Whisper hears one window of 30 s; longer recordings would need chunking and stitching, which this
# endpoint does not pretend to do.
MAX_SPEECH_SECONDS = 30.0
SAMPLE_RATE = 16_000

AUDIO_DESCRIPTION = (
    f"The recording: WAV, FLAC, OGG (Vorbis or Opus) or MP3, any sample rate, mono or stereo (mixed to mono), "
    f"at most {MAX_SPEECH_SECONDS:g} s and serving.yaml limits.max_upload_bytes (25 MiB by default)."
)
AudioTask = Literal["transcribe", "translate"]


class SpeechOptions(ModelSelection):
    audio: Path = upload_field(AUDIO_DESCRIPTION, AUDIO_CONTENT_TYPES + ("audio/*",))
    language: str | None = Field(
        default=None,
        description="The spoken language as an ISO 639-1 code (en, es, pt, ...). Omit it to have it detected.",
        examples=[None],
    )

    @field_validator("language")
    @classmethod
    def _language_code(cls, value: str | None) -> str | None:
        if value is not None and not re.fullmatch(r"[a-z]{2,3}", value):
            raise ValueError(f"{value[:20]!r} is not a language code; use an ISO 639-1 code such as en, es or pt")
        return value


class TranscribeRequest(SpeechOptions):
    task: AudioTask = Field(
        default="transcribe",
        description="transcribe: text in the spoken language; translate: English text (multilingual models only).",
        examples=["transcribe"],
    )


class Heard(BaseModel):
    text: str = Field(description="What was said (empty for silence).", examples=["go forward ten meters"])
    language: str = Field(description="The spoken language, given or detected (ISO 639-1).", examples=["en"])
    duration_s: float = Field(description="The recording's duration in seconds.", examples=[2.63])


class TranscribeResponse(Answered, Heard):
    task: AudioTask = Field(examples=["transcribe"])
    source_sample_rate: int = Field(description="The file's own sample rate, before resampling to 16 kHz.")


class SpeechSentimentRequest(SpeechOptions):
    sentiment_model: str | None = Field(
        default=None, max_length=100, description="Sentiment model (see /models); omit for the task's routing."
    )


class SpeechSentimentResponse(Heard, Prediction):
    english: str = Field(description="The English text classified: the transcript, or Whisper's translation of it.")
    models: dict[str, str] = Field(
        description="Every model that answered, by step (speech, translation when not English, sentiment).",
        examples=[{"speech": "speech_whisper_base:abc", "sentiment": "sentiment_stacked:def"}],
    )
    elapsed_ms: float = Field(description="Time spent in the service, in milliseconds.", examples=[812.0])
