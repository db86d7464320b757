"""Side environments for the benchmark's peers, layered on the project's venv.

    python -m bench.peers_env [--name peers|mlserver]   # create one (pip, from the package index), print its python

- ``peers``: Ray Serve, plain FastAPI and LitServe. Ray Serve brings uvloop, httptools, grpcio, protobuf
  and more. Installed into the project's own virtualenv they would change what BentoML runs on (uvicorn
  picks uvloop and httptools when present), so the BentoML numbers would no longer describe the project
  as ``make install`` sets it up.
- ``mlserver``: MLServer 1.7.1 alone, because it pins its own fastapi (0.115) and ray (2.55), which
  conflict with the first environment's (unpinned, pip picks 1.2.1, which fails to import with pydantic 2).

Each is a plain venv whose ``.pth`` file appends the project venv's site-packages: the peers see torch,
transformers and the project's code, and what pip adds for them stays out of the project. None of this
is a project dependency; pyproject.toml does not list it.
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
# name -> (requirements, the import that proves the environment works)
ENVIRONMENTS = {
    "peers": (
        ["ray[serve]==2.60.0", "fastapi==0.165.0", "litserve==0.2.19"],
        "import ray, ray.serve, fastapi, litserve",
    ),
    "mlserver": (["mlserver==1.7.1"], "import mlserver, mlserver.codecs"),
}
DEFAULT_DIRS = {"peers": ROOT / ".cache" / "bench-peers-venv", "mlserver": ROOT / ".cache" / "bench-mlserver-venv"}

logger = logging.getLogger(__name__)


def peers_dir(name: str = "peers") -> Path:
    override = os.environ.get("BENCH_PEERS_VENV" if name == "peers" else f"BENCH_{name.upper()}_VENV")
    return Path(override) if override else DEFAULT_DIRS[name]


def peers_python(name: str = "peers") -> Path:
    return peers_dir(name) / "bin" / "python"


def ready(name: str = "peers") -> bool:
    python = peers_python(name)
    if not python.exists():
        return False
    check = ENVIRONMENTS[name][1] + ", torch, transformers"
    return subprocess.run([str(python), "-c", check], capture_output=True, check=False).returncode == 0


def create(name: str = "peers") -> Path:
    """Create the side environment ``name`` (idempotent); return its python."""
    folder = peers_dir(name)
    python = peers_python(name)
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
    if not ready(name):
        subprocess.run([str(python), "-m", "pip", "install", "--quiet", *ENVIRONMENTS[name][0]], check=True)
    return python


def main() -> None:
    logging.basicConfig(level=logging.INFO, format="%(message)s")
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--name", choices=sorted(ENVIRONMENTS), default="peers")
    print(create(parser.parse_args().name))


if __name__ == "__main__":
    main()
