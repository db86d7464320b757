"""The web page (frontend/) in a real headless Chromium against a real ``bentoml serve``.

Chromium is Debian's (``apt-get install chromium``), driven by Playwright for Python; Playwright's own
browser download is never used. The service runs the tiny real models of ``tiny_models``.
"""

from __future__ import annotations

import os
import re
import shutil
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager
from pathlib import Path

import httpx
import pytest
import yaml

from bundle import samples
from tests.conftest import ROOT, free_port
from tests.serving import running_server

pytestmark = [pytest.mark.slow, pytest.mark.integration]

sync_api = pytest.importorskip(
    "playwright.sync_api", reason="Playwright for Python is not installed: pip install playwright"
)
expect = sync_api.expect

CHROMIUM = Path(os.environ.get("CHROMIUM_PATH", "/usr/bin/chromium"))
CHROMIUM_ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
    "--disable-quic",
]
FRONTEND = ROOT / "frontend"
ARTIFACTS = ROOT / "test-artifacts"
# The origin that hosts the page elsewhere must be on configuration.yaml's CORS allow-list.
OTHER_ORIGIN_PORT = 8080
OTHER_ORIGIN = f"http://127.0.0.1:{OTHER_ORIGIN_PORT}"
TIMEOUT_MS = 20_000

expect.set_options(timeout=TIMEOUT_MS)


# ---- fixtures ------------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def server(tiny_models: dict[str, str]) -> Iterator[str]:
    with running_server(free_port()) as url:
        yield url


@pytest.fixture(scope="module")
def models(server: str) -> dict:
    return httpx.post(f"{server}/models", json={}, timeout=30).json()


def classifiers(models: dict) -> list[dict]:
    """The models a person can pick to classify: the sentiment task's (not the /embed encoder)."""
    return [m for m in models["models"] if m["task"] == "sentiment"]


@pytest.fixture(scope="module")
def browser():
    if not CHROMIUM.exists():
        pytest.skip(f"Debian's Chromium is not installed at {CHROMIUM}: apt-get install -y chromium chromium-driver")
    with sync_api.sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=str(CHROMIUM), args=CHROMIUM_ARGS, headless=True)
        yield browser
        browser.close()


@pytest.fixture
def page(browser):
    context = browser.new_context(viewport={"width": 1360, "height": 900})
    page = context.new_page()
    page.set_default_timeout(TIMEOUT_MS)
    errors: list[str] = []
    page.on("pageerror", lambda exc: errors.append(str(exc)))
    yield page
    context.close()
    assert not errors, f"uncaught JavaScript errors on the page: {errors}"


