"""train.ensure: which models make serve trains in the background, and what it says when that ends."""

from __future__ import annotations

import logging
import subprocess
import sys

from train import ensure


def test_the_slow_models_are_the_ones_that_take_minutes():
    assert ensure.is_slow("sentiment_transformer") and ensure.is_slow("sentiment_stacked")
    assert not ensure.is_slow("sentiment_logreg") and not ensure.is_slow("translation_en_pt")


def test_background_training_reports_success_and_failure(caplog):
    caplog.set_level(logging.INFO, logger="train.ensure")
    ok = subprocess.Popen([sys.executable, "-c", "pass"])
    ensure.report_when_done(ok, "sentiment_stacked")
    failed = subprocess.Popen([sys.executable, "-c", "raise SystemExit(3)"])
    ensure.report_when_done(failed, "sentiment_stacked")
    messages = [r.getMessage() for r in caplog.records]
    assert "made sentiment_stacked; the running service loads them within seconds" in messages
    assert any("making sentiment_stacked failed (exit 3" in m and "make models" in m for m in messages)
