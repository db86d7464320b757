"""Rebuild a Whisper model stored in CTranslate2's format as a transformers ``WhisperForConditionalGeneration``.

The only Whisper weights that reach this project offline are CTranslate2 conversions (``model.bin`` plus
``config.json``, ``tokenizer.json`` and ``vocabulary.txt``; read by ``train/ctranslate2_native.py``). The service runs
transformers (one framework for every task, fp16 on a GPU, batched ``generate``), so the weights are read
here into named numpy arrays and renamed, split and checked into the layout transformers expects:

- CTranslate2 fuses attention projections (q, k, v stacked for self-attention; k, v for cross-attention)
  into one matrix; they are split, and the k bias that Whisper never had (CTranslate2 stores zeros) dropped;
- every size (layers, width, heads, mel bins, vocabulary) comes from the tensors themselves, not from a
  table of known checkpoints, so a file that is not what its name says fails loudly instead of loading half;
- the generation settings (suppressed tokens, language and task tokens, start token) come from the
  package's ``config.json`` and ``tokenizer.json`` rather than from remembered constants.

Every variable of the file is used exactly once and every parameter of the model is filled exactly once:
:func:`build_model` asserts it.
"""

from __future__ import annotations

import json
import logging
import re
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from train.ctranslate2_native import ConversionError, read_model_bin

if TYPE_CHECKING:
    from transformers import WhisperForConditionalGeneration, WhisperProcessor

logger = logging.getLogger("train.ctranslate2_whisper")

MULTILINGUAL_VOCAB = 51865  # multilingual Whisper has one token more (<|yue|> aside) than the English-only one
MAX_TARGET_POSITIONS = 448
TASKS = ("transcribe", "translate")
# Model-level flags of the spec that only say "this is standard Whisper"; checked, then not mapped.
SPEC_FLAGS = ("activation", "alibi", "alignment_heads", "alignment_layer", "pre_norm", "scale_embeddings")


def _scalar(variables: dict[str, np.ndarray], name: str) -> int:
    return int(np.asarray(variables[name]).reshape(-1)[0])


def _layers(variables: dict[str, np.ndarray], side: str) -> int:
    found = {int(m.group(1)) for n in variables if (m := re.match(rf"{side}/layer_(\d+)/", n))}
    if found != set(range(len(found))):
        raise ConversionError(f"{side} layers are not numbered 0..n-1: {sorted(found)}")
    return len(found)


def sizes(variables: dict[str, np.ndarray]) -> dict[str, int]:
    """The architecture, read from the tensors."""
    vocab, d_model = variables["decoder/embeddings/weight"].shape
    return {
        "vocab_size": int(vocab),
        "d_model": int(d_model),
        "encoder_layers": _layers(variables, "encoder"),
        "decoder_layers": _layers(variables, "decoder"),
        "encoder_attention_heads": _scalar(variables, "encoder/num_heads"),
        "decoder_attention_heads": _scalar(variables, "decoder/num_heads"),
        "encoder_ffn_dim": int(variables["encoder/layer_0/ffn/linear_0/weight"].shape[0]),
        "decoder_ffn_dim": int(variables["decoder/layer_0/ffn/linear_0/weight"].shape[0]),
        "num_mel_bins": int(variables["encoder/conv1/weight"].shape[1]),
        "max_source_positions": int(variables["encoder/position_encodings/encodings"].shape[0]),
        "max_target_positions": int(variables["decoder/position_encodings/encodings"].shape[0]),
    }


