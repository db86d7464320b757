"""The real container path: Bento → OCI image → running container → SIGTERM.

Builds the Bento from this test session's store (the tiny real models), containerizes it with the
project's script (docker where an engine runs, else podman with a locally built base image), runs it
with the project's run script, calls /readyz and /sentiment, stops it and checks the exit was clean.
Every image, container and Bento it made is removed afterwards. Needs root for the podman route.
"""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import sys
import time

import httpx
import pytest

from tests.conftest import ROOT, free_port

pytestmark = [pytest.mark.slow, pytest.mark.integration]

BIN = os.path.dirname(sys.executable)


def sh(*cmd: str, env: dict | None = None, timeout: int = 1800) -> subprocess.CompletedProcess:
    full_env = {**os.environ, "PATH": f"{BIN}:{os.environ['PATH']}", **(env or {})}
    return subprocess.run(cmd, cwd=ROOT, env=full_env, capture_output=True, text=True, timeout=timeout)


def container_engine() -> str | None:
    if shutil.which("docker") and sh("docker", "info").returncode == 0:
        return "docker"
    if os.geteuid() == 0:
        return "podman"  # containerize.sh installs it
    return None


@pytest.fixture(scope="module")
def image(tiny_models):
    engine = container_engine()
    if engine is None:
        pytest.skip("no Docker engine and not root (the podman route needs root here)")
    if not (ROOT / "wheels").is_dir():
        made = sh("make", "wheels")
        assert made.returncode == 0, made.stdout + made.stderr
    base = sh("deploy/container/base-image.sh").stdout.strip()
    built = sh(f"{BIN}/bentoml", "build", "--output", "tag", env={"BENTO_BASE_IMAGE": base})
    assert built.returncode == 0, built.stdout[-3000:] + built.stderr[-3000:]
    tag = built.stdout.strip().splitlines()[-1].removeprefix("__tag__:")
    image_tag = f"model-bundle-test:{tag.split(':')[1]}"
    made = sh("deploy/container/containerize.sh", tag, env={"IMAGE_TAG": image_tag})
    assert made.returncode == 0, made.stdout[-3000:] + made.stderr[-5000:]
    try:
        yield engine, image_tag
    finally:
        sh(engine, "rmi", "-f", image_tag, image_tag.split(":")[0] + ":latest")
        sh(f"{BIN}/bentoml", "delete", "-y", tag)


def test_container_serves_and_stops_cleanly(image):
    engine, image_tag = image
    port = free_port()
    name = f"model-bundle-test-{port}"
    env = {"BENTO_PORT": str(port), "BENTO_CONTAINER_NAME": name, "BENTO_CONTAINER_ENGINE": engine}
    # by the name:latest alias containerize.sh adds, the way `make run-container` asks for it
    started = sh("deploy/container/run-container.sh", image_tag.split(":")[0] + ":latest", env=env, timeout=600)
    try:
        assert started.returncode == 0, started.stdout[-3000:] + started.stderr[-3000:]
        url = f"http://127.0.0.1:{port}"
        assert httpx.get(f"{url}/readyz", timeout=10).status_code == 200
        r = httpx.post(f"{url}/sentiment", json={"text": "a gorgeous, witty film", "model": "logreg"}, timeout=60)
        assert r.status_code == 200, r.text
        assert r.json()["label"] == "positive"
        r = httpx.post(f"{url}/sentiment", json={"text": "   "}, timeout=30)
        assert r.status_code == 400
        user = sh(engine, "exec", name, "id", "-un").stdout.strip()
        assert user == "bentoml"  # not root

        began = time.monotonic()
        stopped = sh("deploy/container/run-container.sh", "stop", env=env, timeout=120)
        assert stopped.returncode == 0, stopped.stderr
        assert time.monotonic() - began < 60  # SIGTERM was obeyed, not waited out until SIGKILL
        exit_code = re.search(r"exit code (\S+)", stopped.stderr)
        assert exit_code and exit_code.group(1) == "0", stopped.stderr
    finally:
        sh(engine, "rm", "-f", name)
