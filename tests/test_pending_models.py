"""A model that is still being made: the service starts without it, answers with the task's next model
meanwhile, and serves the model as soon as it lands in the store, without a restart (``make serve``)."""

from __future__ import annotations

import time

import httpx
import pytest

from tests.conftest import ROOT, free_port
from tests.serving import running_server

pytestmark = pytest.mark.integration


def test_a_model_joins_the_running_service_when_it_is_made(tiny_models, tiny_data_dir, tmp_path):
    from tasks.sentiment.pipelines.naive_bayes import NaiveBayesPipeline
    from train.common import train_and_save

    overlay = tmp_path / "serving.yaml"
    overlay.write_text(
        f"extends: {ROOT / 'serving.yaml'}\n"
        "models:\n"
        "  later: {task: sentiment, store_name: sentiment_later, runner: cpu, versions: [latest]}\n"
        "tasks:\n"
        "  sentiment: {default_model: later, routing: null}\n"
    )
    env = {"BUNDLE_SERVING_CONFIG": str(overlay), "BUNDLE_MODELS_PENDING": "1"}
    with running_server(free_port(), env=env) as url, httpx.Client(base_url=url, timeout=30) as client:
        # meanwhile: the task's next model answers, and says it is a fallback
        first = client.post("/sentiment", json={"text": "a gorgeous, witty film"})
        assert first.status_code == 200, first.text
        assert first.json()["arm"] == "fallback:logreg" and first.json()["family"] == "logreg"
        named = client.post("/sentiment", json={"text": "fine", "model": "later"})
        assert named.status_code == 503 and "not loaded yet" in named.json()["error"]
        assert int(named.headers["retry-after"]) > 0
        assert "later" not in {m["family"] for m in client.post("/models", json={}).json()["models"]}

        made = train_and_save(
            store_name="sentiment_later",
            make_pipeline=lambda seed: NaiveBayesPipeline(min_df=1),
            gate=0.5,
            data_dir=tiny_data_dir,
        )
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            answer = client.post("/sentiment", json={"text": "a gorgeous, witty film"}).json()
            if answer.get("family") == "later":
                break
            time.sleep(1)
        assert answer["family"] == "later" and answer["arm"] == "later", answer
        assert answer["model"] == made.tag
        assert "later" in {m["family"] for m in client.post("/models", json={}).json()["models"]}
