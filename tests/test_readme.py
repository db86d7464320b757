"""The README's commands run as written (the way a new user would paste them).

Every ```bash block is split into commands. ``make`` targets must exist (``make -n``); a settings file
named in an environment assignment must load; ``curl`` calls run against a real ``bentoml serve`` of the
project and must get a 2xx. Every ```python block runs against the same server.
"""

from __future__ import annotations

import re
import shlex
import subprocess
import sys

import pytest

from tests.conftest import ROOT, free_port
from tests.serving import running_server

pytestmark = pytest.mark.integration

README = (ROOT / "README.md").read_text()
DEFAULT_URL = "localhost:3000"


def blocks(language: str) -> list[str]:
    return re.findall(rf"```{language}\n(.*?)```", README, flags=re.S)


def commands() -> list[str]:
    """Each shell command of the README, continuation lines joined, comments dropped."""
    out = []
    for block in blocks("bash"):
        for command in block.replace("\\\n", " ").splitlines():
            command = command.split(" #", 1)[0].strip()
            if command and not command.startswith("#"):
                out.append(command)
    return out


def test_the_readme_shows_commands_and_code():
    assert any(c.startswith("make serve") for c in commands())
    assert any(c.startswith("curl") for c in commands())
    assert blocks("python")


@pytest.mark.parametrize("command", [c for c in commands() if not c.startswith("curl")])
def test_make_targets_and_settings_files_exist(command):
    words = shlex.split(command)
    env = {}
    while words and re.fullmatch(r"[A-Z_]+=.*", words[0]):
        name, value = words.pop(0).split("=", 1)
        env[name] = value
    assert words[0] == "make", command
    if "BUNDLE_SERVING_CONFIG" in env:
        from bundle.settings import load_settings

        load_settings(ROOT / env["BUNDLE_SERVING_CONFIG"])  # raises with the problem if it does not load
    dry = subprocess.run(["make", "-n", *words[1:]], cwd=ROOT, capture_output=True, text=True, timeout=60)
    assert dry.returncode == 0, dry.stderr


@pytest.fixture(scope="module")
def server(tiny_models):
    with running_server(free_port()) as url:
        yield url


@pytest.mark.parametrize("command", [c for c in commands() if c.startswith("curl")])
def test_curl_commands_answer(server, command):
    words = [w.replace(DEFAULT_URL, server.removeprefix("http://")) for w in shlex.split(command)]
    result = subprocess.run([*words, "--fail-with-body"], capture_output=True, text=True, timeout=120)
    assert result.returncode == 0, (command, result.stdout, result.stderr)
    assert result.stdout.startswith("{")


@pytest.mark.parametrize("code", blocks("python"))
def test_python_blocks_run(server, code):
    code = code.replace(f"http://{DEFAULT_URL}", server).replace(DEFAULT_URL, server.removeprefix("http://"))
    result = subprocess.run([sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True, timeout=120)
    assert result.returncode == 0, result.stderr
