"""A realistic mix of calls to the public API, for locust.

Run it through ``python -m loadtest.run`` (headless, reports and a summary), or directly:

    locust -f loadtest/locustfile.py --host http://127.0.0.1:3000

What one simulated client does, per request (shares of the well-formed requests):

- 58 %  ``/sentiment`` with default routing, a short, medium or long text
- 12 %  ``/sentiment`` naming a model family (sometimes also its served version)
- 16 %  ``/sentiment/batch`` of 2-32 texts (log-uniform: small batches are the common case)
-  6 %  ``/sentiment/ensemble``, 6 % ``/embed`` of 1-16 texts, 2 % ``/models``
- 30 % of sentiment requests carry a ``user`` key (sticky A/B and canary routing)

plus ``--bad-share`` (default 3 %) of deliberately bad requests: empty text, unknown model, oversize
batch, a body that is not JSON. Each expects one exact 4xx; it counts as a success when that status
arrives and as a failure otherwise (a 5xx for bad input is a server bug). Any 5xx, 429 or connection
error on a well-formed request is a failure.

Request names carry the kind (``/sentiment [default, long]``, ``bad: not JSON -> 400``), so locust's CSV
and HTML show each kind on its own row. Locust's CSV does not split by status code, so a request hook
counts status codes here and ``--status-file`` receives them as JSON when the test stops, with the final response-time
statistics of each request name.
"""

from __future__ import annotations

import json
import logging
import random
import sys
import urllib.error
import urllib.request
from collections import Counter, defaultdict
from pathlib import Path
from typing import Any

from locust import FastHttpUser, events, task
from locust.env import Environment

ROOT = Path(__file__).resolve().parent.parent
if str(ROOT) not in sys.path:  # `locust -f loadtest/locustfile.py` puts only loadtest/ on the path
    sys.path.insert(0, str(ROOT))

# noqa: E402 below: these need the repository root on sys.path first
from bundle import samples  # noqa: E402
from loadtest import texts as sent_texts  # noqa: E402
from loadtest.texts import batch_bucket, batch_size, some_length, text_of  # noqa: E402

logger = logging.getLogger("loadtest")

FAMILIES = ("transformer", "logreg", "naive_bayes")  # assumed when /models cannot be read at start
USER_KEYS = [f"user-{i:04d}" for i in range(500)]


# ---- what the server offers, read once before the users start ------------------------------------


class Server:
    """Families, default versions and optional endpoints of the server under test.

    A server configured without the transformer (a CPU-only serving.yaml) has no ``transformer``
    family, no /embed and perhaps no ensemble; asking for them would only measure 404s.
    """

    families: tuple[str, ...] = FAMILIES
    versions: dict[str, str] = {}
    embed = True
    ensemble = True
    info: dict[str, Any] = {"discovered": False}


def _post(host: str, path: str, body: dict[str, Any]) -> tuple[int, Any]:
    request = urllib.request.Request(
        host.rstrip("/") + path, data=json.dumps(body).encode(), headers={"content-type": "application/json"}
    )
    try:
        with urllib.request.urlopen(request, timeout=60) as response:
            return response.status, json.loads(response.read())
    except urllib.error.HTTPError as exc:
        return exc.code, None


def discover(host: str) -> None:
    """Ask /models what is served and try the ensemble once, outside locust's statistics."""
    try:
        status, listing = _post(host, "/models", {})
        if status != 200:
            raise RuntimeError(f"/models answered {status}")
        models = listing["models"]
        sentiment = [m for m in models if m.get("task", "sentiment") == "sentiment"]
        Server.families = tuple(sorted({m["family"] for m in sentiment}))
        Server.versions = {m["family"]: m["version"] for m in sentiment if m["default"]}
        Server.embed = any(m.get("task") == "embedding" or m["family"] == "embedding" for m in models)
        Server.ensemble = _post(host, "/sentiment/ensemble", {"text": samples.MIXED})[0] == 200
        Server.info = {
            "discovered": True,
            "default_family": listing.get("default_family"),
            "models": sorted(f"{m['name']}:{m['version']}" for m in models),
            "routing": listing.get("routing"),
            "embed": Server.embed,
            "ensemble": Server.ensemble,
        }
    except Exception as exc:  # measure anyway; the failures will show what is wrong
        logger.warning("could not read what %s serves (%s: %s); sending the full mix", host, type(exc).__name__, exc)
        Server.info = {"discovered": False, "error": f"{type(exc).__name__}: {exc}"}


# ---- status counting ------------------------------------------------------------------------------


