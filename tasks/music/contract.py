"""The music task's public contract. Requests are ``multipart/form-data``: the recording in ``audio``,
the thresholds as form fields (``curl -F audio=@guitar.flac -F midi=true URL``)."""

from __future__ import annotations

from pathlib import Path

from pydantic import BaseModel, Field

from bundle.audio import AUDIO_CONTENT_TYPES
from bundle.contract import Answered, ModelSelection
from bundle.uploads import upload_field

# basic-pitch works on 2-second windows; a minute is plenty for a riff or a phrase and bounds the work
# one request can ask of the runner.
MAX_MUSIC_SECONDS = 60.0
SAMPLE_RATE = 22_050


class NotesRequest(ModelSelection):
    audio: Path = upload_field(
        f"The recording: WAV, FLAC, OGG or MP3, any sample rate, mono or stereo, at most {MAX_MUSIC_SECONDS:g} s.",
        AUDIO_CONTENT_TYPES + ("audio/*",),
    )
    onset_threshold: float = Field(
        default=0.5,
        ge=0.05,
        le=0.95,
        description="How sure the model must be that a note starts (higher: fewer notes).",
    )
    frame_threshold: float = Field(
        default=0.3, ge=0.05, le=0.95, description="How sure it must be that a note sounds, frame by frame."
    )
    min_note_ms: float = Field(default=127.7, ge=10, le=2000, description="Shorter notes are dropped.")
    midi: bool = Field(default=False, description="Also answer the notes as a standard MIDI file (base64).")


class Note(BaseModel):
    onset_s: float = Field(examples=[0.012])
    offset_s: float = Field(examples=[1.984])
    pitch_midi: int = Field(ge=0, le=127, examples=[69])
    pitch_name: str = Field(examples=["A4"])
    confidence: float = Field(ge=0, le=1, description="The model's mean note probability over the note.")


class NotesResponse(Answered):
    notes: list[Note] = Field(description="The notes heard, by onset.")
    duration_s: float = Field(description="The recording's duration in seconds.")
    source_sample_rate: int = Field(description="The file's own sample rate, before resampling to 22.05 kHz.")
    midi_base64: str | None = Field(default=None, description="With midi=true: a standard MIDI file, base64.")
