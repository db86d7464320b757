"""Speech to text with Whisper (transformers), one batch at a time.

A batch is worked in three steps, each once for the whole batch:

1. one feature extraction (Whisper pads or cuts every clip to 30 s of log-mel frames) and one encoder pass;
2. one decoder step from ``<|startoftranscript|>``: its distribution gives both the language of every clip
   that came without one (the most likely language token, as Whisper's own ``detect_language``) and the
   probability of ``<|nocaptions|>``, Whisper's no-speech signal;
3. one ``generate`` call per task present in the batch (transcribe, translate) on the encoder states of
   step 1: transformers 5 takes one language per item (a list) but one task per call. Greedy decoding,
   no timestamps, at most 448 tokens (the decoder's context).

Why not let ``generate`` detect the language itself: it does detect per item when ``language`` is None, but
it cannot mix items with a given language and items without one in one call (a ``None`` in the language
list is refused), it re-runs the encoder for the detection, and it does not say which language it chose
except as a token inside the output. Step 2 costs one decoder step and avoids all three.

Silence and noise: Whisper, given nothing to hear, writes something anyway. Measured here: tiny.en answers
" you" to digital silence, white noise and a 50 Hz hum, base " you" to the hum; base answered -40 dBFS white noise with
"1,5,5,5,..." until the 448-token limit, at an average log-probability of -0.04 (confident!), which also
held its whole batch for 448 decoder steps (95 s on the CPU). The guards, cheapest first:

- a clip whose loudness is below -60 dBFS (``bundle.audio.is_silent``) is not sent to the model at all;
- each item may generate at most ``TOKENS_BASE + TOKENS_PER_SECOND`` × its duration tokens (a per-item
  stopping criterion): about three times the token rate of fast read speech, so real speech is never cut,
  while a clip that starts looping stops early instead of holding its batch;
- when the no-speech probability is above 0.6, the output is discarded (empty text) if it also looks like a
  hallucination: average log-probability below -1 (OpenAI's own rule), a zlib compression ratio above 2.4
  (a repetition loop; OpenAI's threshold), it hit the token cap, or it is at most three words (" you",
  "Thank you.": the usual confident hallucinations on noise, which the other tests do not catch).
  Speech checked here (pocketsphinx read speech, espeak-ng sentences in three languages, asterisk digits)
  had a no-speech probability of 0.15 at most; silence, noise and hum 0.75-0.95.

Threads: generation is run with ``GENERATION_THREADS`` intra-op threads (see the constant), whatever the
rest of the process uses, and the previous setting is restored after the call.
"""

from __future__ import annotations

import contextlib
import logging
import math
import threading
import zlib
from collections.abc import Iterator, Sequence
from typing import Any

import numpy as np

from bundle.audio import from_pcm16, is_silent

logger = logging.getLogger(__name__)

SAMPLE_RATE = 16000
MAX_SECONDS = 30.0
MAX_TOKENS = 448  # the decoder's context (max_target_positions), prompt included
TASKS = ("transcribe", "translate")
NO_SPEECH_THRESHOLD = 0.6  # OpenAI Whisper's defaults (transcribe.py)
LOGPROB_THRESHOLD = -1.0
COMPRESSION_RATIO_THRESHOLD = 2.4
HALLUCINATION_MAX_WORDS = 3
# Fast read English is ~4 tokens/s (the 7.1 s LibriVox check clip: 26 tokens); 12/s leaves room for denser
# scripts and digit strings; the base lets a 1 s clip say a short sentence.
TOKENS_BASE = 16
TOKENS_PER_SECOND = 12
# Measured on this project's 2-core machine (Intel Xeon, torch 2.13 CPU, the cores shared with other work),
# transcribing the 7.1 s LibriVox clip, three runs each: tiny.en 0.94-0.95 s on one intra-op thread and
# 13-24 s on two; base 1.8-1.9 s on one and 9-32 s on two. torch.sort over the vocabulary, which generate()
# runs at every step: 3.2-3.7 ms on one thread, 22-24 ms on two. One thread is the faster setting here.
GENERATION_THREADS = 1
CPU_CLIPS_PER_PASS = 8
_threads_lock = threading.Lock()


@contextlib.contextmanager
def torch_threads(n: int) -> Iterator[None]:
    """Run the body with ``n`` intra-op threads, then restore the previous count (the runner process also hosts
    models that want more). The setting is process-wide, so concurrent calls are serialised on a lock."""
    import torch

    with _threads_lock:
        before = torch.get_num_threads()
        if before == n:
            yield
            return
        torch.set_num_threads(n)
        try:
            yield
        finally:
            torch.set_num_threads(before)


