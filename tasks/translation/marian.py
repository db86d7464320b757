"""A PyTorch implementation of the Firefox Translations "tiny" Marian models (int8 weights, SSRU decoder).

One direction is a folder with Marian's binary model (``model.*.intgemm.alphas.bin``), the SentencePiece
vocabulary (``vocab.*.spm``) and the word shortlist (``lex.50.50.*.s2t.bin``). The architecture, from the
model's own ``special:model.yml``: a 6-layer transformer encoder (post-norm, 8 heads, FFN 1536 with relu),
a 2-layer decoder whose self-attention is a simpler SSRU recurrence, cross-attention on the encoder,
tied embeddings (the output layer is the embedding matrix transposed plus a bias), greedy search.

Weights are stored as int8 with one scale per matrix (``q / quantMult``); they are dequantised once, at
load, to float (bfloat16/float16 on request). Marian itself would also quantise the activations to int8
(``gemm-precision: int8shiftAlphaAll``); the reference engine this is checked against computes with float
activations, and so does this code, which is why the two agree token for token (see the task's README
section and tests/test_translation.py for the parity measurement).

A whole batch is decoded at once: sources padded and masked, one decoder step for every unfinished
sentence at a time, each sentence's own shortlist applied as a mask over the full vocabulary, so a
sentence's translation does not depend on what else shares its batch.
"""

from __future__ import annotations

import math
import struct
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np

if TYPE_CHECKING:
    import torch

EOS, UNK = 0, 1
DIM, HEADS, ENC_LAYERS, DEC_LAYERS = 256, 8, 6, 2
MAX_LENGTH_FACTOR = 2.5  # Marian's max-length-factor: at most 2.5 target tokens per source token
SHORTLIST_MAGIC = 0xF11A48D5013417F5
SHORTLIST_FIRST = 50  # the 50 most frequent target words are always candidates
INT8_MATRIX, FLOAT32, INT8 = 0x4101, 0x0404, 0x0101


@dataclass(frozen=True)
class DirectionFiles:
    model: Path
    vocab: Path
    shortlist: Path

    @classmethod
    def find(cls, folder: str | Path) -> DirectionFiles:
        folder = Path(folder)

        def one(pattern: str) -> Path:
            found = sorted(folder.glob(pattern))
            if len(found) != 1:
                raise FileNotFoundError(f"{folder}: expected one {pattern}, found {[p.name for p in found]}")
            return found[0]

        return cls(one("model.*.bin"), one("vocab.*.spm"), one("lex.*.s2t.bin"))


def read_marian_binary(path: Path) -> dict[str, np.ndarray]:
    """Every tensor of a Marian binary model, int8 matrices dequantised to float32 in their logical shape.

    Layout (marian-dev src/common/binary.cpp): u64 version, u64 count; per tensor 4 × u64 (name length,
    type, shape length, data length); the names; the shapes (int32); u64 padding and the padding; then each
    tensor's data. An int8 matrix of logical shape [in, out] is stored as [out, in] row-major int8 followed
    by one float32 ``quantMult`` (127 / max|W|); the embedding matrix is stored untransposed.
    """
    data = path.read_bytes()
    version, count = struct.unpack_from("<QQ", data, 0)
    if version != 1:
        raise ValueError(f"{path}: Marian binary version {version}, expected 1")
    offset = 16
    headers = [struct.unpack_from("<QQQQ", data, offset + 32 * i) for i in range(count)]
    offset += 32 * count
    names = []
    for name_len, *_ in headers:
        names.append(data[offset : offset + name_len - 1].decode())
        offset += name_len
    shapes = []
    for _, _, shape_len, _ in headers:
        shapes.append(struct.unpack_from(f"<{shape_len}i", data, offset))
        offset += 4 * shape_len
    (padding,) = struct.unpack_from("<Q", data, offset)
    offset += 8 + padding
    tensors: dict[str, np.ndarray] = {}
    for name, (_, kind, _, data_len), shape in zip(names, headers, shapes, strict=True):
        blob = data[offset : offset + data_len]
        offset += data_len
        size = int(np.prod(shape))
        if kind == INT8_MATRIX:
            q = np.frombuffer(blob, dtype=np.int8, count=size).astype(np.float32)
            (scale,) = struct.unpack_from("<f", blob, size)
            rows, cols = shape
            if name == "Wemb":
                tensors[name] = (q.reshape(rows, cols) / scale).astype(np.float32)
            else:
                tensors[name] = (q.reshape(cols, rows).T / scale).astype(np.float32)
        elif kind == FLOAT32:
            tensors[name] = np.frombuffer(blob, dtype=np.float32, count=size).reshape(shape).copy()
        elif kind == INT8 and name.startswith("special:"):
            continue  # the model's yaml configuration
        else:
            raise ValueError(f"{path}: tensor {name} has type {kind:#x}, which this reader does not know")
    return tensors


