"""Encoder runtimes: how the MiniLM encoder's forward pass runs when it serves.

Every model built on :class:`tasks.embedding.encoder.SentenceEncoder` (the sentiment transformer, the
stack's transformer member, the embedding model) can run its encoder as

- ``fp32``: PyTorch eager in float32, the reference (what training produced);
- ``bf16``: PyTorch eager under bfloat16 autocast, only where the hardware computes bf16 natively (CPUs
  with AMX or AVX-512 BF16, CUDA GPUs that support it); elsewhere it is emulated and slower;
- ``onnx``: ONNX Runtime in float32, on a graph exported from the stored weights (CPU);
- ``onnx_int8``: the same graph with the weights of its MatMuls quantised to int8, per output channel,
  in 7 bits (``reduce_range``: without VNNI, x86's u8×s8 multiply-add saturates on 8-bit weights), and
  activations quantised on the fly (dynamic quantisation), except the sensitive ones: each layer's
  feed-forward output projection (GELU activations with outliers) and the heads on top stay float (CPU).
  It runs one text per pass: the activations' scales are computed over the whole input tensor, so in a
  padded batch a text's answer would depend on its neighbours (a test of the service caught it).
  Measured on the fine-tuned transformer (AMD EPYC, 2 threads, padded batches; validation / test, fp32
  0.8704 / 0.8500): every MatMul in int8, 7 bits: 0.8694 / 0.8415 at 195 sentences/s (batch 16);
  feed-forward outputs kept float, 8 bits: 0.8732 / 0.8434; the same in 7 bits (chosen): 0.8751 / 0.8467
  at 171 sentences/s, against fp32's 119.

The exported graphs are stored artefacts, not load-time transformations: train/export_runtimes.py
writes them next to the encoder's weights (``runtimes/``) with a manifest recording, per runtime, its
file and checksum, its quality re-measured against fp32 by the model's own task, and its speed on the
machine that measured it. ``choose`` reads that manifest when a model is loaded.
"""

from __future__ import annotations

import json
import logging
import os
import platform
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal, get_args

import numpy as np

if TYPE_CHECKING:
    pass

logger = logging.getLogger("bentoml.bundle.runtimes")

Runtime = Literal["fp32", "bf16", "onnx", "onnx_int8"]
RUNTIMES: tuple[str, ...] = get_args(Runtime)
REQUESTABLE = ("auto", *RUNTIMES)
RUNTIME_DIR = "runtimes"
MANIFEST = "runtimes.json"
ONNX_FILES = {"onnx": "encoder.onnx", "onnx_int8": "encoder.int8.onnx"}
# Runtimes whose result for a text would depend on its batch neighbours (dynamic quantisation computes
# each activation's scale over the whole tensor): they run one text per pass.
PER_TEXT_PASSES = {"onnx_int8": True}
INPUT_NAMES = ("input_ids", "attention_mask", "token_type_ids")
# A runtime may serve in place of fp32 when its accuracy on every domain its model claims stays within
# this of fp32's (absolute), on the validation and on the test split alike.
MAX_ACCURACY_LOSS = 0.005
# Without a speed measurement from this machine, "auto" prefers, among the runtimes whose quality passed:
STATIC_PREFERENCE = {"cpu": ("onnx_int8", "onnx", "bf16", "fp32"), "cuda": ("bf16", "fp32")}
# ONNX Runtime's worker threads spin while waiting for work by default. On a small CPU shared with the
# entry service's process that steals the cycles the entry needs; without spinning the pool sleeps.
ORT_SPIN = os.environ.get("BUNDLE_ORT_SPIN", "0")


class RuntimeUnavailable(ValueError):
    """The runtime asked for cannot run this model here; the message says why and what to do."""


def cpu_flags() -> set[str]:
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("flags"):
                return set(line.split(":", 1)[1].split())
    except OSError:
        pass
    return set()


def cpu_model() -> str:
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine()


def machine_signature(device: str) -> str:
    """What a speed measurement is valid for: the processor (or GPU) and the threads it ran on."""
    import torch

    if device.startswith("cuda"):
        return f"cuda {torch.cuda.get_device_name(0)}"
    return f"cpu {cpu_model()}, {torch.get_num_threads()} threads"


def native_bf16(device: str) -> bool:
    import torch

    if device.startswith("cuda"):
        return bool(torch.cuda.is_available() and torch.cuda.is_bf16_supported())
    return bool({"amx_bf16", "avx512_bf16"} & cpu_flags())