def token_cap(seconds: float) -> int:
    """The most tokens a clip of ``seconds`` may generate (the prompt takes at most 4 of the 448)."""
    return int(min(MAX_TOKENS - 4, TOKENS_BASE + TOKENS_PER_SECOND * seconds))


def compression_ratio(text: str) -> float:
    """How well ``text`` compresses (OpenAI's measure of repetition): above 2.4 it is mostly a loop."""
    data = text.encode("utf-8")
    return len(data) / len(zlib.compress(data)) if data else 0.0


class TokenCap:
    """A per-item stopping criterion: row ``i`` stops after ``caps[i]`` generated tokens, so one looping clip
    does not hold its whole batch for 448 steps (transformers stops rows independently)."""

    def __init__(self, caps: Sequence[int]) -> None:
        self.caps = caps
        self.start: int | None = None

    def __call__(self, input_ids: Any, scores: Any, **kwargs: Any) -> Any:
        import torch

        if self.start is None:  # the first call comes after the first generated token
            self.start = input_ids.shape[1] - 1
        generated = input_ids.shape[1] - self.start
        caps = torch.tensor(self.caps, device=input_ids.device)
        return generated >= caps


class WhisperPredictor:
    """A Whisper model saved by ``train.import_whisper`` (a transformers folder), batched."""

    def __init__(self, path: str, device: str) -> None:
        import torch
        from transformers import WhisperForConditionalGeneration, WhisperProcessor

        if device not in ("cpu", "cuda"):
            raise ValueError(f"device must be 'cpu' or 'cuda', not {device!r}")
        self.device = torch.device(device)
        # fp16 halves memory and doubles throughput on a GPU; CPUs have no fast fp16 matmul, so fp32 there.
        self.dtype = torch.float16 if device == "cuda" else torch.float32
        self.processor = WhisperProcessor.from_pretrained(path)
        model: Any = WhisperForConditionalGeneration.from_pretrained(path, dtype=self.dtype)  # .to() is mistyped
        self.model = model.to(self.device).eval()
        generation = self.model.generation_config
        self.multilingual = bool(getattr(generation, "is_multilingual", False))
        self.start_token = int(generation.decoder_start_token_id)
        self.eot_token = int(generation.eos_token_id)
        # <|nocaptions|> is the token just before <|notimestamps|> in every Whisper vocabulary (as OpenAI's code
        # and transformers' WhisperNoSpeechDetection assume).
        self.no_speech_token = int(generation.no_timestamps_token_id) - 1
        self.lang_to_id: dict[str, int] = dict(getattr(generation, "lang_to_id", None) or {})
        self.code_of = {token_id: token[2:-2] for token, token_id in self.lang_to_id.items()}  # id → "es"
        self.threads = GENERATION_THREADS if device == "cpu" else None
        # On a CPU every clip is a 30 s window and batches past a few clips only add padding and cache
        # misses: served at concurrency 16, batches of 16 gave 0.59 clips/s where batches of 4-8 give 0.8
        # in process (bench/audio.py). A GPU takes the whole batch.
        self.clips_per_pass = CPU_CLIPS_PER_PASS if device == "cpu" else 64

    @property
    def languages(self) -> list[str]:
        return sorted(self.code_of.values()) if self.multilingual else ["en"]

    def _check(self, item: dict[str, Any]) -> tuple[str, str | None]:
        task = item.get("task") or "transcribe"
        language = item.get("language") or None
        if task not in TASKS:
            raise ValueError(f"task must be one of {TASKS}, not {task!r}")
        if language is not None:
            language = language.strip().lower()
        if not self.multilingual:
            if task == "translate":
                raise ValueError("this Whisper model is English-only: it can transcribe English, not translate")
            if language not in (None, "en"):
                raise ValueError(f"this Whisper model is English-only: language {language!r} is not supported")
            return task, "en"
        if language is not None and f"<|{language}|>" not in self.lang_to_id:
            raise ValueError(f"language {language!r} is not one of this model's: {', '.join(self.languages)}")
        return task, language

    def predict(self, inputs: Sequence[dict[str, Any]]) -> list[dict[str, str]]:
        """Transcribe or translate each ``{"pcm16", "task", "language"}``; results in the order of ``inputs``."""
        requests = [self._check(item) for item in inputs]  # every input is checked before any work is done
        samples = [from_pcm16(item["pcm16"]) for item in inputs]
        for i, s in enumerate(samples):
            if len(s) > MAX_SECONDS * SAMPLE_RATE + 1:
                raise ValueError(f"input {i} lasts {len(s) / SAMPLE_RATE:.1f} s; the maximum is {MAX_SECONDS:g} s")
        results = [{"text": "", "language": language or "en"} for _, language in requests]
        audible = [i for i, s in enumerate(samples) if not is_silent(s)]
        if not audible:
            return results
        step = self.clips_per_pass
        with torch_threads(self.threads) if self.threads else contextlib.nullcontext():
            for start in range(0, len(audible), step):
                part = audible[start : start + step]
                texts, languages = self._run([samples[i] for i in part], [requests[i] for i in part])
                for i, text, language in zip(part, texts, languages, strict=True):
                    results[i] = {"text": text, "language": language}
        return results

    def _run(self, samples: list[np.ndarray], requests: list[tuple[str, str | None]]) -> tuple[list[str], list[str]]:
        import torch
        from transformers import StoppingCriteriaList
        from transformers.modeling_outputs import BaseModelOutput

        n = len(samples)
        features = self.processor.feature_extractor(samples, sampling_rate=SAMPLE_RATE, return_tensors="pt")
        features = features.input_features.to(self.device, self.dtype)
        with torch.inference_mode():
            encoded = self.model.model.encoder(features).last_hidden_state
            start = torch.full((n, 1), self.start_token, dtype=torch.long, device=self.device)
            first = self.model(encoder_outputs=(encoded,), decoder_input_ids=start).logits[:, -1].float()
            no_speech = first.softmax(-1)[:, self.no_speech_token].tolist()
            languages = [language or "en" for _, language in requests]
            if self.multilingual:
                ids = torch.tensor(list(self.lang_to_id.values()), device=self.device)
                detected = ids[first[:, ids].argmax(-1)].tolist()
                languages = [language or self.code_of[d] for (_, language), d in zip(requests, detected, strict=True)]
            texts = [""] * n
            for task in TASKS:
                group = [i for i, (t, _) in enumerate(requests) if t == task]
                if not group:
                    continue
                index = torch.tensor(group, device=self.device)
                caps = [token_cap(len(samples[i]) / SAMPLE_RATE) for i in group]
                options: dict[str, Any] = {}
                if self.multilingual:
                    options = {"task": task, "language": [languages[i] for i in group]}
                out = self.model.generate(
                    encoder_outputs=BaseModelOutput(last_hidden_state=encoded.index_select(0, index)),
                    do_sample=False,
                    num_beams=1,
                    return_timestamps=False,
                    return_dict_in_generate=True,
                    output_scores=True,
                    stopping_criteria=StoppingCriteriaList([TokenCap(caps)]),
                    **options,
                )
                decoded = self.processor.batch_decode(out.sequences, skip_special_tokens=True)
                logprobs, lengths = self._average_logprobs(out.sequences, out.scores)
                for row, i in enumerate(group):
                    text = decoded[row].strip()
                    capped = lengths[row] >= caps[row]
                    dropped = no_speech[i] > NO_SPEECH_THRESHOLD and (
                        logprobs[row] < LOGPROB_THRESHOLD
                        or compression_ratio(text) > COMPRESSION_RATIO_THRESHOLD
                        or capped
                        or len(text.split()) <= HALLUCINATION_MAX_WORDS
                    )
                    logger.debug(
                        "input %d: no-speech p=%.3f, avg logprob %.3f, %d tokens%s%s: %r",
                        i, no_speech[i], logprobs[row], lengths[row], " (capped)" if capped else "",
                        " (dropped)" if dropped else "", text,
                    )  # fmt: skip
                    texts[i] = "" if dropped else text
        return texts, languages

    def _average_logprobs(self, sequences: Any, scores: Sequence[Any]) -> tuple[list[float], list[int]]:
        """Mean log-probability of each output's tokens up to and including its end token (OpenAI's
        ``avg_logprob``, with the processed scores generate() returns: suppressed tokens excluded), and the
        number of tokens each output generated (its end token excluded)."""
        import torch

        if not scores:
            return [0.0] * sequences.shape[0], [0] * sequences.shape[0]
        steps = torch.stack([s.float() for s in scores], dim=1).log_softmax(-1)  # (batch, steps, vocab)
        generated = sequences[:, -steps.shape[1] :]
        chosen = steps.gather(-1, generated.unsqueeze(-1)).squeeze(-1)
        averages, lengths = [], []
        for row in range(sequences.shape[0]):
            tokens = generated[row].tolist()
            ended = self.eot_token in tokens
            length = tokens.index(self.eot_token) + 1 if ended else len(tokens)
            values = chosen[row, :length]
            total = float(values[torch.isfinite(values)].sum())
            averages.append(total / max(length, 1) if math.isfinite(total) else -math.inf)
            lengths.append(length - 1 if ended else length)
        return averages, lengths
