"""A runner's forward passes side by side (``runners.<r>.pass_threads``), on the tiny stored models."""

from __future__ import annotations

import threading
from typing import Any

import numpy as np
import pytest

from bundle.runner_contract import ModelInput
from bundle.settings import RunnerSettings
from tasks.registry import TASKS
from tasks.sentiment import ProbabilitiesPredictor

TEXTS = [
    "a warm, funny and clever film",
    "dull",
    "the plot collapses under its own weight and the acting is wooden from start to finish",
    "I loved every minute",
    "not worth the ticket",
    "an instant classic",
    "boring, predictable and far too long",
    "great",
    "the worst sequel of the year",
    "a quiet, moving portrait of a family",
    "terrible dialogue",
]


class RecordingPredictor(ProbabilitiesPredictor):
    """The real predictor, noting the threads its passes ran on and their sizes."""

    def __init__(self, inner: ProbabilitiesPredictor, thread_safe: bool = True, refuse: str = "") -> None:
        super().__init__(inner.pipeline)
        self.thread_safe = thread_safe  # type: ignore[misc]
        self.refuse = refuse  # a text whose pass raises, as a model's error would
        self.calls: list[tuple[int, int]] = []
        self.lock = threading.Lock()

    def predict(self, inputs: Any) -> list[list[float]]:
        with self.lock:
            self.calls.append((threading.get_ident(), len(inputs)))
        if self.refuse in inputs:
            raise ValueError(f"refused {self.refuse!r}")
        return super().predict(inputs)


def make_host(knobs: RunnerSettings, tag: str, predictor: Any) -> Any:
    from runners.host import ModelHost  # importing runners resolves serving.yaml's models: after tiny_models

    host_class = type("PassesHost", (ModelHost,), {"profile": "cpu", "knobs": knobs, "declared_models": []})
    host = host_class()
    host.predictors[tag], host.tasks[tag] = predictor, TASKS["sentiment"]
    return host


@pytest.fixture(scope="module")
def transformer(tiny_models: dict[str, str]) -> tuple[str, ProbabilitiesPredictor]:
    import bentoml

    tag = tiny_models["transformer"]
    predictor = TASKS["sentiment"].load_model("transformer", bentoml.models.get(tag).path, "cpu", runtime="onnx")
    assert isinstance(predictor, ProbabilitiesPredictor)
    return tag, predictor


def knobs(**kwargs: Any) -> RunnerSettings:
    return RunnerSettings(max_batch_size=64, max_latency_ms=5000, **kwargs)


def run(host: Any, tag: str) -> np.ndarray:
    return np.array(host.run_batch([ModelInput(model_tag=tag, data=t) for t in TEXTS]))


def test_passes_run_side_by_side_and_answer_as_one_pass(transformer: tuple[str, ProbabilitiesPredictor]) -> None:
    tag, predictor = transformer
    sequential, parallel = RecordingPredictor(predictor), RecordingPredictor(predictor)
    one = run(make_host(knobs(), tag, sequential), tag)
    two = run(make_host(knobs(pass_threads=2), tag, parallel), tag)
    assert [size for _, size in sequential.calls] == [len(TEXTS)]
    assert sorted(size for _, size in parallel.calls) == [5, 6]
    assert len({thread for thread, _ in parallel.calls}) == 2
    assert threading.get_ident() not in {thread for thread, _ in parallel.calls}
    # the same answers, in input order (only padding differs between one pass and two)
    np.testing.assert_allclose(two, one, atol=1e-5)
    assert (two.argmax(axis=1) == one.argmax(axis=1)).all()


def test_forward_batch_size_still_bounds_each_pass(transformer: tuple[str, ProbabilitiesPredictor]) -> None:
    tag, predictor = transformer
    recorded = RecordingPredictor(predictor)
    run(make_host(knobs(pass_threads=2, forward_batch_size=4), tag, recorded), tag)
    assert sorted(size for _, size in recorded.calls) == [3, 4, 4]


def test_a_predictor_that_is_not_thread_safe_runs_its_passes_in_turn(
    transformer: tuple[str, ProbabilitiesPredictor],
) -> None:
    tag, predictor = transformer
    recorded = RecordingPredictor(predictor, thread_safe=False)
    run(make_host(knobs(pass_threads=2, forward_batch_size=4), tag, recorded), tag)
    assert [size for _, size in recorded.calls] == [4, 4, 3]
    assert {thread for thread, _ in recorded.calls} == {threading.get_ident()}


def test_a_failing_pass_fails_the_batch_after_the_other_passes_end(
    transformer: tuple[str, ProbabilitiesPredictor],
) -> None:
    tag, predictor = transformer
    recorded = RecordingPredictor(predictor, refuse="dull")
    with pytest.raises(ValueError, match="refused 'dull'"):
        run(make_host(knobs(pass_threads=2), tag, recorded), tag)
    assert len(recorded.calls) == 2