def state_dict_from(variables: dict[str, np.ndarray], d_model: int) -> tuple[dict[str, np.ndarray], set[str]]:
    """transformers' parameter names → float32 arrays, and the set of CTranslate2 names that were used."""
    used: set[str] = set()
    out: dict[str, np.ndarray] = {}

    def take(name: str) -> np.ndarray:
        if name not in variables:
            raise ConversionError(f"model.bin has no variable {name}")
        used.add(name)
        return variables[name].astype(np.float32)

    def put(key: str, value: np.ndarray) -> None:
        if key in out:
            raise ConversionError(f"{key} mapped twice")
        out[key] = np.ascontiguousarray(value)

    def linear(source: str, target: str) -> None:
        put(f"{target}.weight", take(f"{source}/weight"))
        put(f"{target}.bias", take(f"{source}/bias"))

    def norm(source: str, target: str) -> None:
        put(f"{target}.weight", take(f"{source}/gamma"))
        put(f"{target}.bias", take(f"{source}/beta"))

    def split(source: str, target: str, parts: tuple[str, ...]) -> None:
        weight, bias = take(f"{source}/weight"), take(f"{source}/bias")
        if weight.shape[0] != len(parts) * d_model:
            raise ConversionError(f"{source}: {weight.shape[0]} rows, expected {len(parts)}×{d_model}")
        for i, part in enumerate(parts):
            rows = slice(i * d_model, (i + 1) * d_model)
            put(f"{target}.{part}_proj.weight", weight[rows])
            if part == "k":
                # Whisper's key projections have no bias; the converter wrote zeros. Anything else would be
                # silently lost, so check rather than assume.
                if np.abs(bias[rows]).max() > 0:
                    raise ConversionError(f"{source}: the key bias is not zero")
            else:
                put(f"{target}.{part}_proj.bias", bias[rows])

    for side in ("encoder", "decoder"):
        for i in range(_layers(variables, side)):
            src, dst = f"{side}/layer_{i}", f"model.{side}.layers.{i}"
            split(f"{src}/self_attention/linear_0", f"{dst}.self_attn", ("q", "k", "v"))
            linear(f"{src}/self_attention/linear_1", f"{dst}.self_attn.out_proj")
            norm(f"{src}/self_attention/layer_norm", f"{dst}.self_attn_layer_norm")
            linear(f"{src}/ffn/linear_0", f"{dst}.fc1")
            linear(f"{src}/ffn/linear_1", f"{dst}.fc2")
            norm(f"{src}/ffn/layer_norm", f"{dst}.final_layer_norm")
            if side == "decoder":
                linear(f"{src}/attention/linear_0", f"{dst}.encoder_attn.q_proj")
                split(f"{src}/attention/linear_1", f"{dst}.encoder_attn", ("k", "v"))
                linear(f"{src}/attention/linear_2", f"{dst}.encoder_attn.out_proj")
                norm(f"{src}/attention/layer_norm", f"{dst}.encoder_attn_layer_norm")
        norm(f"{side}/layer_norm", f"model.{side}.layer_norm")
        put(f"model.{side}.embed_positions.weight", take(f"{side}/position_encodings/encodings"))
    linear("encoder/conv1", "model.encoder.conv1")
    linear("encoder/conv2", "model.encoder.conv2")
    put("model.decoder.embed_tokens.weight", take("decoder/embeddings/weight"))
    # Scalars that transformers keeps in the config, not in tensors.
    used.update({"encoder/num_heads", "decoder/num_heads"})
    return out, used


def _check_spec_flags(variables: dict[str, np.ndarray]) -> set[str]:
    """The spec's model-level flags, checked against what transformers' Whisper does (pre-norm, GELU, no
    ALiBi, unscaled embeddings, positions from zero); returns their names."""
    flags = {n for n in variables if n.rsplit("/", 1)[-1] in SPEC_FLAGS or n.endswith("start_from_zero_embedding")}
    for name in flags:
        value = _scalar(variables, name)
        leaf = name.rsplit("/", 1)[-1]
        expected = {"pre_norm": 1, "alibi": 0, "scale_embeddings": 0, "start_from_zero_embedding": 0}.get(leaf)
        if expected is not None and value != expected:
            raise ConversionError(f"{name} = {value}: transformers' Whisper would need {expected}")
    return flags


