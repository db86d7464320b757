"""Notes as a standard MIDI file, and MIDI note numbers as names.

``notes_to_midi`` writes what basic-pitch's own MIDI output holds (one "Electric Piano 1" track, velocity
``round(127 * confidence)``, 120 BPM by default) with mido instead of pretty_midi; pitch bends are left
out, as they are in the notes the service returns.
"""

from __future__ import annotations

import io
from collections.abc import Sequence
from typing import Any

NOTE_NAMES = ("C", "C#", "D", "D#", "E", "F", "F#", "G", "G#", "A", "A#", "B")
TICKS_PER_BEAT = 480
ELECTRIC_PIANO_1 = 4  # General MIDI program (0-based), basic-pitch's choice


def pitch_name(midi: int) -> str:
    """Scientific pitch notation, sharps only: 69 → "A4", 60 → "C4", 49 → "C#3"."""
    return f"{NOTE_NAMES[midi % 12]}{midi // 12 - 1}"


def notes_to_midi(notes: Sequence[dict[str, Any]], tempo_bpm: float = 120) -> bytes:
    """A type-0 MIDI file of ``notes`` (dicts with ``onset_s``, ``offset_s``, ``pitch_midi`` and
    ``confidence``), one track on channel 0."""
    import mido

    tempo = mido.bpm2tempo(tempo_bpm)

    def tick(seconds: float) -> int:
        return round(mido.second2tick(max(seconds, 0.0), TICKS_PER_BEAT, tempo))

    events: list[tuple[int, int, mido.Message]] = []
    for note in notes:
        pitch = int(note["pitch_midi"])
        velocity = min(max(round(127 * float(note.get("confidence", 1.0))), 1), 127)  # 0 would mean note off
        start = tick(float(note["onset_s"]))
        end = max(tick(float(note["offset_s"])), start + 1)
        events.append((start, 1, mido.Message("note_on", note=pitch, velocity=velocity)))
        events.append((end, 0, mido.Message("note_off", note=pitch, velocity=0)))
    # at equal times, a note ends before the next one starts, so a repeated pitch is not cut short
    events.sort(key=lambda e: (e[0], e[1]))
    track = mido.MidiTrack(
        [
            mido.MetaMessage("set_tempo", tempo=tempo, time=0),
            mido.Message("program_change", program=ELECTRIC_PIANO_1, time=0),
        ]
    )
    now = 0
    for at, _, message in events:
        track.append(message.copy(time=at - now))
        now = at
    track.append(mido.MetaMessage("end_of_track", time=0))
    out = io.BytesIO()
    mido.MidiFile(type=0, ticks_per_beat=TICKS_PER_BEAT, tracks=[track]).save(file=out)
    return out.getvalue()
