"""The serverless function package, run the way the platform runs it: the built zip unpacked, a fresh
virtual environment with nothing installed, the handler imported from the package and called with
API Gateway HTTP API (payload v2) events. Measures cold start and warm latency (reported, not asserted)."""

from __future__ import annotations

import base64
import json
import subprocess
import sys
import zipfile
from pathlib import Path

import pytest

pytestmark = pytest.mark.slow

RUNNER = r"""
import base64, json, sys, time
events = json.loads(sys.stdin.read())
started = time.perf_counter()
import serverless.handler as function  # the platform imports the handler module: a cold start
cold_import_ms = (time.perf_counter() - started) * 1000

class Context:
    aws_request_id = "req-1"
    function_name = "model-bundle"
    def get_remaining_time_in_millis(self):
        return 30000

answers, timings = [], []
for event in events:
    started = time.perf_counter()
    answers.append(function.handler(event, Context()))
    timings.append((time.perf_counter() - started) * 1000)
print(json.dumps({"answers": answers, "cold_import_ms": cold_import_ms, "ms": timings, "path": sys.path[:3],
                  "bentoml": "bentoml" in sys.modules, "torch": "torch" in sys.modules}))
"""


def event(path: str, body: object, *, base64_body: bool = False, raw: bytes | None = None) -> dict:
    text = raw if raw is not None else json.dumps(body).encode()
    return {
        "version": "2.0",
        "routeKey": f"POST {path}",
        "rawPath": path,
        "rawQueryString": "",
        "headers": {"content-type": "application/json", "host": "abc.lambda-url.eu-west-1.on.aws"},
        "requestContext": {
            "accountId": "123456789012",
            "apiId": "abc",
            "domainName": "abc.lambda-url.eu-west-1.on.aws",
            "domainPrefix": "abc",
            "http": {
                "method": "POST",
                "path": path,
                "protocol": "HTTP/1.1",
                "sourceIp": "203.0.113.7",
                "userAgent": "test",
            },
            "requestId": "req-1",
            "routeKey": f"POST {path}",
            "stage": "$default",
            "time": "30/Nov/2026:04:00:00 +0000",
            "timeEpoch": 1796011200000,
        },
        "body": base64.b64encode(text).decode() if base64_body else text.decode(),
        "isBase64Encoded": base64_body,
    }


@pytest.fixture(scope="module")
def unpacked(tiny_models, tmp_path_factory) -> Path:
    from serverless.build import build

    out = tmp_path_factory.mktemp("function") / "function.zip"
    report = build(out)
    assert report["unzipped_ok"], report
    assert set(report["models"]) == {"logreg", "naive_bayes", "vader"}
    target = tmp_path_factory.mktemp("task-root")
    with zipfile.ZipFile(out) as zf:
        zf.extractall(target)
    return target


@pytest.fixture(scope="module")
def fresh_python(tmp_path_factory) -> Path:
    venv = tmp_path_factory.mktemp("fresh-venv")
    subprocess.run([sys.executable, "-m", "venv", "--without-pip", str(venv)], check=True)
    return venv / "bin" / "python"


CASES = [
    # (event, status, check on the JSON answer)
    (
        event("/sentiment", {"text": "a gorgeous, witty film", "model": "logreg"}),
        200,
        lambda a: a["label"] == "positive",
    ),
    (  # VADER's rules come from its package inside the zip, its lexicon from the model folder
        event("/sentiment", {"text": "I hate mondays :(", "model": "vader"}),
        200,
        lambda a: a["label"] == "negative" and a["family"] == "vader",
    ),
    (
        event("/sentiment", {"text": "a tedious, badly written disaster"}, base64_body=True),
        200,
        lambda a: a["label"] == "negative",
    ),
    (
        event(
            "/sentiment/batch", {"texts": ["a delightful triumph", "an utterly boring mess"], "model": "naive_bayes"}
        ),
        200,
        lambda a: [p["label"] for p in a["predictions"]] == ["positive", "negative"],
    ),
    (event("/sentiment", {"text": "  "}), 400, lambda a: "text: must not be empty" in a["error"]),
    (event("/sentiment", {"text": "x" * 5001}), 400, lambda a: "5001 characters; the maximum is 5000" in a["error"]),
    (event("/sentiment", {"text": "ok", "modle": "logreg"}), 400, lambda a: "modle: unknown field" in a["error"]),
    (event("/sentiment", None, raw=b"{oops"), 400, lambda a: "not valid JSON" in a["error"]),
    (
        event("/sentiment", {"text": "ok", "model": "gpt"}),
        404,
        lambda a: "unknown model 'gpt'; available models: logreg, naive_bayes, vader" in a["error"],
    ),
    (event("/sentiment/batch", {"texts": ["ok"] * 65}), 400, lambda a: "at most 64 items" in a["error"]),
    (event("/sentiment", {"text": "Um filme", "lang": "pt"}), 400, lambda a: "no translation" in a["error"]),
    (event("/nothing", {}), 404, lambda a: "no route" in a["error"]),
]


