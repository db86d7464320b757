"""The batch-size histogram from a server's Prometheus ``/metrics``.

The runners observe, for every call of a batchable API, the number of texts that went through the model
together (``bundle_runner_batch_inputs``, labels ``runner`` and ``method``; runners/batch_metrics.py).
BentoML's own ``bentoml_service_adaptive_batch_size`` counts requests instead, and the entry service
sends one request per coalesced group, so it would understate the batches. Scraping before and after a
point and subtracting gives the batches formed during that point.
"""

from __future__ import annotations

import math
import re

from bench.servers import http

_LINE = re.compile(r"^(?P<name>[a-zA-Z_:][a-zA-Z0-9_:]*)(?:\{(?P<labels>[^}]*)\})?\s+(?P<value>\S+)")
_LABEL = re.compile(r'(\w+)="((?:[^"\\]|\\.)*)"')


METRIC = "bundle_runner_batch_inputs"


def scrape(url: str, runner: str = "gpu", task: str = "sentiment") -> dict[str, float]:
    """Cumulative histogram of one runner and task: ``{"le=1": n, ..., "le=+Inf": n, "sum": s, "count": n}``.

    Summed over worker indexes. Empty when the server has no such series yet.
    """
    status, body = http("GET", url, timeout=10)
    if status != 200:
        raise RuntimeError(f"{url} answered {status}")
    out: dict[str, float] = {}
    for line in body.decode().splitlines():
        if not line or line.startswith("#") or not line.startswith(METRIC):
            continue
        m = _LINE.match(line)
        if not m:
            continue
        labels = dict(_LABEL.findall(m.group("labels") or ""))
        if labels.get("runner") != runner or labels.get("task") != task:
            continue
        name = m.group("name")
        if name.endswith("_bucket"):
            key = f"le={labels['le']}"
        elif name.endswith("_sum"):
            key = "sum"
        elif name.endswith("_count"):
            key = "count"
        else:
            continue
        out[key] = out.get(key, 0.0) + float(m.group("value"))
    return out


def _le(key: str) -> float:
    return math.inf if key.endswith("+Inf") else float(key[3:])


def difference(before: dict[str, float], after: dict[str, float]) -> dict[str, object]:
    """Batches formed between two scrapes: count, mean size, and how many fell in each size range."""
    count = after.get("count", 0.0) - before.get("count", 0.0)
    total = after.get("sum", 0.0) - before.get("sum", 0.0)
    buckets = sorted((k for k in after if k.startswith("le=")), key=_le)
    ranges: dict[str, int] = {}
    previous_le, previous_n = 0.0, 0.0
    for key in buckets:
        le = _le(key)
        n = after[key] - before.get(key, 0.0)
        in_range = int(round(n - previous_n))
        if in_range:
            low = math.floor(previous_le) + 1
            label = "+Inf" if math.isinf(le) else (f"{low:g}" if low == le else f"{low:g}-{le:g}")
            if math.isinf(le):
                label = f">{previous_le:g}"
            ranges[label] = in_range
        previous_le, previous_n = le, n
    return {
        "batches": int(round(count)),
        "texts": int(round(total)),
        "mean_batch": round(total / count, 2) if count else None,
        "sizes": ranges,
    }