class Tally:
    """Status codes per request name, and the outcome classes run.py reports."""

    by_name: defaultdict[str, Counter[str]] = defaultdict(Counter)
    status: Counter[str] = Counter()
    expected_4xx = 0  # bad inputs answered with exactly the status they expect
    failures = 0  # every request locust counts as failed
    texts_ok = 0  # texts classified or embedded by successful requests

    @classmethod
    def as_dict(cls) -> dict[str, Any]:
        codes = {int(c): n for c, n in cls.status.items()}
        return {
            "status_counts": dict(sorted(cls.status.items())),
            "by_name": {name: dict(sorted(c.items())) for name, c in sorted(cls.by_name.items())},
            "requests": sum(cls.status.values()),
            "failures": cls.failures,
            "expected_4xx": cls.expected_4xx,
            "count_5xx": sum(n for c, n in codes.items() if c >= 500),
            "count_429": codes.get(429, 0),
            "connection_errors": codes.get(0, 0),
            "texts_ok": cls.texts_ok,
            "text_source": sent_texts.TEXT_SOURCE,
            "text_pool": {"short": len(sent_texts.SHORT), "medium": len(sent_texts.MEDIUM)},
            "server": Server.info,
        }


@events.request.add_listener
def _count(name: str, response: Any, exception: BaseException | None, context: dict[str, Any], **_: Any) -> None:
    # geventhttpclient reports a refused or reset connection as status 0.
    code = int(getattr(response, "status_code", 0) or 0)
    Tally.status[str(code)] += 1
    Tally.by_name[name][str(code)] += 1
    if exception is not None:
        Tally.failures += 1
    elif context.get("expect"):
        Tally.expected_4xx += 1
    else:
        Tally.texts_ok += context.get("texts", 0)


@events.init_command_line_parser.add_listener
def _options(parser: Any) -> None:
    parser.add_argument("--status-file", default="", help="write status-code counts as JSON here at the end")
    parser.add_argument("--bad-share", type=float, default=0.03, help="share of deliberately bad requests")
    parser.add_argument("--think-time", type=float, default=0.0, help="max seconds a user waits between requests")


@events.test_start.add_listener
def _start(environment: Environment, **_: Any) -> None:
    if environment.host:
        discover(environment.host)


def _stats_row(entry: Any) -> dict[str, Any]:
    return {
        "requests": entry.num_requests,
        "failures": entry.num_failures,
        "rps": entry.total_rps,
        "avg_ms": entry.avg_response_time,
        "p50_ms": entry.get_response_time_percentile(0.50),
        "p95_ms": entry.get_response_time_percentile(0.95),
        "p99_ms": entry.get_response_time_percentile(0.99),
        "max_ms": entry.max_response_time,
    }


def _write_tally(environment: Environment, **_: Any) -> None:
    path = environment.parsed_options.status_file if environment.parsed_options else ""
    if not path:
        return
    tally = Tally.as_dict()
    # Locust's _stats.csv is rewritten once a second while the test runs and not after it stops, so it
    # can miss the last second; these numbers come from the same statistics object, read at the end.
    tally["stats"] = {
        "aggregated": _stats_row(environment.stats.total),
        "per_name": {e.name: _stats_row(e) for e in environment.stats.entries.values()},
    }
    Path(path).parent.mkdir(parents=True, exist_ok=True)
    Path(path).write_text(json.dumps(tally, indent=2) + "\n")


# Written when the test stops and again at exit (after the users are stopped), so the file is complete.
events.test_stop.add_listener(_write_tally)
events.quitting.add_listener(_write_tally)


# ---- the simulated client -------------------------------------------------------------------------


