"""Music to notes: Spotify's basic-pitch (Apache-2.0), a small polyphonic note-transcription network,
imported from its wheel's ONNX file by train/import_basic_pitch.py and run with ONNX Runtime by
tasks/music/basic_pitch.py on the cpu runner.

Endpoint ``/music/notes``: a recording → the notes heard (onset, offset, pitch, confidence), optionally
as a MIDI file. Decoding and resampling to 22.05 kHz happen here, in the entry service.
"""

from __future__ import annotations

import base64
import time
from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

from bundle import audio
from bundle.audio import AudioTask
from bundle.contract import answered
from bundle.task import Endpoint, Predictor
from tasks.music.contract import MAX_MUSIC_SECONDS, SAMPLE_RATE, Note, NotesRequest, NotesResponse
from tasks.speech import read_clip

if TYPE_CHECKING:
    from bundle.gateway import TaskGateway

PIPELINE = "basic_pitch"


async def notes(gateway: TaskGateway, request: NotesRequest) -> NotesResponse:
    """The notes played in a recording (polyphonic), optionally as a MIDI file: upload it in `audio`."""
    started = time.perf_counter()
    clip = await read_clip(request.audio, SAMPLE_RATE, MAX_MUSIC_SECONDS)
    item = {
        "pcm16": audio.to_pcm16(clip.samples),
        "onset_threshold": request.onset_threshold,
        "frame_threshold": request.frame_threshold,
        "min_note_ms": request.min_note_ms,
    }
    answer = await gateway.infer([item], model=request.model, version=request.version, user=request.user)
    heard = answer.outputs[0]
    midi = None
    if request.midi:
        from tasks.music.midi import notes_to_midi

        midi = base64.b64encode(notes_to_midi(heard)).decode("ascii")
    return NotesResponse(
        notes=[Note.model_validate(n) for n in heard],
        duration_s=round(clip.seconds, 3),
        source_sample_rate=clip.source_rate,
        midi_base64=midi,
        **answered(answer, started),
    )


class MusicTask(AudioTask):
    name = "music"
    sample_rate = SAMPLE_RATE
    store_models = {"music_basic_pitch": "train.import_basic_pitch"}

    @property
    def endpoints(self) -> list[Endpoint]:
        return [Endpoint("/music/notes", NotesRequest, NotesResponse, notes)]

    def load_model(self, kind: str, path: str, device: str, runtime: str = "auto") -> Predictor:
        if kind != PIPELINE:
            raise ValueError(f"unknown music model kind {kind!r}; known kinds: [{PIPELINE!r}]")
        from tasks.music.basic_pitch import BasicPitchPredictor

        return BasicPitchPredictor(path, device)

    def describe_outputs(self, outputs: Sequence[Any]) -> dict[str, Any]:
        return {"notes": [len(o) for o in outputs], "pitches": [sorted({n["pitch_midi"] for n in o}) for o in outputs]}

    tensor_outputs = [("notes", "BYTES", [-1])]