def special_tokens(tokenizer_json: dict[str, Any]) -> dict[str, int]:
    """Added tokens of the packaged tokenizer by content (``<|startoftranscript|>`` → id, …)."""
    return {t["content"]: int(t["id"]) for t in tokenizer_json["added_tokens"]}


def generation_settings(folder: Path, vocab_size: int) -> dict[str, Any]:
    """Whisper's generation settings from the package's ``config.json`` and ``tokenizer.json``."""
    ct2_config = json.loads((folder / "config.json").read_text())
    specials = special_tokens(json.loads((folder / "tokenizer.json").read_text(encoding="utf-8")))
    multilingual = vocab_size >= MULTILINGUAL_VOCAB
    eot = specials["<|endoftext|>"]
    settings: dict[str, Any] = {
        "is_multilingual": multilingual,
        "decoder_start_token_id": specials["<|startoftranscript|>"],
        "bos_token_id": eot,
        "eos_token_id": eot,
        "pad_token_id": eot,
        "no_timestamps_token_id": specials["<|notimestamps|>"],
        "prev_sot_token_id": specials["<|startofprev|>"],
        "suppress_tokens": [int(i) for i in ct2_config["suppress_ids"]],
        "begin_suppress_tokens": [int(i) for i in ct2_config["suppress_ids_begin"]],
        "max_length": MAX_TARGET_POSITIONS,
        "max_initial_timestamp_index": 50,
        "return_timestamps": False,
        "alignment_heads": [[int(a), int(b)] for a, b in ct2_config.get("alignment_heads", [])],
    }
    if multilingual:
        by_id = {i: c for c, i in specials.items()}
        settings["lang_to_id"] = {by_id[i]: int(i) for i in ct2_config["lang_ids"]}
        settings["task_to_id"] = {task: specials[f"<|{task}|>"] for task in TASKS}
    # An English-only model gets neither table on purpose: transformers' generate() treats the presence of
    # ``lang_to_id`` as "detect the language", which would put a language token into tiny.en's prompt.
    return settings


def build_model(folder: str | Path) -> tuple[WhisperForConditionalGeneration, dict[str, Any]]:
    """The transformers model (float32) from a CTranslate2 Whisper folder, and a report of the mapping."""
    import torch
    from transformers import GenerationConfig, WhisperConfig, WhisperForConditionalGeneration

    folder = Path(folder)
    ct2 = read_model_bin(folder / "model.bin")
    variables = ct2.variables
    size: dict[str, Any] = sizes(variables)
    gen = generation_settings(folder, size["vocab_size"])
    config = WhisperConfig(
        **size,
        activation_function="gelu",
        scale_embedding=False,
        decoder_start_token_id=gen["decoder_start_token_id"],
        bos_token_id=gen["bos_token_id"],
        eos_token_id=gen["eos_token_id"],
        pad_token_id=gen["pad_token_id"],
        # suppress_tokens and begin_suppress_tokens live in the generation config only: transformers 5 warns
        # (and will refuse) when the model config carries generation settings too.
        suppress_tokens=None,
        begin_suppress_tokens=None,
        tie_word_embeddings=True,
        use_cache=True,
    )
    state, used = state_dict_from(variables, size["d_model"])
    used |= _check_spec_flags(variables)
    # decoder/projection/weight is an alias of the embeddings: the tied proj_out.
    if ct2.aliases.get("decoder/projection/weight") != "decoder/embeddings/weight":
        raise ConversionError(f"expected the output projection tied to the embeddings, aliases: {ct2.aliases}")
    unused = sorted(set(variables) - used)
    if unused:
        raise ConversionError(f"variables of model.bin not mapped: {unused}")

    with torch.device("meta"):  # no random initialisation of weights that are about to be replaced
        model = WhisperForConditionalGeneration(config)
    result = model.load_state_dict({k: torch.from_numpy(v) for k, v in state.items()}, strict=False, assign=True)
    missing = [k for k in result.missing_keys if k != "proj_out.weight"]  # tied, filled below
    if missing or result.unexpected_keys:
        raise ConversionError(f"missing keys {missing}, unexpected keys {result.unexpected_keys}")
    model.tie_weights()
    if model.proj_out.weight.data_ptr() != model.model.decoder.embed_tokens.weight.data_ptr():
        raise ConversionError("proj_out is not tied to the decoder embeddings")
    meta = [n for n, t in [*model.named_parameters(), *model.named_buffers()] if t.is_meta]
    if meta:
        raise ConversionError(f"parameters left without a value: {meta}")
    model.eval()

    generation_config = GenerationConfig(**gen)
    model.generation_config = generation_config
    report = {
        "spec": f"{ct2.spec} revision {ct2.revision}",
        "source_dtype": sorted({str(v.dtype) for v in variables.values() if v.ndim >= 2}),
        "variables": len(variables),
        "variables_mapped": len(used),
        "parameters": len(state) + 1,  # + the tied proj_out
        "missing_keys": [],
        "unexpected_keys": [],
        "sizes": size,
        "multilingual": gen["is_multilingual"],
    }
    return model, report


