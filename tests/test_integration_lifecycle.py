"""A/B routing, shadows, metrics and rotating prediction records on a real `bentoml serve`."""

from __future__ import annotations

import collections
import glob
import json
import os
import re
from pathlib import Path

import httpx
import pytest

from bundle import samples
from tests.conftest import ROOT, free_port
from tests.serving import running_server

pytestmark = pytest.mark.integration


def metric(text: str, name: str, **labels: str) -> float:
    total = 0.0
    for line in text.splitlines():
        if not line.startswith(name + "{"):
            continue
        found = dict(re.findall(r'(\w+)="([^"]*)"', line.split("}")[0]))
        if all(found.get(k) == v for k, v in labels.items()):
            total += float(line.rsplit(" ", 1)[1])
    return total


@pytest.fixture(scope="module")
def ab_server(tiny_models, tmp_path_factory):
    logs = tmp_path_factory.mktemp("monitoring")
    rotating = logs / "logging.yaml"
    # The project's monitor logging config with a tiny size limit, so rotation happens during the test.
    text = (ROOT / "monitoring-logging.yaml").read_text().replace("maxBytes: 10000000", "maxBytes: 20000")
    rotating.write_text(text)
    env = {
        "BUNDLE_SERVING_CONFIG": str(ROOT / "examples" / "serving-ab-shadow.yaml"),
        "BENTOML_CONFIG_OPTIONS": (
            f"services.monitoring.options.log_path={logs} services.monitoring.options.log_config_file={rotating}"
        ),
    }
    with running_server(free_port(), env=env) as url:
        yield url, logs


def test_ab_split_stickiness_shadows_and_records(ab_server, tiny_models):
    url, logs = ab_server
    n = 300
    with httpx.Client(base_url=url, timeout=60) as client:
        answers = []
        for i in range(n):
            r = client.post("/sentiment", json={"text": f"{samples.POSITIVE} ({i})", "user": f"user-{i}"})
            assert r.status_code == 200, r.text
            answers.append(r.json())
        again = [
            client.post("/sentiment", json={"text": samples.NEGATIVE, "user": f"user-{i}"}).json()["family"]
            for i in range(50)
        ]
        metrics = client.get("/metrics").text

    families = collections.Counter(a["family"] for a in answers)
    assert set(families) == {"transformer", "logreg"}
    assert 0.10 * n < families["logreg"] < 0.30 * n  # 20 % arm, generous bounds for 300 draws
    assert again == [a["family"] for a in answers[:50]]  # sticky per user
    assert all(a["policy"] == "ab" for a in answers)

    assert metric(metrics, "bundle_routing_decisions_total", policy="ab", arm="logreg") >= families["logreg"]
    assert metric(metrics, "bundle_predictions_total", family="transformer", role="primary") >= families["transformer"]
    shadow = metric(metrics, "bundle_shadow_results_total", shadow="naive_bayes")
    assert shadow > 0.9 * n  # every routed request was copied (some may still be in flight)

    files = glob.glob(os.path.join(logs, "bundle_predictions", "data", "*"))
    assert any(f.endswith(".log.1") for f in files), files  # rotated by size
    records = [json.loads(line) for f in files for line in Path(f).read_text().splitlines()]
    roles = collections.Counter(r["role"] for r in records)
    assert roles["primary"] > 0 and roles["shadow"] > 0
    assert {r["arm"] for r in records if r["role"] == "primary"} >= {"transformer", "logreg"}
