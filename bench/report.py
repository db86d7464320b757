"""Turn one benchmark run into a goal check, a Markdown report and JSON files."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

BATCHING_ON = "BentoML entry → runner, adaptive batching (defaults)"
BATCHING_OFF = "BentoML entry → runner, batching off"
GOAL_CONCURRENCY = (32, 64)
TARGETS = {"vs_batching_off": 2.5, "vs_best_peer": 1.5, "of_inprocess_limit": 0.8}


def _server(result: dict[str, Any], name: str) -> dict[str, Any] | None:
    return next((s for s in result.get("servers", []) if s["name"] == name), None)


def _point(server: dict[str, Any] | None, c: int) -> dict[str, Any] | None:
    if server is None:
        return None
    return next((p for p in server["points"] if p["concurrency"] == c), None)


PEER_KINDS = ("fastapi", "ray", "litserve", "mlserver")


def runtime_limit(result: dict[str, Any], runtime: str | None) -> tuple[float | None, str]:
    """The in-process limit of ``runtime``: its best sentences/s at batch 16 or 64 (one forward pass or
    the runner's length-sorted passes), and which runtime that was."""
    table = result.get("inprocess_runtimes") or {}
    measured = table.get(runtime or "") or result.get("inprocess")
    if not measured:
        return None, ""
    best = 0.0
    for p in measured.get("points", []):
        if p["batch_size"] in (16, 64):
            best = max(best, p["sentences_per_s"], p.get("chunked_sentences_per_s") or 0.0)
    return best or None, measured.get("runtime", "fp32")


def goals(result: dict[str, Any]) -> list[dict[str, Any]]:
    """Each goal at each goal concurrency: the measured ratio, the target and met / not met."""
    on = _server(result, BATCHING_ON)
    if on is None:
        return []
    off = _server(result, BATCHING_OFF)
    peers = [s for s in result["servers"] if s["kind"] in PEER_KINDS]
    limit, limit_runtime = runtime_limit(result, on.get("runtime"))
    rows: list[dict[str, Any]] = []

    def add(goal: str, c: int | None, value: float | None, target: float, detail: str, extra_ok: bool = True) -> None:
        met = None if value is None else (value >= target and extra_ok)
        rows.append(
            {
                "goal": goal,
                "concurrency": c,
                "value": None if value is None else round(value, 2),
                "target": target,
                "met": met,
                "detail": detail,
            }
        )

    for c in GOAL_CONCURRENCY:
        p_on = _point(on, c)
        if p_on is None:
            continue
        rate = p_on["ok_per_s"]
        p_off = _point(off, c)
        if p_off:
            add(
                "≥ 2.5× batching off",
                c,
                rate / p_off["ok_per_s"] if p_off["ok_per_s"] else None,
                TARGETS["vs_batching_off"],
                f"{rate:.0f} vs {p_off['ok_per_s']:.0f} req/s",
            )
        at_c = [(s["name"], p) for s in peers if (p := _point(s, c))]
        if at_c:
            name, p_best = max(at_c, key=lambda x: x[1]["ok_per_s"])
            p99_ok = p_on["latency_ms"]["p99"] <= p_best["latency_ms"]["p99"]
            add(
                "≥ 1.5× the best peer, p99 no worse than its",
                c,
                rate / p_best["ok_per_s"] if p_best["ok_per_s"] else None,
                TARGETS["vs_best_peer"],
                f"{rate:.0f} vs {p_best['ok_per_s']:.0f} req/s ({name}); p99 {p_on['latency_ms']['p99']:.0f} vs "
                f"{p_best['latency_ms']['p99']:.0f} ms ({'no worse' if p99_ok else 'WORSE'})",
                extra_ok=p99_ok,
            )
        if limit:
            add(
                "≥ 80 % of the in-process limit of the same runtime",
                c,
                rate / limit,
                TARGETS["of_inprocess_limit"],
                f"{rate:.0f} req/s vs {limit:.0f} sentences/s ({limit_runtime}, best of batch 16 / 64)",
            )
    bad = sum(p["n_5xx"] for p in on["points"])
    shed = sum(p["n_503"] + p["n_429"] for p in on["points"])
    sock = sum(sum(p["socket_errors"].values()) for p in on["points"])
    rows.append(
        {
            "goal": "zero 5xx, zero shed (429/503), zero socket errors at default knobs",
            "concurrency": None,
            "value": bad + shed + sock,
            "target": 0,
            "met": bad == 0 and shed == 0 and sock == 0,
            "detail": f"5xx {bad}, shed {shed}, socket errors {sock}, over every point and repeat",
        }
    )
    return rows


# ---- Markdown -------------------------------------------------------------------------------------


def _fmt(x: float | None, digits: int = 0) -> str:
    return "–" if x is None else f"{x:.{digits}f}"


def _sizes(batches: dict[str, Any] | None) -> str:
    if not batches or not batches.get("batches"):
        return "–"
    return ", ".join(f"{k}: {v}" for k, v in batches["sizes"].items())


def markdown(result: dict[str, Any]) -> str:
    m, v = result["machine"], result["versions"]
    method = result["method"]
    lines = [
        f"# Benchmark: {result['suite']} suite{' (quick mode: not a measurement)' if result.get('quick') else ''}",
        "",
        f"- date: {result['date']} – {result.get('finished', '')} (UTC)",
        f"- machine: {m['cpu_model']}, {m['usable_cores']} usable cores ({m['logical_cores']} logical), "
        f"{m['memory_gib']} GiB, {m['gpu']}; {m['platform']}",
        f"- versions: Python {v['python']}, bentoml {v['bentoml']}, torch {v['torch']}, transformers "
        f"{v['transformers']}, tokenizers {v['tokenizers']}, uvicorn {v['uvicorn']}, {v['wrk']}"
        + (
            f"; peers: ray {v['peers_env'].get('ray')}, fastapi {v['peers_env'].get('fastapi')}, "
            f"litserve {v['peers_env'].get('litserve')}"
            + (f", mlserver {v['mlserver_env'].get('mlserver')}" if v.get("mlserver_env") else "")
            if v.get("peers_env")
            else ""
        ),
        f"- model: `{result['model']['tag']}`; inputs: {result['inputs']['count']} {result['inputs']['source']} "
        f"(mean {result['inputs']['mean_words']} words)",
        f"- load: {method['load_generator']}; {method['requests_per_point']} requests per point, median of "
        f"{method['repeats']}, {method['warmup_requests']} warm-up requests; {method['endpoint']}",
        f"- load average (1/5/15 min) at start {result['load_average_start']}, at end "
        f"{result.get('load_average_end')}"
        + (f"; waited {result['quiet_wait']['waited_s']} s for a quiet machine" if result.get("quiet_wait") else ""),
        "",
    ]
    inproc = result.get("inprocess")
    if inproc:
        lines += [
            f"## The limit: in-process `TransformerPipeline.predict_proba`, {inproc['threads']} torch threads",
            "",
            "| batch size | sentences/s, one forward pass | ms per batch | sentences/s, length-sorted forward passes |",
            "|---:|---:|---:|---:|",
        ]
        lines += [
            f"| {p['batch_size']} | {p['sentences_per_s']:.0f} | {p['ms_per_batch']:.1f} | "
            + (
                f"{p['chunked_sentences_per_s']:.0f} (of {p['forward_batch_size']})"
                if p.get("chunked_sentences_per_s")
                else "–"
            )
            + " |"
            for p in inproc["points"]
        ]
        if "other_cores" in inproc:
            lines += [
                "",
                f"Cores used by the measuring process: {inproc['cores']:.2f}; by other processes meanwhile: "
                f"{inproc['other_cores']:.2f}.",
            ]
        b = inproc["breakdown"]
        lines += [
            "",
            f"One batch of {b['batch_size']}: tokenising {b['tokenize_ms']:.1f} ms, encoder + head "
            f"{b['forward_ms']:.1f} ms.",
            "",
        ]
    table = result.get("inprocess_runtimes") or {}
    if len(table) > 1 or any(t.get("accuracy") for t in table.values()):
        sizes = [p["batch_size"] for p in next(iter(table.values()))["points"]]
        lines += [
            "## Runtimes: in-process speed and accuracy (same weights, same process layout)",
            "",
            "| runtime | " + " | ".join(f"bs {n}" for n in sizes) + " | best, passes of 16 | movie test accuracy |",
            "|---|" + "---:|" * (len(sizes) + 2),
        ]
        for name, t in table.items():
            best = max((p.get("chunked_sentences_per_s") or 0.0 for p in t["points"]), default=0.0)
            acc = (t.get("accuracy") or {}).get("accuracy")
            lines.append(
                f"| {name} | "
                + " | ".join(f"{p['sentences_per_s']:.0f}" for p in t["points"])
                + f" | {_fmt(best or None)} | {_fmt(acc, 4)} |"
            )
        lines += ["", "sentences/s; the runner runs the runtime `auto` picks (see each server's runtime below).", ""]
    one = result.get("inprocess_1_thread")
    if one:
        lines += ["With 1 torch thread instead:", "", "| batch size | sentences/s |", "|---:|---:|"]
        lines += [f"| {p['batch_size']} | {p['sentences_per_s']:.0f} |" for p in one["points"]]
        lines.append("")
    servers = result.get("servers", [])
    conc = method["concurrency"]
    if servers:
        cores_at = 32 if 32 in conc else conc[-1]
        lines += [
            "## Throughput (successful requests/s)",
            "",
            "| server | " + " | ".join(f"c={c}" for c in conc) + f" | server cores at c={cores_at} |",
            "|---|" + "---:|" * (len(conc) + 1),
        ]
        for s in servers:
            cells = [_fmt((_point(s, c) or {}).get("ok_per_s")) for c in conc]
            pc = _point(s, cores_at)
            server_cores = pc["cores"]["server"] if pc else None
            lines.append(f"| {s['name']} | " + " | ".join(cells) + f" | {_fmt(server_cores, 2)} |")
        lines += [
            "",
            "## Every point",
            "",
            "| server | c | req/s | p50 ms | p95 ms | p99 ms | 429 | 503 | 5xx | mean batch | batch sizes "
            "(batches) | server cores | wrk cores | other cores | load avg before |",
            "|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---|---:|---:|---:|---|",
        ]
        for s in servers:
            for p in s["points"]:
                lat = p["latency_ms"]
                batches = p.get("batches") or {}
                lines.append(
                    f"| {s['name']} | {p['concurrency']} | {p['ok_per_s']:.0f} | {lat['p50']:.1f} | {lat['p95']:.1f} "
                    f"| {lat['p99']:.1f} | {p['n_429']} | {p['n_503']} | {p['n_5xx']} "
                    f"| {_fmt(batches.get('mean_batch'), 1)} | {_sizes(batches)} | {p['cores']['server']:.2f} "
                    f"| {p['cores']['loadgen']:.2f} | {p.get('other_cores', 0):.2f} | {p['load_average_before'][0]} |"
                )
        lines += [
            "",
            f"## Where the cores go at c={cores_at} (cores per process, and CPU milliseconds per request)",
            "",
        ]
        for s in servers:
            pc = _point(s, cores_at)
            if pc:
                per = pc["cores"].get("cpu_ms_per_request", {})
                parts = ", ".join(
                    f"{k} {v:.2f} ({per.get(k, 0):.1f} ms/request)" for k, v in pc["cores"]["by_process"].items()
                )
                lines.append(f"- {s['name']}: {parts}")
        lines += ["", "## Configurations", ""]
        for s in servers:
            lines.append(
                f"- **{s['name']}** ({s['kind']}): {s['description']}. Started in "
                f"{s['settings'].get('start_seconds')} s; runtime {s.get('runtime') or '–'}; largest "
                f"|p(positive) − in-process fp32| on the probe sentences: {s['probe_max_abs_diff_vs_inprocess']:.1e}"
            )
    for skipped in result.get("skipped") or []:
        lines += ["", f"Skipped **{skipped['name']}**: {skipped['reason'].splitlines()[0]}"]
    if result.get("goals"):
        lines += [
            "",
            "## Goals (ratios from this run)",
            "",
            "| goal | c | measured | target | met | detail |",
            "|---|---:|---:|---:|---|---|",
        ]
        for g in result["goals"]:
            met = {True: "met", False: "**not met**", None: "–"}[g["met"]]
            lines.append(
                f"| {g['goal']} | {g['concurrency'] or 'all'} | {_fmt(g['value'], 2)} | {g['target']} | {met} "
                f"| {g['detail']} |"
            )
    lines.append("")
    return "\n".join(lines)


def write(result: dict[str, Any], out: Path) -> list[Path]:
    """``<suite>.json`` / ``<suite>.md`` (the latest run) and time-stamped copies of both."""
    out.mkdir(parents=True, exist_ok=True)
    stamp = result["date"].replace(":", "").replace("-", "").replace("+0000", "")[:15]
    name = result["suite"] + ("-quick" if result.get("quick") else "")
    text_json = json.dumps(result, indent=2, ensure_ascii=False) + "\n"
    text_md = markdown(result)
    paths = []
    for base in (f"{name}", f"{name}-{stamp}"):
        (out / f"{base}.json").write_text(text_json)
        (out / f"{base}.md").write_text(text_md)
        paths += [out / f"{base}.json", out / f"{base}.md"]
    return paths