class Shortlist:
    """Marian's lexical shortlist: per source word, the target words worth scoring (data/shortlist.h)."""

    def __init__(self, path: Path, vocab_size: int) -> None:
        data = path.read_bytes()
        magic, _checksum, first, best, offsets_size, lists_size = struct.unpack_from("<6Q", data, 0)
        if magic != SHORTLIST_MAGIC:
            raise ValueError(f"{path}: not a binary Marian shortlist")
        self.first = int(first)
        self.offsets = np.frombuffer(data, dtype=np.uint64, count=offsets_size, offset=48).astype(np.int64)
        self.lists = np.frombuffer(data, dtype=np.uint32, count=lists_size, offset=48 + 8 * offsets_size)
        self.vocab_size = vocab_size

    def candidates(self, source_ids: Sequence[int]) -> np.ndarray:
        """Sorted target ids to score for one source sentence (marian-dev src/data/shortlist.cpp,
        ``BinaryShortlistGenerator::generate``): the first ``first`` ids and each source word's list,
        padded to a multiple of 8 with the next unchosen ids from ``first`` up. Marian would also add the
        source words themselves when it treats the vocabulary as shared; the reference engine does not
        (with them, 1 of 500 test sentences decoded differently; without, none)."""
        chosen = set(range(self.first))
        for s in source_ids:
            if s + 1 < len(self.offsets):
                chosen.update(self.lists[self.offsets[s] : self.offsets[s + 1]].tolist())
        nxt = self.first
        while len(chosen) % 8 and nxt < self.vocab_size:
            if nxt not in chosen:
                chosen.add(nxt)
            nxt += 1
        return np.array(sorted(chosen), dtype=np.int64)


def sinusoid(positions: torch.Tensor, dim: int = DIM) -> torch.Tensor:
    """Marian's positional signal: [sin(p·e^(-i·ln(1e4)/(d/2-1))) for i < d/2, then cos(...)]."""
    import torch

    half = dim // 2
    rates = torch.exp(torch.arange(half, dtype=torch.float32) * -(math.log(1e4) / (half - 1)))
    angles = positions.float().unsqueeze(-1) * rates.to(positions.device)
    return torch.cat([torch.sin(angles), torch.cos(angles)], dim=-1)


