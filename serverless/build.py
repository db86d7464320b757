"""Build the function package: a zip with the handler, the project code it imports, the CPU sentiment
models from the Bento store, and its pinned dependencies.

    python -m serverless.build [--out dist/function.zip]       # make function

The models are the versions serving.yaml serves on the cpu runner (``only_runners: [cpu]``), default
first. Sizes are checked against the platform's documented limits for a zip: 50 MB to upload directly,
250 MB unzipped (a larger zip goes through object storage). Deploy it, for example, with
``aws lambda create-function --runtime python3.11 --handler serverless.handler.handler
--zip-file fileb://dist/function.zip ...`` and a function URL or an HTTP API route.
"""

from __future__ import annotations

import argparse
import json
import logging
import shutil
import subprocess
import sys
import tempfile
import zipfile
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
DEPENDENCIES = [  # the function's own pins: the serving stack without BentoML, torch or transformers
    "mangum==0.22.0",
    "starlette==1.10.0",
    "pydantic==2.14.3",
    "pyyaml>=6.0,<7",
    "numpy==2.4.6",
    "scipy==1.17.1",
    "scikit-learn==1.9.1",
    "joblib>=1.4,<2",
    "nltk==3.10.4",
    "vaderSentiment==3.3.2",
]
CODE = [
    "serverless/__init__.py",
    "serverless/handler.py",
    "bundle/__init__.py",
    "bundle/contract.py",
    "bundle/errors.py",
    "bundle/samples.py",
    "bundle/settings.py",
    "bundle/task.py",
    "bundle/text.py",
    "tasks/__init__.py",
    "tasks/sentiment",
    "tasks/embedding/__init__.py",
    "tasks/embedding/contract.py",
    "tasks/embedding/encoder.py",
    "tasks/embedding/runtimes.py",
    "serving.yaml",
]
ZIP_LIMIT = 50 * 1000 * 1000  # direct upload
UNZIPPED_LIMIT = 250 * 1000 * 1000
logger = logging.getLogger("serverless.build")


def copy_models(target: Path) -> dict[str, object]:
    """The cpu runner's sentiment models from the store, into ``target``; returns the manifest."""
    import bentoml

    from bundle.settings import load_settings

    settings = load_settings()
    models: dict[str, dict[str, str]] = {}
    for family, deployment in settings.models_of("sentiment").items():
        if deployment.runner != "cpu":
            continue
        stored = bentoml.models.get(f"{deployment.store_name}:{deployment.versions[0]}")
        shutil.copytree(stored.path, target / family)
        models[family] = {"tag": str(stored.tag), "pipeline": stored.info.labels["pipeline"]}
    default = settings.tasks["sentiment"].default_model
    if default not in models:
        default = sorted(models)[0]
    manifest: dict[str, object] = {"default": default, "models": models}
    (target / "manifest.json").write_text(json.dumps(manifest, indent=2))
    return manifest


def build(out: Path) -> dict[str, object]:
    with tempfile.TemporaryDirectory(prefix="function-") as tmp:
        package = Path(tmp) / "package"
        subprocess.run(
            [
                sys.executable,
                "-m",
                "pip",
                "install",
                "--quiet",
                "--no-compile",
                "--target",
                str(package),
                *DEPENDENCIES,
            ],
            check=True,
        )
        for removable in [*package.rglob("tests"), *package.rglob("__pycache__")]:
            if removable.is_dir():
                shutil.rmtree(removable, ignore_errors=True)
        for path in CODE:
            source, target = ROOT / path, package / path
            target.parent.mkdir(parents=True, exist_ok=True)
            if source.is_dir():
                shutil.copytree(source, target, ignore=shutil.ignore_patterns("__pycache__"))
            else:
                shutil.copy2(source, target)
        manifest = copy_models(package / "serverless" / "models")
        unzipped = sum(p.stat().st_size for p in package.rglob("*") if p.is_file())
        out.parent.mkdir(parents=True, exist_ok=True)
        with zipfile.ZipFile(out, "w", zipfile.ZIP_DEFLATED) as zf:
            for p in sorted(package.rglob("*")):
                if p.is_file():
                    zf.write(p, p.relative_to(package))
    zipped = out.stat().st_size
    report = {
        "zip": str(out),
        "zipped_bytes": zipped,
        "unzipped_bytes": unzipped,
        "direct_upload_ok": zipped <= ZIP_LIMIT,
        "unzipped_ok": unzipped <= UNZIPPED_LIMIT,
        "models": manifest["models"],
        "default": manifest["default"],
    }
    direct = "within" if zipped <= ZIP_LIMIT else "over"
    whole = "within" if unzipped <= UNZIPPED_LIMIT else "OVER"
    print(
        f"{out}: {zipped / 1e6:.1f} MB zipped ({direct} the 50 MB direct-upload limit; upload through object "
        f"storage above it), {unzipped / 1e6:.1f} MB unzipped ({whole} the 250 MB limit)"
    )
    if unzipped > UNZIPPED_LIMIT:
        raise SystemExit("the package is over the platform's unzipped limit")
    return report


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--out", type=Path, default=ROOT / "dist" / "function.zip")
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(message)s")
    report = build(args.out)
    (args.out.parent / "function.json").write_text(json.dumps(report, indent=2))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
