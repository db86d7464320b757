"""The load test against a real ``bentoml serve``: it runs, writes its reports, and the only
non-2xx answers are the deliberately bad inputs, each with the 4xx it expects."""

from __future__ import annotations

import json
import subprocess
import sys

import pytest

from tests.conftest import ROOT, free_port
from tests.serving import running_server

pytestmark = [pytest.mark.integration, pytest.mark.slow]


@pytest.fixture(scope="module")
def server(tiny_models):
    with running_server(free_port()) as url:
        yield url


def test_load_test_reports_and_has_only_intended_failures(server, tmp_path):
    out = tmp_path / "loadtest"
    result = subprocess.run(
        [
            sys.executable,
            "-m",
            "loadtest.run",
            "--host",
            server,
            "--users",
            "4",
            "--spawn-rate",
            "4",
            "--duration",
            "8s",
            "--out",
            str(out),
            # A higher share than the default 3 %, so that even a slow machine sends some of every kind.
            "--bad-share",
            "0.25",
        ],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=180,
    )
    assert result.returncode == 0, result.stdout + result.stderr

    for name in ["locust_stats.csv", "locust_stats_history.csv", "locust_failures.csv", "report.html"]:
        assert (out / name).stat().st_size > 0, name
    summary = json.loads((out / "summary.json").read_text())
    line = (out / "summary.txt").read_text().strip()
    assert line in result.stdout

    results = summary["results"]
    assert results["requests"] > 0
    assert results["count_5xx"] == 0, results["status_counts"]
    assert results["unexpected_failures"] == 0, results["status_counts"]
    assert results["connection_errors"] == 0
    assert results["expected_4xx"] > 0
    # Every non-2xx answer went to a deliberately bad request, and every bad request got its 4xx.
    for row in summary["per_request"]:
        statuses = set(row["status_counts"])
        expected = {row["name"].rsplit("-> ", 1)[1]} if row["name"].startswith("bad: ") else {"200"}
        assert statuses <= expected, row
    assert sum(results["status_counts"].values()) == results["requests"]

    # The server was discovered, so the mix included every endpoint it serves (the tiny models serve all).
    assert summary["server"]["discovered"] and summary["server"]["embed"] and summary["server"]["ensemble"]
    assert summary["machine"]["locust"] and summary["machine"]["bentoml"] and summary["machine"]["cpu_count"]
    assert summary["run"]["users"] == 4 and summary["run"]["duration_s"] == 8
