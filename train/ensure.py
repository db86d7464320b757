"""Train the models serving.yaml asks for that the Bento store does not have yet.

    python -m train.ensure                      # train what is missing, then exit
    python -m train.ensure --check              # only report; exit 1 if something is missing
    python -m train.ensure --serve --port 3000  # make serve: the quick ones, then serve at once while
                                                # the slow ones (tasks' slow_store_models) are made in
                                                # the background; they join the running service

While a slow model is missing, requests routed to it are answered by the task's next model (the answer
says ``arm: fallback:<model>``) and a request that names it gets 503 with ``Retry-After``.

Exact versions cannot be re-created (a version is minted at save time), so a missing exact version is an
error that says so; a missing ``latest`` is trained.
"""

from __future__ import annotations

import argparse
import logging
import os
import shlex
import signal
import subprocess
import sys
import threading

import bentoml

from bundle.runner_contract import PENDING_ENV
from bundle.settings import load_settings
from tasks.registry import TASKS

logger = logging.getLogger("train.ensure")


def missing_models() -> list[tuple[str, str]]:
    """(store name, version) pairs configured in serving.yaml and absent from the store."""
    missing = []
    settings = load_settings()
    for deployment in settings.models.values():
        for version in deployment.versions:
            try:
                bentoml.models.get(f"{deployment.store_name}:{version}")
            except bentoml.exceptions.NotFound:
                missing.append((deployment.store_name, version))
    return missing


def creator_of(store_name: str) -> str | None:
    """The module that creates ``store_name``, as its task declares."""
    for task in TASKS.values():
        if store_name in task.store_models:
            return task.store_models[store_name]
    return None


def is_slow(store_name: str) -> bool:
    return any(store_name in task.slow_store_models for task in TASKS.values())


def serve(port: int) -> int:
    """Make the quick models, then serve; make the slow ones meanwhile in a background process."""
    slow = [(name, version) for name, version in missing_models() if version == "latest" and is_slow(name)]
    made = make([m for m in missing_models() if m not in slow])
    if made:
        return made
    env = dict(os.environ)
    trainer = None
    if slow:
        names = ", ".join(name for name, _ in slow)
        logger.info("serving now; %s will join when made (a few minutes; progress below)", names)
        trainer = subprocess.Popen([sys.executable, "-m", "train.ensure"])
        threading.Thread(target=report_when_done, args=(trainer, names), daemon=True).start()
        env[PENDING_ENV] = "1"
    command = [sys.executable, "-m", "bentoml", "serve", "service:BundleService", "--port", str(port)]
    server = subprocess.Popen(command, env=env)
    # A SIGTERM to this process (a supervisor, `kill`) stops the server too, instead of orphaning it;
    # Ctrl-C reaches both through the terminal's process group anyway.
    signal.signal(signal.SIGTERM, lambda *_: server.terminate())
    try:
        return server.wait()
    finally:
        if server.poll() is None:
            server.terminate()
            server.wait()
        if trainer is not None and trainer.poll() is None:
            trainer.terminate()


def report_when_done(trainer: subprocess.Popen[bytes], names: str) -> None:
    """Say how the background training ended: the running service either picks the models up or keeps
    falling back, and the user should know which."""
    code = trainer.wait()
    if code == 0:
        logger.info("made %s; the running service loads them within seconds", names)
    elif code > 0:  # a negative code is our own terminate() at shutdown
        logger.error(
            "making %s failed (exit %d, the reason is above); requests keep falling back to the task's "
            "next model; run `make models` to retry",
            names,
            code,
        )


def make(missing: list[tuple[str, str]]) -> int:
    for name, version in missing:
        if version != "latest":
            logger.error("%s:%s is configured in serving.yaml but not in the store; fix its version", name, version)
            return 1
        module = creator_of(name)
        if module is None:
            logger.error("no task declares a script for %s (store_models in tasks/<task>/__init__.py)", name)
            return 1
        # a script may create what a later one needs (the transformer imports the encoder if missing;
        # the translation importer saves both directions)
        try:
            bentoml.models.get(f"{name}:latest")
            continue
        except bentoml.exceptions.NotFound:
            pass
        logger.info("making %s (python -m %s)", name, module)
        subprocess.run([sys.executable, "-m", *shlex.split(module)], check=True)
    return 0


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--check", action="store_true", help="report only; exit 1 if a model is missing")
    parser.add_argument("--serve", action="store_true", help="serve once the quick models are made")
    parser.add_argument("--port", type=int, default=3000)
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(message)s")
    if args.serve:
        return serve(args.port)
    missing = missing_models()
    if not missing:
        logger.info("all configured models are in the Bento store")
        return 0
    if args.check:
        for name, version in missing:
            logger.error("missing: %s:%s", name, version)
        return 1
    return make(missing)


if __name__ == "__main__":
    sys.exit(main())
