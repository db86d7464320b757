r"""Run the load test headless and summarise it in one line.

    python -m loadtest.run --host http://127.0.0.1:3000 --users 32 --spawn-rate 8 --duration 60s \
        --out results/loadtest

Locust runs in a subprocess (``loadtest/locustfile.py``) and writes its CSV and HTML reports into the
out folder; the locustfile's request hook writes the status-code counts (``status_counts.json``), since
locust's CSV does not split responses by status. This script then writes ``summary.json`` (the numbers,
per request kind, and the facts of the machine and run) and ``summary.txt`` (the one line it prints).

Exit status: 0 when every well-formed request succeeded and every deliberately bad one got its 4xx;
1 when there was a 5xx or any other failure (``--allow-failures`` reports them and exits 0 anyway);
2 when the server is not ready, or locust itself did not run or produced no statistics.
"""

from __future__ import annotations

import argparse
import csv
import datetime as dt
import importlib.metadata
import json
import os
import platform
import re
import resource
import subprocess
import sys
import time
import urllib.error
import urllib.request
from pathlib import Path
from typing import Any

LOCUSTFILE = Path(__file__).resolve().parent / "locustfile.py"
ROOT = LOCUSTFILE.parent.parent
CSV_PREFIX = "locust"  # locust_stats.csv, locust_stats_history.csv, locust_failures.csv, locust_exceptions.csv
STATUS_FILE = "status_counts.json"


def parse_duration(text: str) -> int:
    """Seconds in a locust run-time string: ``90``, ``60s``, ``2m``, ``1h30m``, ``1m30s``."""
    if text.isdigit():
        return int(text)
    match = re.fullmatch(r"(?:(\d+)h)?(?:(\d+)m)?(?:(\d+)s)?", text.strip())
    if not match or not any(match.groups()):
        raise argparse.ArgumentTypeError(f"not a duration: {text!r} (examples: 60s, 2m, 1m30s)")
    hours, minutes, seconds = (int(g or 0) for g in match.groups())
    return hours * 3600 + minutes * 60 + seconds


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="python -m loadtest.run", description=__doc__.split("\n\n")[0])
    parser.add_argument("--host", default="http://127.0.0.1:3000", help="base URL of the served API")
    parser.add_argument("--users", type=int, default=32, help="concurrent simulated clients")
    parser.add_argument("--spawn-rate", type=float, default=8, help="users started per second")
    parser.add_argument("--duration", default="60s", help="run time, as locust reads it: 60s, 2m, 1m30s")
    parser.add_argument("--out", type=Path, default=Path("results/loadtest"), help="folder for reports and summary")
    parser.add_argument("--bad-share", type=float, default=0.03, help="share of deliberately bad requests")
    parser.add_argument(
        "--think-time", type=float, default=0.0, help="max seconds a user waits between requests (0: closed loop)"
    )
    parser.add_argument(
        "--ready-timeout", type=float, default=60, help="seconds to wait for the server's /readyz before giving up"
    )
    parser.add_argument("--allow-failures", action="store_true", help="exit 0 even with 5xx or other failures")
    args = parser.parse_args(argv)
    args.seconds = parse_duration(args.duration)
    return args


# ---- running locust -------------------------------------------------------------------------------


def locust_command(args: argparse.Namespace, out: Path) -> list[str]:
    return [
        sys.executable,
        "-m",
        "locust",
        "-f",
        str(LOCUSTFILE),
        "--headless",
        "--host",
        args.host,
        "--users",
        str(args.users),
        "--spawn-rate",
        str(args.spawn_rate),
        "--run-time",
        args.duration,
        "--csv",
        str(out / CSV_PREFIX),
        "--html",
        str(out / "report.html"),
        "--only-summary",
        # Locust's own exit code would turn any failure into 1; this script decides, from the status
        # counts, which failures are acceptable (the deliberately bad inputs are not failures at all).
        "--exit-code-on-error",
        "0",
        "--status-file",
        str(out / STATUS_FILE),
        "--bad-share",
        str(args.bad_share),
        "--think-time",
        str(args.think_time),
    ]


