"""Shared fixtures. Every test runs against a private, temporary Bento store.

BENTOML_HOME must be set before BentoML is imported anywhere, so it is set here, at import time of
the conftest, which pytest loads before any test module.
"""

from __future__ import annotations

import os
import shutil
import socket
import sys
import tempfile
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
FIXTURES = Path(__file__).resolve().parent / "fixtures"
TEST_BENTOML_HOME = tempfile.mkdtemp(prefix="sentiment-tests-bentoml-")
os.chdir(ROOT)  # relative paths in configuration.yaml (the monitor's log config) resolve from the root

os.environ["BENTOML_HOME"] = TEST_BENTOML_HOME
os.environ["BENTOML_DO_NOT_TRACK"] = "true"
os.environ["HF_HUB_OFFLINE"] = "1"
os.environ["TRANSFORMERS_OFFLINE"] = "1"
TEST_MONITORING_DIR = os.path.join(TEST_BENTOML_HOME, "monitoring")
# The project's real runtime configuration, with prediction records kept in the temporary folder.
os.environ["BENTOML_CONFIG"] = str(ROOT / "configuration.yaml")
os.environ["BENTOML_CONFIG_OPTIONS"] = f"services.monitoring.options.log_path={TEST_MONITORING_DIR}"
os.environ.pop("BUNDLE_SERVING_CONFIG", None)
os.environ.pop("SENTIMENT_SERVING_CONFIG", None)
sys.path.insert(0, str(ROOT))


def pytest_sessionfinish(session: pytest.Session, exitstatus: int) -> None:
    shutil.rmtree(TEST_BENTOML_HOME, ignore_errors=True)


@pytest.fixture(scope="session")
def tiny_data_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A data folder in the VADER layout whose four files hold the same 40 hand-written sentences."""
    from train import dataset

    folder = tmp_path_factory.mktemp("vader-tiny")
    for file_name in dataset.DOMAIN_FILES.values():
        shutil.copy(FIXTURES / "tiny_ground_truth.txt", folder / file_name)
    return folder


@pytest.fixture(scope="session")
def tiny_models(tiny_data_dir: Path) -> dict[str, str]:
    """Every served model, trained on the tiny fixture and saved under its real store name.

    serving.yaml's default ``latest`` versions then resolve to them, so the service under test is the
    real service with real (small) models.
    """
    from tasks.sentiment.pipelines.naive_bayes import NaiveBayesPipeline
    from tasks.sentiment.pipelines.tfidf_logreg import TfidfLogRegPipeline
    from tasks.sentiment.pipelines.transformer import TransformerPipeline
    from train import dataset
    from train.common import train_and_save
    from train.import_minilm import import_minilm

    encoder_tag = import_minilm(data_dir=tiny_data_dir)
    encoder_path = bentoml_model_path(encoder_tag)
    tags = {"embedding": encoder_tag}
    for family, name, make in [
        ("naive_bayes", "sentiment_nb", lambda seed: NaiveBayesPipeline(min_df=1)),
        ("logreg", "sentiment_logreg", lambda seed: TfidfLogRegPipeline(C=10.0, seed=seed)),
        # A few fine-tuning steps after a linear probe: a real transformer model in seconds.
        (
            "transformer",
            "sentiment_transformer",
            lambda seed: TransformerPipeline(
                encoder_path, encoder_tag=encoder_tag, batch_size=8, max_steps=3, seed=seed, device="cpu"
            ),
        ),
    ]:
        trained = train_and_save(store_name=name, make_pipeline=make, gate=0.5, data_dir=tiny_data_dir)
        tags[family] = trained.tag
    # VADER with the real lexicon, and the stack of it, TF-IDF and the tiny transformer above.
    from tasks.sentiment.pipelines.vader import VaderPipeline
    from train import stacked

    everywhere = {domain: 0.5 for domain in dataset.DOMAIN_FILES}
    tags["vader"] = train_and_save(
        store_name="sentiment_vader",
        make_pipeline=lambda seed: VaderPipeline(),
        gate=0.5,
        data_dir=tiny_data_dir,
        train_domains=tuple(dataset.DOMAIN_FILES),
        claims=everywhere,
        calibrate=False,  # as train.import_vader: VADER's fit() is its calibration
    ).tag
    tags["stacked"] = stacked.train_and_save(data_dir=tiny_data_dir, claims=everywhere)
    # The real translation models (17 MB each), without the quality measurement the import usually runs.
    from train.import_translation import import_translation

    for (source, target), tag in import_translation(parity_sentences=0).items():
        tags[f"marian_{source}_{target}"] = tag
    # The real audio models, converted and checked as `make serve` does, without the quality measurement.
    from train.import_basic_pitch import import_basic_pitch
    from train.import_whisper import import_whisper

    tags["whisper_tiny_en"] = import_whisper("tiny_en", quality=False)
    tags["whisper_base"] = import_whisper("base", quality=False)
    tags["basic_pitch"] = import_basic_pitch(quality=False)
    return tags


def bentoml_model_path(tag: str) -> str:
    import bentoml

    return bentoml.models.get(tag).path


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture(scope="session")
def service_client(tiny_models):
    """The entry service's ASGI app with its runners in process (one per test session: BentoML registers
    its metrics once per process)."""
    from starlette.testclient import TestClient

    from service import BundleService  # imported late: the runners check the store at import

    with TestClient(BundleService.to_asgi(), raise_server_exceptions=False) as c:
        yield c