@contextmanager
def static_site(port: int, tmp_path: Path) -> Iterator[str]:
    """Serve a copy of frontend/ from another origin with Python's http.server."""
    site = tmp_path / f"site-{port}"
    shutil.copytree(FRONTEND, site)
    with socket.socket() as probe:
        try:
            probe.bind(("127.0.0.1", port))
        except OSError:
            pytest.fail(f"port {port} is in use; the page must be hosted on {OTHER_ORIGIN}, an allowed CORS origin")
    proc = subprocess.Popen(
        [sys.executable, "-m", "http.server", str(port), "--bind", "127.0.0.1", "--directory", str(site)],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    url = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 20
        while True:
            try:
                if httpx.get(f"{url}/index.html", timeout=2).status_code == 200:
                    break
            except httpx.TransportError:
                pass
            if proc.poll() is not None or time.monotonic() > deadline:
                raise RuntimeError(f"http.server on port {port} did not start")
            time.sleep(0.2)
        yield url
    finally:
        proc.terminate()
        proc.wait(timeout=10)


def open_page(page, url: str) -> None:
    page.goto(url)
    # the model list arrived: the family selector is enabled and filled
    expect(page.get_by_test_id("family-a")).to_be_enabled()


def percent(p: float) -> str:
    return f"{100 * p:.1f}%"


def number_in(page, test_id: str) -> float:
    text = page.get_by_test_id(test_id).text_content() or ""
    return float(text.replace(",", "")) if re.fullmatch(r"[\d,.]+", text.strip()) else float("nan")


def wait_for_number(page, test_id: str, predicate: str, arg: float) -> None:
    """Wait (auto-retrying) until the number shown in ``test_id`` satisfies ``value <predicate> arg``."""
    page.wait_for_function(
        """([id, op, arg]) => {
            const el = document.querySelector(`[data-testid="${id}"]`);
            const v = Number((el?.textContent ?? "").replace(/,/g, ""));
            return Number.isFinite(v) && (op === ">" ? v > arg : v >= arg);
        }""",
        arg=[test_id, predicate, arg],
    )


# ---- the page ------------------------------------------------------------------------------------


def test_model_selector_lists_what_models_reports(page, server, models):
    open_page(page, f"{server}/ui/")
    families = sorted({m["family"] for m in classifiers(models)})
    assert {"logreg", "naive_bayes"} <= set(families)
    family = page.get_by_test_id("family-a")
    assert sorted(family.locator("option").evaluate_all("os => os.map(o => o.value)")) == families
    expect(family).to_have_value(models["default_family"])

    default = next(m for m in models["models"] if m["family"] == models["default_family"] and m["default"])
    version = page.get_by_test_id("version-a")
    expect(version).to_have_value(default["version"])
    accuracy = percent(default["metrics"]["test"]["accuracy"])
    expect(version.locator("option:checked")).to_contain_text(accuracy)
    expect(page.get_by_test_id("note-a")).to_contain_text(f"test accuracy {accuracy}")

    rows = page.get_by_test_id("model-row")
    expect(rows).to_have_count(len(models["models"]))
    for m in models["models"]:
        row = page.locator(f'[data-testid="model-row"][data-family="{m["family"]}"]')
        for domain, measured in (m.get("evaluation") or {}).get("domains", {}).items():
            cell = row.locator(f'[data-testid="model-domain-accuracy"][data-domain="{domain}"]')
            expect(cell).to_contain_text(percent(measured["accuracy"]))
            expect(cell).to_contain_text(f"{percent(measured['ci95'][0])}–{percent(measured['ci95'][1])}")
    expect(page.get_by_test_id("service-status")).to_contain_text("online")
    # labelled controls: the text box and the selectors are reachable by their labels
    expect(page.get_by_role("textbox", name=re.compile(r"^Text"))).to_be_visible()
    expect(page.get_by_role("combobox", name="Family")).to_have_count(1)  # model B's picker is hidden


def test_translate_view_translates_with_the_served_pairs(page, server, tiny_models):
    open_page(page, f"{server}/ui/")
    card = page.get_by_test_id("translate-card")
    expect(card).to_be_visible()
    pair = page.get_by_test_id("translate-pair")
    expect(pair.locator("option")).to_have_text(["en → pt", "pt → en"])
    pair.select_option("en-pt")
    page.get_by_test_id("translate-input").fill("The children were playing happily in the garden.\nHello.")
    page.get_by_test_id("translate-submit").click()
    translations = page.get_by_test_id("translation")
    expect(translations).to_have_text(["As crianças estavam brincando alegremente no jardim.", "Olá."])
    expect(page.get_by_test_id("translate-model")).to_contain_text(tiny_models["marian_en_pt"])
    page.get_by_test_id("translate-input").fill(" ")
    page.get_by_test_id("translate-submit").click()
    expect(page.get_by_test_id("translate-error")).to_have_text("Type a text to translate.")


def test_text_gets_label_probability_bar_and_model(page, server, tiny_models):
    body = {"text": samples.POSITIVE, "model": "logreg"}
    expected = httpx.post(f"{server}/sentiment", json=body, timeout=30).json()
    open_page(page, f"{server}/ui/")
    page.get_by_test_id("family-a").select_option("logreg")
    box = page.get_by_test_id("text-input")
    box.fill(samples.POSITIVE)
    box.press("Control+Enter")  # the keyboard shortcut submits

    result = page.get_by_test_id("result-a")
    expect(result.get_by_test_id("result-label")).to_have_text("positive")
    expect(result.get_by_test_id("result-model")).to_have_text(tiny_models["logreg"])
    expect(result.get_by_test_id("result-family")).to_have_text("logreg")
    expect(result.get_by_test_id("server-ms")).to_have_text(re.compile(r"^\d+(\.\d)? ms$"))
    expect(result.get_by_test_id("roundtrip-ms")).to_have_text(re.compile(r"^\d+(\.\d)? ms$"))
    expect(result.get_by_test_id("prediction")).to_have_count(1)

    bars = result.get_by_test_id("probability-bar")
    expect(bars).to_have_count(2)
    for name, p in expected["probabilities"].items():
        bar = result.locator(f'[data-testid="probability-bar"][data-class="{name}"]')
        assert float(bar.get_attribute("aria-valuenow")) == pytest.approx(p)
        fill_share = bar.evaluate(
            "b => b.firstElementChild.getBoundingClientRect().width / b.getBoundingClientRect().width"
        )
        assert fill_share == pytest.approx(p, abs=0.02)
        expect(result.get_by_test_id(f"probability-{name}")).to_have_text(percent(p))
    expect(page.get_by_test_id("error")).to_be_hidden()


def test_empty_text_shows_the_services_message(page, server):
    open_page(page, f"{server}/ui/")
    page.get_by_test_id("submit").click()
    error = page.get_by_test_id("error")
    expect(error).to_be_visible()
    expect(error).to_have_text("text: must not be empty or only whitespace")
    expect(page.get_by_test_id("result-a")).to_have_count(0)

    # a batch over the service's limit: the service's own words again
    page.get_by_test_id("text-input").fill("\n".join(f"line {i}" for i in range(65)))
    expect(page.get_by_test_id("text-count")).to_have_text("65 texts · one batch request")
    page.get_by_test_id("submit").click()
    expect(error).to_contain_text("at most 64")

    # and a good text clears the message
    page.get_by_test_id("family-a").select_option("logreg")
    page.get_by_test_id("text-input").fill(samples.NEGATIVE)
    page.get_by_test_id("submit").click()
    expect(page.get_by_test_id("result-a").get_by_test_id("result-label")).to_have_text("negative")
    expect(error).to_be_hidden()


def test_other_family_answers_after_switching(page, server, models, tiny_models):
    open_page(page, f"{server}/ui/")
    page.get_by_test_id("family-a").select_option("naive_bayes")
    nb_version = tiny_models["naive_bayes"].split(":")[1]
    expect(page.get_by_test_id("version-a")).to_have_value(nb_version)

    # several lines: one batch request, answers in input order
    page.get_by_test_id("text-input").fill("\n".join(text for text, _ in samples.LABELLED))
    page.get_by_test_id("submit").click()
    result = page.get_by_test_id("result-a")
    expect(result.get_by_test_id("result-model")).to_have_text(tiny_models["naive_bayes"])
    expect(result.get_by_test_id("result-family")).to_have_text("naive_bayes")
    expect(result.get_by_test_id("result-label")).to_have_text([label for _, label in samples.LABELLED])


def test_two_models_side_by_side(page, server, models, tiny_models):
    open_page(page, f"{server}/ui/")
    expect(page.get_by_test_id("picker-b")).to_be_hidden()
    page.get_by_test_id("compare-toggle").check()
    expect(page.get_by_test_id("picker-b")).to_be_visible()
    default = models["default_family"]
    expect(page.get_by_test_id("family-a")).to_have_value(default)
    expect(page.get_by_test_id("family-b")).not_to_have_value(default)  # another family by default
    page.get_by_test_id("family-a").select_option("logreg")
    page.get_by_test_id("family-b").select_option("naive_bayes")

    texts = [text for text, _ in samples.LABELLED]
    page.get_by_test_id("text-input").fill("\n".join(texts))
    page.get_by_test_id("submit").click()
    a, b = page.get_by_test_id("result-a"), page.get_by_test_id("result-b")
    expect(a.get_by_test_id("result-model")).to_have_text(tiny_models["logreg"])
    expect(b.get_by_test_id("result-model")).to_have_text(tiny_models["naive_bayes"])
    for column in (a, b):
        expect(column.get_by_test_id("result-label")).to_have_text([label for _, label in samples.LABELLED])
    boxes = a.bounding_box(), b.bounding_box()
    assert boxes[0]["x"] + boxes[0]["width"] <= boxes[1]["x"], "the two answers are not side by side"
    expect(page.get_by_test_id("agreement")).to_have_text(
        f"The two models agree on {len(texts)} of {len(texts)} texts."
    )

    # the main view, with live charts, kept for people to look at
    wait_for_number(page, "requests-total", ">=", 2)
    expect(page.get_by_test_id("rps-chart").locator("polyline")).to_have_count(1)  # two readings at least
    expect(page.locator('[data-testid="batch-bar"]:not([data-count="0"])').first).to_be_attached()
    ARTIFACTS.mkdir(exist_ok=True)
    page.screenshot(path=str(ARTIFACTS / "ui-main.png"), full_page=True)


def test_metrics_charts_follow_the_traffic(page, server):
    open_page(page, f"{server}/ui/")
    wait_for_number(page, "requests-total", ">=", 0)
    before = number_in(page, "requests-total")

    def call(i: int) -> int:
        text, _ = samples.LABELLED[i % len(samples.LABELLED)]
        return httpx.post(f"{server}/sentiment", json={"text": f"{text} {i}"}, timeout=30).status_code

    with ThreadPoolExecutor(max_workers=8) as pool:
        assert set(pool.map(call, range(48))) == {200}

    wait_for_number(page, "requests-total", ">=", before + 48)
    wait_for_number(page, "rps-peak", ">", 0)
    chart = page.get_by_test_id("rps-chart")
    expect(chart.locator("polyline")).to_have_count(1)
    assert float(chart.get_attribute("data-max")) > 0
    bars = page.locator('[data-testid="batch-chart"] [data-testid="batch-bar"]:not([data-count="0"])')
    expect(bars.first).to_be_attached()
    assert sum(int(c) for c in bars.evaluate_all("bs => bs.map(b => b.dataset.count)")) > 0
    expect(page.get_by_test_id("batch-caption")).to_have_text(
        re.compile(r"^[\d,]+ batch(es)? (in the last|since start)")
    )
    expect(page.get_by_test_id("metrics-error")).to_be_hidden()


def test_metrics_parser_agrees_with_prometheus_client(page, server):
    """The page's Prometheus parser reads the service's real /metrics like prometheus_client does."""
    from prometheus_client.parser import text_string_to_metric_families

    httpx.post(f"{server}/sentiment/batch", json={"texts": [samples.POSITIVE, samples.NEGATIVE]}, timeout=30)
    text = httpx.get(f"{server}/metrics", timeout=10).text
    requests = batches = 0.0
    for family in text_string_to_metric_families(text):
        for s in family.samples:
            if s.name.endswith("_request_total") and s.labels.get("endpoint") in ("/sentiment", "/sentiment/batch"):
                requests += s.value
            if s.name == "bundle_runner_batch_inputs_count":
                batches += s.value
    assert requests > 0 and batches > 0

    open_page(page, f"{server}/ui/")
    seen = page.evaluate(
        """async (text) => {
            const m = await import("./metrics.js");
            const samples = m.parsePrometheus(text);
            const hist = m.combineHistograms(m.batchHistograms(samples).values());
            const bars = m.bucketBars(hist);
            return {requests: m.requestTotals(samples).total, batches: hist.count,
                    barTotal: bars.reduce((n, b) => n + b.count, 0)};
        }""",
        text,
    )
    assert seen == {"requests": requests, "batches": batches, "barTotal": batches}


@pytest.mark.parametrize("status", [429, 503])
def test_overload_says_busy(page, server, status):
    """The page's answer to the service's overload statuses (429 from max_concurrency, 503 from shedding)."""
    open_page(page, f"{server}/ui/")
    page.route(
        re.compile(r".*/sentiment$"),
        lambda route: route.fulfill(status=status, content_type="application/json", body='{"error": "overloaded"}'),
    )
    page.get_by_test_id("text-input").fill(samples.POSITIVE)
    page.get_by_test_id("submit").click()
    expect(page.get_by_test_id("error")).to_contain_text("The service is busy, try again")


def test_unreachable_service_is_reported(page, server):
    dead = f"http://127.0.0.1:{free_port()}"  # nothing listens there
    page.goto(f"{server}/ui/?api={dead}")
    error = page.get_by_test_id("error")
    expect(error).to_contain_text(f"Cannot reach the service at {dead}")
    expect(page.get_by_test_id("service-status")).to_have_text("unreachable")
    expect(page.get_by_test_id("metrics-error")).to_contain_text("Cannot reach the service")
    page.get_by_test_id("text-input").fill(samples.POSITIVE)
    page.get_by_test_id("submit").click()
    expect(error).to_contain_text("Cannot reach the service")
    expect(page.get_by_test_id("result-a")).to_have_count(0)


# ---- the page hosted on another origin -----------------------------------------------------------


def test_allowed_origin_gets_predictions_through_cors(page, server, tiny_models, tmp_path):
    config = yaml.safe_load((ROOT / "configuration.yaml").read_text())
    assert OTHER_ORIGIN in config["services"]["BundleService"]["http"]["cors"]["access_control_allow_origins"]
    with static_site(OTHER_ORIGIN_PORT, tmp_path) as site:
        open_page(page, f"{site}/index.html?api={server}")
        assert page.evaluate("location.origin") == OTHER_ORIGIN
        expect(page.get_by_test_id("api-shown")).to_have_text(server)
        page.get_by_test_id("family-a").select_option("logreg")
        page.get_by_test_id("text-input").fill(samples.NEGATIVE)
        page.get_by_test_id("submit").click()
        result = page.get_by_test_id("result-a")
        expect(result.get_by_test_id("result-label")).to_have_text("negative")
        expect(result.get_by_test_id("result-model")).to_have_text(tiny_models["logreg"])
        # the service's error text is readable cross-origin too
        page.get_by_test_id("text-input").fill("   ")
        page.get_by_test_id("submit").click()
        expect(page.get_by_test_id("error")).to_have_text("text: must not be empty or only whitespace")
        # and so are the metrics
        wait_for_number(page, "requests-total", ">", 0)


def test_foreign_origin_is_refused_by_the_browser(page, server, tmp_path):
    with static_site(free_port(), tmp_path) as site:
        page.goto(f"{site}/index.html?api={server}")
        error = page.get_by_test_id("error")
        expect(error).to_contain_text(f"Cannot reach the service at {server}")
        expect(error).to_contain_text("CORS")
        expect(page.get_by_test_id("family-a")).to_be_disabled()


# ---- the Listen card: audio uploaded and recorded ---------------------------------------------------


# Real read speech (LibriVox, public domain; examples/audio/README.md): "he was not an ill disposed young man".
SPEECH = ROOT / "examples" / "audio" / "speech.wav"


def test_listen_card_transcribes_an_uploaded_file_and_draws_notes(page, server, tmp_path):
    import numpy as np
    import soundfile

    open_page(page, f"{server}/ui/")
    card = page.get_by_test_id("audio-card")
    expect(card).to_be_visible()
    mode = page.get_by_test_id("audio-mode")
    expect(mode.locator("option")).to_have_text(
        ["Transcribe", "Translate to English", "Sentiment of speech", "Music → notes"]
    )
    page.get_by_test_id("audio-file").set_input_files(str(SPEECH))
    page.get_by_test_id("audio-submit").click()
    expect(page.get_by_test_id("transcript")).to_contain_text(re.compile("disposed young man", re.IGNORECASE))
    expect(page.get_by_test_id("audio-language")).to_contain_text("language: en")
    expect(page.get_by_test_id("audio-model")).to_contain_text("speech_whisper_base:")

    rate = 22_050
    t = np.arange(int(1.5 * rate)) / rate
    tone = tmp_path / "a4.wav"
    soundfile.write(tone, 0.4 * np.sin(2 * np.pi * 440.0 * t), rate)
    mode.select_option("notes")
    page.get_by_test_id("audio-file").set_input_files(str(tone))
    page.get_by_test_id("audio-submit").click()
    expect(page.get_by_test_id("audio-notes")).to_contain_text("A4")
    expect(page.get_by_test_id("piano-roll").locator("rect")).not_to_have_count(0)

    (tmp_path / "notes.txt").write_text("not audio")
    page.get_by_test_id("audio-file").set_input_files(str(tmp_path / "notes.txt"))
    page.get_by_test_id("audio-submit").click()
    expect(page.get_by_test_id("audio-error")).to_contain_text("not accepted")


def test_listen_card_records_from_the_microphone(browser, server):
    """Chromium's fake capture device plays a recording into getUserMedia: the page records it, encodes
    a WAV, uploads it and shows what Whisper heard."""
    args = [
        *CHROMIUM_ARGS,
        "--use-fake-device-for-media-stream",
        "--use-fake-ui-for-media-stream",
        f"--use-file-for-fake-audio-capture={SPEECH}%noloop",
    ]
    # a second browser with a fake microphone, from the same Playwright as the module's browser
    with_mic = browser.browser_type.launch(executable_path=str(CHROMIUM), args=args, headless=True)
    try:
        context = with_mic.new_context(viewport={"width": 1360, "height": 900})
        context.grant_permissions(["microphone"])
        page = context.new_page()
        errors: list[str] = []
        page.on("pageerror", lambda exc: errors.append(str(exc)))
        open_page(page, f"{server}/ui/")
        record = page.get_by_test_id("audio-record")
        record.click()
        expect(page.get_by_test_id("audio-status")).to_have_text("recording…")
        page.wait_for_timeout(4500)  # the recording lasts 3 s
        record.click()
        expect(page.get_by_test_id("audio-status")).to_contain_text("recorded")
        expect(page.get_by_test_id("transcript")).to_contain_text(re.compile("young man", re.IGNORECASE))
        assert not errors, errors
    finally:
        with_mic.close()