def run_locust(args: argparse.Namespace, out: Path) -> int:
    command = locust_command(args, out)
    env = {**os.environ, "PYTHONPATH": os.pathsep.join(filter(None, [str(ROOT), os.environ.get("PYTHONPATH")]))}
    with (out / "locust.log").open("w") as log:
        try:
            # Start-up, the locustfile's discovery requests and stopping take a few seconds; a minute of
            # slack beyond the run time only guards against a hung locust.
            return subprocess.run(
                command, cwd=ROOT, env=env, stdout=log, stderr=subprocess.STDOUT, timeout=args.seconds + 60, check=False
            ).returncode
        except subprocess.TimeoutExpired:
            return 124


def wait_until_ready(host: str, timeout: float) -> str | None:
    """None once the server answers /readyz with 200; otherwise why not, after ``timeout`` seconds.

    A minute of failed requests against a server that is down measures nothing. A server still draining
    the previous run's queue can be slow to answer, so this waits rather than asking once.
    """
    deadline = time.monotonic() + timeout
    while True:
        try:
            with urllib.request.urlopen(host.rstrip("/") + "/readyz", timeout=10) as response:
                if response.status == 200:
                    return None
                problem = f"/readyz answered {response.status}"
        except urllib.error.HTTPError as exc:
            problem = f"/readyz answered {exc.code}"
        except OSError as exc:
            problem = f"{type(exc).__name__}: {exc}"
        if time.monotonic() >= deadline:
            return problem
        time.sleep(1)


# ---- reading the reports --------------------------------------------------------------------------


def steady_rps(path: Path, users: int) -> float | None:
    """Requests per second once every user runs, from the per-second history (the ramp-up left out)."""
    if not path.is_file():
        return None
    with path.open(newline="") as fh:
        rows = [r for r in csv.DictReader(fh) if r["Name"] == "Aggregated" and int(r["User Count"]) >= users]
    if len(rows) < 2:
        return None
    first, last = rows[0], rows[-1]
    seconds = int(last["Timestamp"]) - int(first["Timestamp"])
    if seconds <= 0:
        return None
    return (int(last["Total Request Count"]) - int(first["Total Request Count"])) / seconds


def _version(package: str) -> str | None:
    try:
        return importlib.metadata.version(package)
    except importlib.metadata.PackageNotFoundError:
        return None


def machine_facts() -> dict[str, Any]:
    return {
        "cpu_count": os.cpu_count(),
        "cpus_usable": len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else None,
        "platform": platform.platform(),
        "processor": platform.machine(),
        "python": platform.python_version(),
        "bentoml": _version("bentoml"),
        "locust": _version("locust"),
        "torch": _version("torch"),
    }


def _children_cpu_s() -> float:
    usage = resource.getrusage(resource.RUSAGE_CHILDREN)
    return usage.ru_utime + usage.ru_stime


def _load_average() -> list[float] | None:
    try:
        return [round(x, 2) for x in os.getloadavg()]
    except OSError:
        return None


def _ms(value: float | None) -> str:
    return "n/a" if value is None else f"{value:.0f} ms"


def one_line(summary: dict[str, Any]) -> str:
    r = summary["results"]
    steady = f" (steady {r['rps_steady']:.1f})" if r["rps_steady"] is not None else ""
    return (
        f"{summary['run']['users']} users, {summary['run']['duration_s']} s: {r['rps']:.1f} req/s{steady}, "
        f"{r['texts_per_s']:.0f} texts/s; p50 {_ms(r['p50_ms'])}, p95 {_ms(r['p95_ms'])}, p99 {_ms(r['p99_ms'])}; "
        f"{r['requests']} requests, {r['unexpected_failures']} failures, {r['count_5xx']} 5xx, "
        f"{r['expected_4xx']} expected 4xx"
    )