class MarianTiny:
    """One translation direction: ``translate(texts)`` in, translations out, in input order."""

    def __init__(self, folder: str | Path, device: str = "cpu", dtype: str = "float32") -> None:
        import sentencepiece
        import torch

        files = DirectionFiles.find(folder)
        self.device = torch.device(device)
        self.dtype = {"float32": torch.float32, "bfloat16": torch.bfloat16, "float16": torch.float16}[dtype]
        self.sp = sentencepiece.SentencePieceProcessor(model_file=str(files.vocab))
        tensors = read_marian_binary(files.model)
        self.w = {k: torch.from_numpy(v).to(self.device, self.dtype) for k, v in tensors.items()}
        self.vocab_size = int(self.w["Wemb"].shape[0])
        self.shortlist = Shortlist(files.shortlist, self.vocab_size)

    # ---- building blocks ---------------------------------------------------------------------------

    def _linear(self, x: torch.Tensor, prefix: str, bias: str | None) -> torch.Tensor:
        y = x @ self.w[prefix]
        return y + self.w[bias] if bias else y

    def _norm(self, x: torch.Tensor, prefix: str) -> torch.Tensor:
        mean = x.mean(-1, keepdim=True)
        var = ((x - mean) ** 2).mean(-1, keepdim=True)
        return self.w[f"{prefix}_ln_scale"] * (x - mean) * (var + 1e-6).rsqrt() + self.w[f"{prefix}_ln_bias"]

    def _attention(self, q_in: torch.Tensor, kv_in: torch.Tensor, mask: torch.Tensor, prefix: str) -> torch.Tensor:
        """Multi-head attention; ``mask`` is [batch, 1, 1, keys], True where a key is padding."""
        import torch

        b, tq, _ = q_in.shape
        tk = kv_in.shape[1]
        head = DIM // HEADS

        def split(x: torch.Tensor, t: int) -> torch.Tensor:
            return x.view(b, t, HEADS, head).transpose(1, 2)

        q = split(self._linear(q_in, f"{prefix}_Wq", f"{prefix}_bq"), tq)
        k = split(self._linear(kv_in, f"{prefix}_Wk", f"{prefix}_bk"), tk)
        v = split(self._linear(kv_in, f"{prefix}_Wv", f"{prefix}_bv"), tk)
        scores = (q @ k.transpose(-1, -2)) / math.sqrt(head)
        scores = scores.masked_fill(mask, float("-inf"))
        out = (torch.softmax(scores.float(), dim=-1).to(q.dtype) @ v).transpose(1, 2).reshape(b, tq, DIM)
        return self._linear(out, f"{prefix}_Wo", f"{prefix}_bo")

    def _ffn(self, x: torch.Tensor, prefix: str) -> torch.Tensor:
        import torch

        hidden = torch.relu(self._linear(x, f"{prefix}_W1", f"{prefix}_b1"))
        return self._linear(hidden, f"{prefix}_W2", f"{prefix}_b2")

    def _embed(self, ids: torch.Tensor, positions: torch.Tensor) -> torch.Tensor:
        return self.w["Wemb"][ids] * math.sqrt(DIM) + sinusoid(positions).to(self.dtype)

    # ---- the model ---------------------------------------------------------------------------------

    def encode(self, ids: torch.Tensor, pad: torch.Tensor) -> torch.Tensor:
        import torch

        positions = torch.arange(ids.shape[1], device=self.device).expand_as(ids)
        x = self._embed(ids, positions)
        mask = pad[:, None, None, :]
        for layer in range(1, ENC_LAYERS + 1):
            p = f"encoder_l{layer}"
            x = self._norm(x + self._attention(x, x, mask, f"{p}_self"), f"{p}_self_Wo")
            x = self._norm(x + self._ffn(x, f"{p}_ffn"), f"{p}_ffn_ffn")
        return x

    def decode_step(
        self, x: torch.Tensor, states: list[torch.Tensor], memory: torch.Tensor, mask: torch.Tensor
    ) -> tuple[torch.Tensor, list[torch.Tensor]]:
        """One target position for every sentence: ``x`` [batch, 1, dim] → logits [batch, vocab]."""
        import torch

        new_states = []
        for layer in range(1, DEC_LAYERS + 1):
            p = f"decoder_l{layer}"
            # SSRU: c_t = f⊙c_{t-1} + (1-f)⊙(x W); h_t = relu(c_t); then residual and layer norm
            forget = torch.sigmoid(self._linear(x, f"{p}_rnn_Wf", f"{p}_rnn_bf"))
            cell = forget * states[layer - 1] + (1 - forget) * self._linear(x, f"{p}_rnn_W", None)
            new_states.append(cell)
            x = self._norm(torch.relu(cell) + x, f"{p}_rnn_ffn")
            x = self._norm(x + self._attention(x, memory, mask, f"{p}_context"), f"{p}_context_Wo")
            x = self._norm(x + self._ffn(x, f"{p}_ffn"), f"{p}_ffn_ffn")
        logits = x[:, 0] @ self.w["Wemb"].T + self.w["decoder_ff_logit_out_b"]
        return logits.float(), new_states

    # ---- search ------------------------------------------------------------------------------------

    def token_ids(self, texts: Sequence[str]) -> list[list[int]]:
        return [list(self.sp.encode(t)) + [EOS] for t in texts]

    def translate(self, texts: Sequence[str]) -> list[str]:
        """Greedy translations of ``texts``, decoded together, in input order."""
        import torch

        if not texts:
            return []
        sources = self.token_ids(texts)
        b, longest = len(sources), max(len(s) for s in sources)
        ids = torch.full((b, longest), EOS, dtype=torch.long)
        pad = torch.ones((b, longest), dtype=torch.bool)
        allowed = torch.zeros((b, self.vocab_size), dtype=torch.bool)
        for i, s in enumerate(sources):
            ids[i, : len(s)] = torch.tensor(s)
            pad[i, : len(s)] = False
            allowed[i, torch.from_numpy(self.shortlist.candidates(s))] = True
        allowed[:, UNK] = False  # Marian never emits <unk>
        ids, pad, allowed = ids.to(self.device), pad.to(self.device), allowed.to(self.device)
        limits = torch.tensor([int(MAX_LENGTH_FACTOR * len(s)) for s in sources], device=self.device)
        outputs: list[list[int]] = [[] for _ in range(b)]
        with torch.inference_mode():
            memory = self.encode(ids, pad)
            mask = pad[:, None, None, :]
            states = [torch.zeros((b, 1, DIM), device=self.device, dtype=self.dtype) for _ in range(DEC_LAYERS)]
            x = torch.zeros((b, 1, DIM), device=self.device, dtype=self.dtype) + sinusoid(
                torch.zeros((b, 1), device=self.device)
            ).to(self.dtype)
            alive = torch.arange(b, device=self.device)  # rows still decoding, as indices into the batch
            step = 0
            while alive.numel():
                logits, states = self.decode_step(x, states, memory, mask)
                logits = logits.masked_fill(~allowed, float("-inf"))
                best = logits.argmax(-1)
                step += 1
                done = (best == EOS) | (step >= limits)
                for row, token in zip(alive.tolist(), best.tolist(), strict=True):
                    if token != EOS:
                        outputs[row].append(token)
                keep = ~done
                if not bool(keep.any()):
                    break
                alive, best = alive[keep], best[keep]
                memory, mask, allowed, limits = memory[keep], mask[keep], allowed[keep], limits[keep]
                states = [s[keep] for s in states]
                x = self._embed(best[:, None], torch.full((alive.numel(), 1), step, device=self.device))
        return [self.sp.decode(o) for o in outputs]