def test_the_packaged_function_answers_real_shaped_events(unpacked, fresh_python, tiny_models):
    events = [e for e, _, _ in CASES] + [CASES[0][0]] * 20  # then warm calls
    result = subprocess.run(
        [str(fresh_python), "-c", RUNNER],
        input=json.dumps(events),
        cwd=unpacked,
        env={"PYTHONPATH": str(unpacked), "PATH": "/usr/bin:/bin", "HOME": str(unpacked)},
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert result.returncode == 0, result.stderr[-3000:]
    report = json.loads(result.stdout.strip().splitlines()[-1])
    assert not report["bentoml"] and not report["torch"]  # the function carries neither
    for (_, status, check), answer in zip(CASES, report["answers"], strict=False):
        body = json.loads(answer["body"])
        assert answer["statusCode"] == status, body
        assert check(body), body
        assert answer["headers"]["content-type"] == "application/json"
    first = json.loads(report["answers"][0]["body"])
    assert first["model"] == tiny_models["logreg"] and first["family"] == "logreg"
    # one structured log line per request
    lines = [json.loads(line) for line in result.stderr.splitlines() if line.startswith("{")]
    assert len(lines) == len(events)
    assert lines[0] == {
        **lines[0],
        "path": "/sentiment",
        "status": 200,
        "model": "logreg",
        "texts": 1,
        "request_id": "req-1",
    }
    warm = sorted(report["ms"][len(CASES) :])
    print(
        f"\ncold start (import, models loaded): {report['cold_import_ms']:.0f} ms; "
        f"first call {report['ms'][0]:.1f} ms; warm p50 {warm[len(warm) // 2]:.2f} ms"
    )


# ---- the container image, with awslambdaric as its entry point ---------------------------------------


class RuntimeAPI:
    """The Lambda Runtime API (2018-06-01) the function's runtime client talks to, on loopback: hands out
    the queued events one by one and collects the answers. The last ``next`` call is left waiting, as the
    platform does between invocations."""

    def __init__(self, events: list[dict]) -> None:
        import http.server
        import queue
        import threading

        self.events: queue.Queue = queue.Queue()
        for i, e in enumerate(events):
            self.events.put((f"req-{i}", e))
        self.answers: dict[str, dict] = {}
        self.done = threading.Event()
        api = self

        class Handler(http.server.BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"  # the runtime client keeps its connection; 1.0 answers stall it

            def log_message(self, *args: object) -> None:
                pass

            def do_GET(self) -> None:
                if not self.path.endswith("/runtime/invocation/next"):
                    self.send_error(404)
                    return
                request_id, event = api.events.get()
                body = json.dumps(event).encode()
                self.send_response(200)
                self.send_header("Lambda-Runtime-Aws-Request-Id", request_id)
                self.send_header("Lambda-Runtime-Deadline-Ms", "4102444800000")
                self.send_header("Lambda-Runtime-Invoked-Function-Arn", "arn:aws:lambda:eu-west-1:123:function:f")
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            def do_POST(self) -> None:
                length = int(self.headers.get("Content-Length") or 0)
                payload = json.loads(self.rfile.read(length) or b"null")
                parts = self.path.split("/")
                api.answers[parts[-2] if parts[-1] in ("response", "error") else "init"] = {
                    "kind": parts[-1],
                    "payload": payload,
                }
                self.send_response(202)
                self.send_header("Content-Length", "0")
                self.end_headers()
                if len([k for k in api.answers if k.startswith("req-")]) == api.expected or parts[-1] == "error":
                    api.done.set()

        self.expected = len(events)
        self.server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.port = self.server.server_address[1]
        threading.Thread(target=self.server.serve_forever, daemon=True).start()


def test_the_container_image_serves_events_through_the_runtime_interface_client(unpacked, tmp_path, tiny_models):
    import os
    import shutil

    from tests.test_container import container_engine

    engine = container_engine()  # as root, build-image.sh installs podman and builds the base image
    if engine is None:
        pytest.skip("no Docker engine and not root (the podman route needs root here)")
    root = Path(__file__).resolve().parent.parent
    zip_path = tmp_path / "function.zip"
    shutil.make_archive(str(zip_path.with_suffix("")), "zip", unpacked)
    image = "model-bundle-function-test:latest"
    built = subprocess.run(
        [str(root / "serverless" / "build-image.sh"), str(zip_path)],
        env={**os.environ, "IMAGE": image, "PYTHON": sys.executable},
        capture_output=True,
        text=True,
        timeout=1200,
    )
    assert built.returncode == 0, built.stderr[-3000:]
    engine = shutil.which(engine) or engine
    events = [CASES[0][0], CASES[4][0], CASES[3][0]]  # 200, 400, 200
    api = RuntimeAPI(events)
    run = subprocess.Popen(
        [
            engine,
            "run",
            "--rm",
            "--network",
            "host",
            "--name",
            "function-test",
            "-e",
            f"AWS_LAMBDA_RUNTIME_API=127.0.0.1:{api.port}",
            "-e",
            "AWS_LAMBDA_FUNCTION_NAME=model-bundle",
            image,
        ],
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )
    try:
        assert api.done.wait(timeout=180), api.answers
    finally:
        subprocess.run([engine, "rm", "-f", "function-test"], capture_output=True, timeout=60)
        output = run.communicate(timeout=60)[0]
        api.server.shutdown()
        subprocess.run([engine, "rmi", "-f", image], capture_output=True, timeout=60)
    assert "init" not in api.answers, (api.answers, output[-2000:])
    statuses = [api.answers[f"req-{i}"]["payload"]["statusCode"] for i in range(len(events))]
    assert statuses == [200, 400, 200], (api.answers, output[-2000:])
    assert json.loads(api.answers["req-0"]["payload"]["body"])["model"] == tiny_models["logreg"]
    assert '"status": 400' in output  # the function's structured log line reaches the container's output