def build_processor(folder: str | Path, num_mel_bins: int, multilingual: bool) -> WhisperProcessor:
    """Feature extractor (mel bins from the model) and the packaged tokenizer with Whisper's special tokens."""
    from tokenizers import AddedToken

    # WhisperTokenizer is the fast (tokenizers-backed) tokenizer in transformers 5; WhisperTokenizerFast is an
    # alias of it that the type stubs do not declare.
    from transformers import WhisperFeatureExtractor, WhisperProcessor, WhisperTokenizer

    folder = Path(folder)
    tokenizer = WhisperTokenizer(
        tokenizer_file=str(folder / "tokenizer.json"),
        unk_token="<|endoftext|>",
        bos_token="<|endoftext|>",
        eos_token="<|endoftext|>",
        pad_token="<|endoftext|>",
        add_prefix_space=False,
        predict_timestamps=False,
    )
    # The packaged tokenizer stops at <|notimestamps|>; vocabulary.txt continues with the 1,501 timestamp
    # tokens. Adding them makes the tokenizer's size match the model's output layer (and decode timestamps).
    vocabulary = (folder / "vocabulary.txt").read_text(encoding="utf-8").splitlines()
    timestamps = vocabulary[len(tokenizer) :]
    if timestamps:
        if not all(t.startswith("<|") and t.endswith("|>") for t in timestamps):
            raise ConversionError("vocabulary.txt continues past the tokenizer with tokens that are not timestamps")
        tokenizer.add_tokens([AddedToken(t, lstrip=False, rstrip=False, normalized=False) for t in timestamps])
    if multilingual:
        tokenizer.set_prefix_tokens(language=None, task="transcribe", predict_timestamps=False)
    feature_extractor = WhisperFeatureExtractor(feature_size=num_mel_bins, sampling_rate=16000)
    return WhisperProcessor(feature_extractor=feature_extractor, tokenizer=tokenizer)


def convert(folder: str | Path, out: str | Path) -> dict[str, Any]:
    """Convert a CTranslate2 Whisper folder into a transformers folder (safetensors); returns the report."""
    model, report = build_model(folder)
    processor = build_processor(folder, report["sizes"]["num_mel_bins"], report["multilingual"])
    if len(processor.tokenizer) != report["sizes"]["vocab_size"]:
        raise ConversionError(
            f"tokenizer has {len(processor.tokenizer)} tokens, the model {report['sizes']['vocab_size']}"
        )
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    model.save_pretrained(out, safe_serialization=True)
    processor.save_pretrained(out)
    logger.info("converted %s → %s (%s)", folder, out, report["sizes"])
    return report
