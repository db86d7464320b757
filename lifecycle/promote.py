"""Move which version of a model family serves, safely, by editing serving.yaml.

    python -m lifecycle.promote promote logreg j46mfrxgfknroax4   # make it the default version
    python -m lifecycle.promote rollback logreg                    # undo the last promotion
    python -m lifecycle.promote status                             # what serves, what is available

``promote`` refuses a version that is not in the Bento store or whose metadata says it failed its
accuracy gate (or records no gate at all). The previous ``versions`` list is appended to a history
file next to serving.yaml (``.serving-history.jsonl``), which ``rollback`` pops. Only the family's
``versions:`` line is rewritten, so the file's comments and layout stay as they are. Restart the
service to apply.
"""

from __future__ import annotations

import argparse
import datetime
import json
import re
import sys
from pathlib import Path
from typing import Any

from bundle.settings import load_settings, parse_settings, settings_path


class PromotionError(RuntimeError):
    pass


def history_path(config: Path) -> Path:
    return config.with_name(".serving-history.jsonl")


def _versions_line(text: str, family: str) -> re.Match[str]:
    """The ``versions: [...]`` line inside ``models: <family>:`` (flow-style list, one line)."""
    block = re.search(rf"(?m)^models:\s*\n(?:(?:[ \t].*|\s*)\n)*?[ \t]+{re.escape(family)}:\s*\n", text)
    if block is None:
        raise PromotionError(f"family {family!r} not found under models: in serving.yaml")
    line = re.compile(r"(?m)^([ \t]+versions:[ \t]*)\[([^\]\n]*)\](.*)$")
    match = line.search(text, block.end())
    next_family = re.compile(r"(?m)^[ \t]{1,2}\S.*:\s*$").search(text, block.end())
    if match is None or (next_family is not None and next_family.start() < match.start()):
        raise PromotionError(f"models.{family} has no one-line 'versions: [...]' to edit")
    return match


def set_versions(config: Path, family: str, versions: list[str]) -> list[str]:
    text = config.read_text()
    match = _versions_line(text, family)
    previous = [v.strip().strip("'\"") for v in match.group(2).split(",") if v.strip()]
    new_text = text[: match.start()] + f"{match.group(1)}[{', '.join(versions)}]{match.group(3)}" + text[match.end() :]
    import yaml

    parse_settings(yaml.safe_load(new_text), str(config))  # never write a file the server would reject
    config.write_text(new_text)
    return previous


def check_promotable(store_name: str, version: str) -> str:
    import bentoml

    try:
        model = bentoml.models.get(f"{store_name}:{version}")
    except bentoml.exceptions.NotFound:
        raise PromotionError(f"{store_name}:{version} is not in the Bento model store") from None
    meta: dict[str, Any] = dict(model.info.metadata)
    gate = meta.get("gate_passed")
    if gate is not True:
        accuracy = meta.get("metrics", {}).get("test", {}).get("accuracy")
        raise PromotionError(
            f"{model.tag} failed its accuracy gate (test accuracy {accuracy}, gate "
            f"{meta.get('accuracy_gate')}); refusing to promote it"
            if gate is False
            else f"{model.tag} records no accuracy gate; refusing to promote it"
        )
    return str(model.tag.version)


def promote(family: str, version: str, config: Path | None = None) -> list[str]:
    config = config or settings_path()
    settings = load_settings(config)
    if family not in settings.models:
        raise PromotionError(f"unknown family {family!r}; families: {sorted(settings.models)}")
    exact = check_promotable(settings.models[family].store_name, version)
    current = settings.models[family].versions
    versions = [exact] + [v for v in current if v != exact]
    previous = set_versions(config, family, versions)
    with history_path(config).open("a") as fh:
        entry = {"at": _now(), "family": family, "previous": previous, "new": versions}
        fh.write(json.dumps(entry) + "\n")
    return versions


def rollback(family: str, config: Path | None = None) -> list[str]:
    config = config or settings_path()
    history = history_path(config)
    entries = [json.loads(line) for line in history.read_text().splitlines()] if history.exists() else []
    mine = [i for i, e in enumerate(entries) if e["family"] == family]
    if not mine:
        raise PromotionError(f"no promotion of {family!r} to roll back (history: {history})")
    last = entries.pop(mine[-1])
    set_versions(config, family, last["previous"])
    history.write_text("".join(json.dumps(e) + "\n" for e in entries))
    return last["previous"]


def status(config: Path | None = None) -> str:
    import bentoml

    settings = load_settings(config or settings_path())
    lines = []
    for family, deployment in settings.models.items():
        lines.append(f"{family}: serves {deployment.versions} of {deployment.store_name}")
        try:
            available = bentoml.models.list(deployment.store_name)
        except bentoml.exceptions.NotFound:
            available = []
            lines.append("    (none in the store)")
        for model in sorted(available, key=lambda m: m.info.creation_time):
            meta: dict[str, Any] = dict(model.info.metadata)
            accuracy = meta.get("metrics", {}).get("test", {}).get("accuracy")
            gate = (
                {True: "gate passed", False: "gate FAILED"}.get(bool(meta["gate_passed"]), "no gate")
                if "gate_passed" in meta
                else "no gate"
            )
            lines.append(f"    {model.tag.version}  {model.info.creation_time:%Y-%m-%d %H:%M}  test {accuracy}  {gate}")
    return "\n".join(lines)


def _now() -> str:
    return datetime.datetime.now(datetime.UTC).isoformat(timespec="seconds")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    sub = parser.add_subparsers(dest="command", required=True)
    p = sub.add_parser("promote", help="make VERSION the default version of FAMILY")
    p.add_argument("family")
    p.add_argument("version")
    r = sub.add_parser("rollback", help="undo the last promotion of FAMILY")
    r.add_argument("family")
    sub.add_parser("status", help="what serves and what is available")
    args = parser.parse_args(argv)
    try:
        if args.command == "promote":
            print(f"{args.family}: versions now {promote(args.family, args.version)}; restart the service to apply")
        elif args.command == "rollback":
            print(f"{args.family}: versions now {rollback(args.family)}; restart the service to apply")
        else:
            print(status())
    except PromotionError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