def unsupported_reason(runtime: str, device: str) -> str | None:
    """Why ``runtime`` cannot run on ``device`` (None when it can)."""
    if runtime == "bf16" and not native_bf16(device):
        return f"the {device} has no native bfloat16 (needs AMX or AVX-512 BF16 on a CPU); it would be emulated"
    if runtime in ONNX_FILES and not device.startswith("cpu"):
        return "the ONNX runtimes run on the CPU only (onnxruntime is the CPU build)"
    return None


# ---------------------------------------------------------------------------------------- the manifest


def read_manifest(encoder_dir: str | Path) -> dict[str, Any]:
    path = Path(encoder_dir) / RUNTIME_DIR / MANIFEST
    return json.loads(path.read_text()) if path.exists() else {"runtimes": {}}


def write_manifest(encoder_dir: str | Path, manifest: dict[str, Any]) -> None:
    path = Path(encoder_dir) / RUNTIME_DIR / MANIFEST
    path.parent.mkdir(exist_ok=True)
    path.write_text(json.dumps(manifest, indent=2, sort_keys=True))


def serving_rate(rates: dict[str, float]) -> float:
    """One number for a runtime's speed when it serves: the harmonic mean of its rates at batch 1 (a quiet
    service) and batch 16 (a busy one: the runner's forward passes), i.e. time per sentence weighed
    equally between the two. ONNX Runtime is ~2x PyTorch at batch 1 here and level at 16."""
    low, high = float(rates.get("1") or 0), float(rates.get("16") or 0)
    return 2 * low * high / (low + high) if low and high else max(low, high)


def choose(requested: str, encoder_dir: str | Path, device: str) -> tuple[str, str]:
    """The runtime to load and why. ``requested`` is ``auto`` or a runtime name (serving.yaml)."""
    if requested not in REQUESTABLE:
        raise RuntimeUnavailable(f"unknown runtime {requested!r}; choose one of {list(REQUESTABLE)}")
    measured = read_manifest(encoder_dir)["runtimes"]
    if requested != "auto":
        reason = unsupported_reason(requested, device)
        if reason:
            raise RuntimeUnavailable(f"runtime {requested!r} cannot serve here: {reason}")
        if requested in ONNX_FILES and not (Path(encoder_dir) / RUNTIME_DIR / ONNX_FILES[requested]).exists():
            raise RuntimeUnavailable(
                f"runtime {requested!r} needs {RUNTIME_DIR}/{ONNX_FILES[requested]} in {encoder_dir}, which this "
                "model version lacks; make a version that has it with: python -m train.export_runtimes"
            )
        return requested, "asked for by name"
    if not measured:
        return "fp32", "this model version has no measured runtimes (python -m train.export_runtimes adds them)"
    candidates = [
        name
        for name, entry in measured.items()
        if name in RUNTIMES
        and entry.get("quality_ok")
        and unsupported_reason(name, device) is None
        and (name not in ONNX_FILES or (Path(encoder_dir) / RUNTIME_DIR / ONNX_FILES[name]).exists())
    ]
    if not candidates:
        return "fp32", "no other runtime passed its quality check for this model"
    here = machine_signature(device)
    timed = [n for n in candidates if measured[n].get("speed", {}).get("machine") == here]
    if timed:
        best = max(timed, key=lambda n: serving_rate(measured[n]["speed"]["sentences_per_s"]))
        rate = serving_rate(measured[best]["speed"]["sentences_per_s"])
        return best, f"fastest measured on this machine ({rate:.0f} sentences/s at batch 1 and 16) within quality"
    kind = "cuda" if device.startswith("cuda") else "cpu"
    best = next(n for n in STATIC_PREFERENCE[kind] if n in candidates or n == "fp32")
    return best, f"not measured on this machine ({here}); preferred for a {kind} among those within quality"


# ------------------------------------------------------------------------------------------ execution


class OnnxEncoder:
    """An exported encoder graph in ONNX Runtime: token ids in, unit-length sentence embeddings out."""

    def __init__(self, path: Path, threads: int) -> None:
        import onnxruntime as ort

        options = ort.SessionOptions()
        options.intra_op_num_threads = threads
        options.inter_op_num_threads = 1
        options.add_session_config_entry("session.intra_op.allow_spinning", ORT_SPIN)
        options.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
        self.session = ort.InferenceSession(str(path), options, providers=["CPUExecutionProvider"])

    def __call__(self, batch: dict[str, np.ndarray]) -> np.ndarray:
        feeds = {name: np.ascontiguousarray(batch[name], dtype=np.int64) for name in INPUT_NAMES}
        return np.asarray(self.session.run(None, feeds)[0], dtype=np.float32)


def onnx_encoder(runtime: str, encoder_dir: str | Path, threads: int) -> OnnxEncoder:
    return OnnxEncoder(Path(encoder_dir) / RUNTIME_DIR / ONNX_FILES[runtime], threads)
