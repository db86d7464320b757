"""CTranslate2's side of the Whisper import: its ``model.bin`` read into numpy, and its own decoder as the reference.

``train/ctranslate2_whisper.py`` maps what :func:`read_model_bin` returns onto transformers' Whisper;
:func:`ctranslate2_greedy` is what the importer and the tests compare that rebuilt model against.

The file layout, as :func:`read_model_bin` reads it (little-endian): binary version (≥ 5), spec name and
revision, the number of variables, then per variable its name, rank, shape, dtype code, byte count and
bytes; then aliases (name → variable), and nothing after them.
"""

from __future__ import annotations

import json
import os
import struct
import subprocess
import sys
import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import Any, BinaryIO

import numpy as np

# CTranslate2's dtype codes (include/ctranslate2/types.h).
DTYPES = {0: np.float32, 1: np.int8, 2: np.int16, 3: np.int32, 4: np.float16, 5: None}  # 5: bfloat16


class ConversionError(ValueError):
    """The file is not the CTranslate2 Whisper model this code understands."""


@dataclass(frozen=True)
class CT2Model:
    spec: str
    revision: int
    variables: dict[str, np.ndarray]
    aliases: dict[str, str]


def _read(fh: BinaryIO, fmt: str) -> Any:
    size = struct.calcsize("<" + fmt)
    data = fh.read(size)
    if len(data) != size:
        raise ConversionError("model.bin ends early")
    return struct.unpack("<" + fmt, data)[0]


def _string(fh: BinaryIO) -> str:
    length = _read(fh, "H")  # includes the trailing NUL
    return fh.read(length)[:-1].decode("utf-8")


def read_model_bin(path: str | Path) -> CT2Model:
    """The variables of a CTranslate2 ``model.bin`` as numpy arrays, by name."""
    variables: dict[str, np.ndarray] = {}
    with open(path, "rb") as fh:
        version = _read(fh, "I")
        if version < 5:  # older files have no spec name/revision; no Whisper conversion is that old
            raise ConversionError(f"{path}: CTranslate2 binary version {version} is not supported")
        spec = _string(fh)
        revision = _read(fh, "I")
        for _ in range(_read(fh, "I")):
            name = _string(fh)
            rank = _read(fh, "B")
            shape = tuple(_read(fh, "I") for _ in range(rank))
            dtype_code = _read(fh, "B")
            nbytes = _read(fh, "I")
            data = fh.read(nbytes)
            if len(data) != nbytes:
                raise ConversionError(f"{path}: {name} is truncated")
            dtype = DTYPES.get(dtype_code)
            if dtype is None:
                raise ConversionError(f"{path}: {name} has dtype code {dtype_code}, which this reader does not handle")
            variables[name] = np.frombuffer(data, dtype=dtype).reshape(shape)
        aliases = {}
        for _ in range(_read(fh, "I")):
            alias = _string(fh)
            aliases[alias] = _string(fh)
        if fh.read(1):
            raise ConversionError(f"{path}: bytes left after the aliases: not a file this reader understands")
    if spec != "WhisperSpec":
        raise ConversionError(f"{path}: spec {spec!r} is not WhisperSpec")
    return CT2Model(spec, revision, variables, aliases)


def _ctranslate2_greedy(folder: str, features: np.ndarray, prompt: list[str]) -> list[int]:
    import ctranslate2

    model = ctranslate2.models.Whisper(folder, device="cpu", compute_type="float32", intra_threads=1)
    result = model.generate(ctranslate2.StorageView.from_array(features), [prompt], beam_size=1, max_length=448)
    return list(result[0].sequences_ids[0])


def ctranslate2_greedy(folder: str | Path, features: np.ndarray, prompt: list[str]) -> list[int]:
    """Token ids CTranslate2 itself decodes (greedy, float32) from log-mel ``features`` of shape (1, mels, 3000).

    It runs in a child process on purpose: CTranslate2 brings its own OpenMP runtime, and once it has run in
    a process where PyTorch already had, PyTorch's generation there became 40x slower (tiny.en: 0.9 s → 42 s
    per clip, measured here), which would slow down everything the importer and the tests do afterwards.
    """
    root = Path(__file__).resolve().parent.parent
    code = (
        "import json, sys; import numpy as np; from train.ctranslate2_native import _ctranslate2_greedy; "
        "print(json.dumps(_ctranslate2_greedy(sys.argv[1], np.load(sys.argv[2]), json.loads(sys.argv[3]))))"
    )
    with tempfile.TemporaryDirectory(prefix="ct2-features-") as tmp:
        path = Path(tmp) / "features.npy"
        np.save(path, np.ascontiguousarray(features, np.float32))
        done = subprocess.run(
            [sys.executable, "-c", code, str(folder), str(path), json.dumps(prompt)],
            capture_output=True,
            text=True,
            cwd=root,
            env={**os.environ, "PYTHONPATH": os.pathsep.join(filter(None, [str(root), os.environ.get("PYTHONPATH")]))},
            check=False,
        )
    if done.returncode != 0:
        raise RuntimeError(f"ctranslate2 failed (exit {done.returncode}): {done.stderr.strip()[-1000:]}")
    return [int(i) for i in json.loads(done.stdout.strip().splitlines()[-1])]
