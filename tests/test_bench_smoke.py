"""The benchmark's code path, end to end, in its quick mode: real servers, tiny models, no timings.

``python -m bench.run --quick`` starts the project with adaptive batching on and off (the latter from a
patched copy of the runner code), measures the in-process model and one concurrency point with wrk,
and writes JSON and Markdown. This test checks that the run completes and that both outputs have the
structure the README and reviewers rely on; it never asserts a speed.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

pytestmark = [pytest.mark.slow, pytest.mark.integration]

ROOT = Path(__file__).resolve().parent.parent
ON = "BentoML entry → runner, adaptive batching (defaults)"
OFF = "BentoML entry → runner, batching off"
FP32 = "BentoML entry → runner, adaptive batching, fp32 runtime"
BF16 = "BentoML entry → runner, adaptive batching, bf16 runtime"  # only where the CPU computes bf16


def native_bf16() -> bool:
    from tasks.embedding.runtimes import native_bf16 as here

    return here("cpu")


@pytest.fixture(scope="module")
def quick_run(tiny_models: dict[str, str], tiny_data_dir: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    if shutil.which("wrk") is None:
        pytest.skip("wrk is not installed (apt-get install wrk); the benchmark's load generator needs it")
    out = tmp_path_factory.mktemp("bench-out")
    cmd = [sys.executable, "-m", "bench.run", "--quick", "--data-dir", str(tiny_data_dir), "--out", str(out)]
    cmd += ["--bentoml-home", os.environ["BENTOML_HOME"], "--inprocess-threads", "1"]
    res = subprocess.run(cmd, cwd=ROOT, capture_output=True, text=True, timeout=900, check=False)
    assert res.returncode == 0, res.stdout[-3000:] + res.stderr[-3000:]
    return out


def test_writes_json_and_markdown(quick_run: Path) -> None:
    names = sorted(p.name for p in quick_run.iterdir())
    assert "main-quick.json" in names and "main-quick.md" in names
    assert any(n.startswith("main-quick-") and n.endswith(".json") for n in names)  # the time-stamped copy


def test_json_structure(quick_run: Path, tiny_models: dict[str, str]) -> None:
    result = json.loads((quick_run / "main-quick.json").read_text())
    assert result["suite"] == "main" and result["quick"] is True
    assert result["date"] and result["finished"]
    assert result["machine"]["usable_cores"] >= 1 and result["machine"]["cpu_model"] is not None
    for package in ("python", "bentoml", "torch", "transformers", "wrk"):
        assert result["versions"][package]
    assert result["model"]["tag"] == tiny_models["transformer"]
    assert len(result["load_average_start"]) == 3

    inproc = result["inprocess"]
    assert inproc["threads"] == 1
    assert [p["batch_size"] for p in inproc["points"]] == [1, 4]
    assert all(p["sentences_per_s"] > 0 for p in inproc["points"])
    assert set(inproc["breakdown"]) >= {"tokenize_ms", "forward_ms"}
    assert inproc["runtime"] == "fp32"
    # every runtime the tiny transformer was exported to, measured in its own process
    assert set(result["inprocess_runtimes"]) == {"fp32", "onnx", "onnx_int8"} | ({"bf16"} if native_bf16() else set())

    assert result["skipped"] == []
    servers = {s["name"]: s for s in result["servers"]}
    assert set(servers) == {ON, OFF, FP32} | ({BF16} if native_bf16() else set())
    assert servers[FP32]["runtime"] == "fp32"
    assert servers[ON]["runtime"] in ("fp32", "bf16", "onnx", "onnx_int8")
    if native_bf16():
        assert servers[BF16]["runtime"] == "bf16"
    for server in servers.values():
        assert server["sockets_off_loopback"] == []
        # the same model answers; int8 weights (and bf16's 8-bit mantissas) move the tiny model's probabilities
        # a lot (its head has huge weights after 40 training sentences), so only fp32 and onnx are held to it
        if server["runtime"] not in ("onnx_int8", "bf16"):
            assert server["probe_max_abs_diff_vs_inprocess"] < 1e-4
        (point,) = server["points"]
        assert point["concurrency"] == result["method"]["concurrency"][0]
        assert point["responses"] >= result["method"]["requests_per_point"]
        assert point["non_2xx"] == point["n_429"] == point["n_503"] == point["n_5xx"] == 0
        assert set(point["latency_ms"]) >= {"p50", "p95", "p99"}
        assert "GPURunner" in point["cores"]["by_process"]
        assert "entry (BundleService)" in point["cores"]["cpu_ms_per_request"]
    batches = servers[ON]["points"][0]["batches"]
    assert batches["batches"] >= 1 and batches["mean_batch"] >= 1 and batches["sizes"]
    assert batches["texts"] >= result["method"]["requests_per_point"]
    assert servers[OFF]["settings"]["serving_yaml_runners"]["gpu"]["max_batch_size"] == 1

    goals = result["goals"]
    assert any(g["goal"].startswith("zero 5xx") for g in goals)
    for g in goals:
        assert set(g) == {"goal", "concurrency", "value", "target", "met", "detail"}


def test_markdown_structure(quick_run: Path) -> None:
    text = (quick_run / "main-quick.md").read_text()
    for heading in (
        "# Benchmark: main suite",
        "## The limit: in-process",
        "## Runtimes: in-process speed and accuracy",
        "## Throughput (successful requests/s)",
        "## Every point",
        "## Where the cores go",
        "## Goals",
    ):
        assert heading in text
    assert ON in text and OFF in text
    assert "| server | c | req/s | p50 ms | p95 ms | p99 ms | 429 | 503 | 5xx |" in text