class ApiUser(FastHttpUser):
    """One client of the API. FastHttpUser (geventhttpclient) uses a fraction of the load generator's
    CPU that HttpUser (requests) does, which matters when generator and server share 2 cores."""

    network_timeout = 60.0  # longer than the server's own 30 s timeout, so a 504 is seen as a 504
    connection_timeout = 10.0

    def wait_time(self) -> float:
        # Closed loop by default: users = requests in flight, comparable to wrk's connection count.
        options = self.environment.parsed_options
        return random.uniform(0, options.think_time) if options and options.think_time else 0.0

    @task
    def one_request(self) -> None:
        options = self.environment.parsed_options
        if random.random() < (options.bad_share if options else 0.03):
            random.choice(BAD_INPUTS)(self)
            return
        kinds: list[tuple[Any, int]] = [
            (ApiUser.sentiment_default, 58),
            (ApiUser.sentiment_explicit, 12),
            (ApiUser.batch, 16),
            (ApiUser.models, 2),
        ]
        if Server.ensemble:
            kinds.append((ApiUser.ensemble, 6))
        if Server.embed:
            kinds.append((ApiUser.embed, 6))
        action = random.choices([k for k, _ in kinds], weights=[w for _, w in kinds])[0]
        action(self)

    # -- well-formed requests --

    def _post_ok(self, path: str, name: str, body: dict[str, Any], n_texts: int, check: Any) -> None:
        with self.client.post(path, json=body, name=name, catch_response=True, context={"texts": n_texts}) as response:
            if response.status_code != 200:
                response.failure(f"status {response.status_code}: {(response.text or '')[:200]}")
                return
            try:
                problem = check(response.json())
            except Exception as exc:
                problem = f"unreadable answer: {type(exc).__name__}: {exc}"
            if problem:
                response.failure(problem)

    @staticmethod
    def _with_user(body: dict[str, Any]) -> dict[str, Any]:
        if random.random() < 0.3:
            body["user"] = random.choice(USER_KEYS)
        return body

    def sentiment_default(self) -> None:
        length = some_length()
        body = self._with_user({"text": text_of(length)})
        self._post_ok("/sentiment", f"/sentiment [default, {length}]", body, 1, _check_prediction)

    def sentiment_explicit(self) -> None:
        family = random.choice(Server.families)
        body: dict[str, Any] = {"text": text_of(some_length()), "model": family}
        if family in Server.versions and random.random() < 0.2:
            body["version"] = Server.versions[family]
        self._post_ok("/sentiment", f"/sentiment [model={family}]", self._with_user(body), 1, _check_prediction)

    def batch(self) -> None:
        n = batch_size()
        body: dict[str, Any] = {"texts": [text_of(some_length()) for _ in range(n)]}
        if random.random() < 0.25:
            body["model"] = random.choice(Server.families)
            name = f"/sentiment/batch [model={body['model']}]"
        else:
            name = f"/sentiment/batch [default, {batch_bucket(n)}]"

        def check(answer: dict[str, Any]) -> str | None:
            got = len(answer.get("predictions", []))
            return None if got == n else f"{got} predictions for {n} texts"

        self._post_ok("/sentiment/batch", name, self._with_user(body), n, check)

    def ensemble(self) -> None:
        self._post_ok(
            "/sentiment/ensemble", "/sentiment/ensemble", {"text": text_of(some_length())}, 1, _check_prediction
        )

    def embed(self) -> None:
        n = random.randint(1, 16)
        texts = [text_of(random.choice(("short", "medium"))) for _ in range(n)]

        def check(answer: dict[str, Any]) -> str | None:
            got = len(answer.get("embeddings", []))
            return None if got == n else f"{got} vectors for {n} texts"

        self._post_ok("/embed", "/embed [1-16]", {"texts": texts}, n, check)

    def models(self) -> None:
        self._post_ok("/models", "/models", {}, 0, lambda a: None if a.get("models") else "no models listed")

    # -- deliberately bad requests: each must get exactly its 4xx, never a 5xx --

    def _post_bad(self, path: str, name: str, expect: int, **kwargs: Any) -> None:
        with self.client.post(
            path, name=f"bad: {name} -> {expect}", catch_response=True, context={"expect": expect}, **kwargs
        ) as response:
            if response.status_code == expect:
                response.success()
            else:
                response.failure(f"expected {expect}, got {response.status_code}: {(response.text or '')[:200]}")

    def bad_empty_text(self) -> None:
        self._post_bad("/sentiment", "empty text", 400, json={"text": random.choice(["", "   ", "\n\t"])})

    def bad_unknown_model(self) -> None:
        self._post_bad("/sentiment", "unknown model", 404, json={"text": samples.POSITIVE, "model": "no_such_model"})

    def bad_oversize_batch(self) -> None:
        # 100 texts: over the documented limit of 64 (serving.yaml `limits`), as in the README's example.
        self._post_bad("/sentiment/batch", "oversize batch", 400, json={"texts": [samples.NEGATIVE] * 100})

    def bad_not_json(self) -> None:
        self._post_bad(
            "/sentiment", "not JSON", 400, data=b'{"text": "unterminated', headers={"content-type": "application/json"}
        )


BAD_INPUTS = [ApiUser.bad_empty_text, ApiUser.bad_unknown_model, ApiUser.bad_oversize_batch, ApiUser.bad_not_json]


def _check_prediction(answer: dict[str, Any]) -> str | None:
    return None if answer.get("label") in ("negative", "positive") else f"no label in {str(answer)[:200]}"
