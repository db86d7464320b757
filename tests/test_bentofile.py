"""The Bento carries every project module the service imports (a missing one fails only in the image).

The container test finds this too, but only after a five-minute image build; this walks the import
graph of service.py and checks each local module against bentofile.yaml's include/exclude patterns.
"""

import ast
from fnmatch import fnmatch
from pathlib import Path

import yaml

ROOT = Path(__file__).resolve().parent.parent


def local_module_file(name: str) -> Path | None:
    parts = name.split(".")
    for candidate in (ROOT.joinpath(*parts).with_suffix(".py"), ROOT.joinpath(*parts, "__init__.py")):
        if candidate.is_file():
            return candidate
    return None


def imported_local_files(entry: Path) -> set[Path]:
    seen: set[Path] = set()
    todo = [entry]
    while todo:
        path = todo.pop()
        if path in seen:
            continue
        seen.add(path)
        for node in ast.walk(ast.parse(path.read_text())):
            names: list[str] = []
            if isinstance(node, ast.Import):
                names = [a.name for a in node.names]
            elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
                names = [node.module] + [f"{node.module}.{a.name}" for a in node.names]
            for name in names:
                for depth in range(1, name.count(".") + 2):  # a package's __init__ and the module itself
                    found = local_module_file(".".join(name.split(".")[:depth]))
                    if found is not None:
                        todo.append(found)
    return seen


def test_every_module_the_service_imports_is_in_the_bento():
    spec = yaml.safe_load((ROOT / "bentofile.yaml").read_text())
    files = {p.relative_to(ROOT).as_posix() for p in imported_local_files(ROOT / "service.py")}
    assert {
        "service.py",
        "bundle/coalesce.py",
        "runners/profiles.py",
        "tasks/sentiment/pipelines/transformer.py",
        "tasks/embedding/encoder.py",
    } <= files

    def included(rel: str) -> bool:
        return any(fnmatch(rel, pattern) for pattern in spec["include"]) and not any(
            rel.startswith(pattern.rstrip("/") + "/") or fnmatch(rel, pattern) for pattern in spec.get("exclude", [])
        )

    missing = sorted(rel for rel in files if not included(rel))
    assert not missing, f"bentofile.yaml does not include {missing}; the image would fail to import them"