def summarise(args: argparse.Namespace, out: Path, started: dt.datetime, load_before: Any) -> dict[str, Any]:
    tally = json.loads((out / STATUS_FILE).read_text())
    aggregated = tally["stats"]["aggregated"]
    # Every request locust marked failed: the bad inputs that got their 4xx were marked successes, so
    # what is left is a server error, an overload answer (429), a timeout or a wrong answer.
    unexpected = max(aggregated["failures"], tally["failures"])
    elapsed = aggregated["requests"] / aggregated["rps"] if aggregated["rps"] else None
    log_text = (out / "locust.log").read_text(errors="replace")
    return {
        "run": {
            "date": started.isoformat(timespec="seconds"),
            "host": args.host,
            "users": args.users,
            "spawn_rate": args.spawn_rate,
            "duration_s": args.seconds,
            "bad_share": args.bad_share,
            "think_time_s": args.think_time,
            "load_average_before": load_before,
            "load_average_after": _load_average(),
            # Locust warns when the load generator itself runs out of CPU; its numbers are then a floor.
            "generator_cpu_warning": "CPU usage above" in log_text or "CPU usage was too high" in log_text,
            "command": " ".join(locust_command(args, out)[1:]),
        },
        "machine": machine_facts(),
        "server": tally.get("server"),
        "results": {
            "requests": aggregated["requests"],
            "rps": aggregated["rps"],
            "rps_steady": steady_rps(out / f"{CSV_PREFIX}_stats_history.csv", args.users),
            "texts_per_s": tally["texts_ok"] / elapsed if elapsed else 0.0,
            "p50_ms": aggregated["p50_ms"],
            "p95_ms": aggregated["p95_ms"],
            "p99_ms": aggregated["p99_ms"],
            "max_ms": aggregated["max_ms"],
            "failures": aggregated["failures"],
            "unexpected_failures": unexpected,
            "expected_4xx": tally["expected_4xx"],
            "count_5xx": tally["count_5xx"],
            "count_429": tally["count_429"],
            "connection_errors": tally["connection_errors"],
            "status_counts": tally["status_counts"],
        },
        "per_request": [
            {"name": name, **row, "status_counts": tally["by_name"].get(name, {})}
            for name, row in sorted(tally["stats"]["per_name"].items())
        ],
        "texts": {"source": tally.get("text_source"), "pool": tally.get("text_pool")},
    }


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    out: Path = args.out
    out.mkdir(parents=True, exist_ok=True)
    for stale in [STATUS_FILE, "summary.json", "summary.txt", f"{CSV_PREFIX}_stats.csv"]:
        (out / stale).unlink(missing_ok=True)  # a failed run must not leave the previous run's numbers behind

    if problem := wait_until_ready(args.host, args.ready_timeout):
        print(f"the server at {args.host} is not ready ({problem}); start it first, e.g. `make serve`", file=sys.stderr)
        return 2
    started = dt.datetime.now(dt.UTC)
    load_before = _load_average()
    print(f"load test: {args.users} users against {args.host} for {args.duration}; reports in {out}", flush=True)
    cpu_before = _children_cpu_s()
    code = run_locust(args, out)
    generator_cpu_s = _children_cpu_s() - cpu_before
    if code != 0 or not (out / f"{CSV_PREFIX}_stats.csv").is_file() or not (out / STATUS_FILE).is_file():
        tail = (out / "locust.log").read_text(errors="replace")[-3000:]
        print(f"locust did not complete (exit {code}); the end of {out / 'locust.log'}:\n{tail}", file=sys.stderr)
        return 2

    summary = summarise(args, out, started, load_before)
    # On a small machine the load generator competes with the server for the same cores: record its share.
    summary["run"]["generator_cpu_s"] = round(generator_cpu_s, 1)
    summary["run"]["generator_cores"] = round(generator_cpu_s / args.seconds, 2) if args.seconds else None
    if summary["results"]["requests"] == 0:
        print(f"no requests were made; is the server at {args.host} up? See {out / 'locust.log'}", file=sys.stderr)
        return 2
    line = one_line(summary)
    (out / "summary.json").write_text(json.dumps(summary, indent=2) + "\n")
    (out / "summary.txt").write_text(line + "\n")
    print(line)

    results = summary["results"]
    if results["count_5xx"] or results["unexpected_failures"]:
        for row in summary["per_request"]:
            if row["failures"]:
                print(f"  {row['name']}: {row['failures']} failed; status counts {row['status_counts']}")
        print(f"  details: {out / f'{CSV_PREFIX}_failures.csv'}")
        return 0 if args.allow_failures else 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
