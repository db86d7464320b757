"""A side environment for the benchmark's peers (Ray Serve, plain FastAPI), layered on the project's venv.

    python -m bench.peers_env          # create it (pip, from the package index), print its python

Ray Serve brings uvloop, httptools, grpcio, protobuf and more. Installed into the project's own
virtualenv they would change what BentoML runs on (uvicorn picks uvloop and httptools when present), so
the BentoML numbers would no longer describe the project as ``make install`` sets it up. The side
environment is a plain venv whose ``.pth`` file appends the project venv's site-packages: the peers see
torch, transformers and the project's code, and what pip adds for them stays out of the project.
None of this is a project dependency; pyproject.toml does not list it.
"""

from __future__ import annotations

import argparse
import logging
import os
import site
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
DEFAULT_DIR = ROOT / ".cache" / "bench-peers-venv"
REQUIREMENTS = ["ray[serve]==2.60.0", "fastapi==0.165.0"]

logger = logging.getLogger(__name__)


def peers_dir() -> Path:
    return Path(os.environ.get("BENCH_PEERS_VENV", DEFAULT_DIR))


def peers_python() -> Path:
    return peers_dir() / "bin" / "python"


def ready() -> bool:
    python = peers_python()
    if not python.exists():
        return False
    probe = subprocess.run(
        [str(python), "-c", "import ray, ray.serve, fastapi, torch, transformers"], capture_output=True, check=False
    )
    return probe.returncode == 0


def create() -> Path:
    """Create the side environment (idempotent); return its python."""
    folder = peers_dir()
    python = peers_python()
    if not python.exists():
        logger.info("creating %s", folder)
        subprocess.run([sys.executable, "-m", "venv", str(folder)], check=True)
    purelib = subprocess.run(
        [str(python), "-c", "import sysconfig; print(sysconfig.get_paths()['purelib'])"],
        capture_output=True,
        text=True,
        check=True,
    ).stdout.strip()
    project_site = site.getsitepackages()[0] if sys.prefix != sys.base_prefix else None
    if project_site is None:
        raise SystemExit("run this with the project's virtualenv python (. .venv/bin/activate)")
    # Appended after the side environment's own site-packages: its packages win, the project fills in.
    (Path(purelib) / "zz_project_venv.pth").write_text(project_site + "\n")
    if not ready():
        subprocess.run([str(python), "-m", "pip", "install", "--quiet", *REQUIREMENTS], check=True)
    return python


def main() -> None:
    logging.basicConfig(level=logging.INFO, format="%(message)s")
    argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter).parse_args()
    print(create())


if __name__ == "__main__":
    main()
