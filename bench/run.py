"""Run every stage benchmark in its own process and write BENCHMARKS.md.

Each ``bench/stage_*.py`` exposes ``bench(*, quick: bool) -> list[dict]`` (sync or async);
rows carry our figure next to a baseline measured in the same run. A stage's rows are kept
in ``bench/results/<stage>.json`` (with the machine and commit they were measured on), so
``--only scale`` (``make bench-scale``) refreshes one stage and re-renders the whole file. Running each module in
a fresh interpreter keeps peak-RSS figures per stage and stops one stage's event loop or
threads from skewing the next.
"""

from __future__ import annotations

import argparse
import asyncio
import datetime as dt
import importlib
import inspect
import json
import os
import pathlib
import platform
import subprocess
import sys
import time
from typing import Any

ROOT = pathlib.Path(__file__).resolve().parents[1]
ORDER = ["ingestor", "router", "fast_extractor", "storage", "poll", "rich", "discovery", "e2e", "scale"]
RESULTS = ROOT / "bench" / "results"
"""Each stage's last rows (committed), so `--only STAGE` re-renders the whole of BENCHMARKS.md."""


def stage_modules() -> list[str]:
    found = sorted(p.stem.removeprefix("stage_") for p in (ROOT / "bench").glob("stage_*.py"))
    return sorted(found, key=lambda s: (ORDER.index(s) if s in ORDER else len(ORDER), s))


def run_one(stage: str, quick: bool) -> list[dict[str, Any]]:
    module = importlib.import_module(f"bench.stage_{stage}")
    result = module.bench(quick=quick)
    if inspect.isawaitable(result):
        result = asyncio.run(result)
    return list(result)


def machine() -> dict[str, str]:
    cpu = "unknown"
    try:
        for line in pathlib.Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    mem_gib = os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES") / 2**30
    commit = subprocess.run(
        ["git", "rev-parse", "--short", "HEAD"], cwd=ROOT, capture_output=True, text=True, check=False
    ).stdout.strip()
    dirty = subprocess.run(
        ["git", "status", "--porcelain", "--untracked-files=no"],
        cwd=ROOT,
        capture_output=True,
        text=True,
        check=False,
    ).stdout.strip()
    return {
        "cpu": cpu,
        "cores": str(os.cpu_count()),
        "memory": f"{mem_gib:.0f} GiB",
        "python": platform.python_version(),
        "os": platform.platform(),
        "commit": commit + (" (with uncommitted changes)" if dirty else ""),
        "date": dt.datetime.now(dt.UTC).strftime("%Y-%m-%d %H:%M UTC"),
    }


def fmt(value: Any) -> str:
    if isinstance(value, float):
        return f"{value:,.3f}" if abs(value) < 10 else f"{value:,.0f}"
    return "" if value is None else str(value)


def render(rows: list[dict[str, Any]], info: dict[str, str], failures: dict[str, str]) -> str:
    out = [
        "# Benchmarks",
        "",
        "Written by `make bench` (`python -m bench.run`). Figures are medians of repeated runs;",
        "each baseline is measured in the same run on the same machine, so compare the ratio,",
        "not absolute numbers across runs (these machines are shared and noisy).",
        "",
        "| machine | |",
        "|---|---|",
        *[f"| {k} | {v} |" for k, v in info.items()],
        "",
    ]
    sections: dict[str, list[dict[str, Any]]] = {}
    for row in rows:
        sections.setdefault(row.get("section", "?"), []).append(row)
    for section, items in sections.items():
        out += [
            f"## {section}",
            "",
            "| metric | StreamCrawl | baseline | baseline value | ratio | target | met | note |",
            "|---|---|---|---|---|---|---|---|",
        ]
        for r in items:
            value, base = r.get("value"), r.get("baseline_value")
            ratio = r.get("ratio")
            if ratio is None and isinstance(value, int | float) and isinstance(base, int | float) and base:
                ratio = value / base
            met = r.get("met")
            out.append(
                f"| {r.get('metric', '')} | {fmt(value)} | {r.get('baseline', '')} | {fmt(base)} | "
                f"{fmt(ratio) + '×' if ratio is not None else ''} | {r.get('target', '')} | "
                f"{'yes' if met else ('**no**' if met is False else '')} | {r.get('note', '')} |"
            )
        out.append("")
    if failures:
        out += ["## Stages that did not run", ""]
        out += [f"- **{stage}**: {reason}" for stage, reason in failures.items()]
        out.append("")
    return "\n".join(out)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--quick", action="store_true", help="short runs (smoke test)")
    parser.add_argument("--stage", help="run one stage in this process and print its rows as JSON")
    parser.add_argument("--only", nargs="*", help="stages to run (default: all)")
    parser.add_argument("-o", "--output", default=str(ROOT / "BENCHMARKS.md"))
    args = parser.parse_args()
    if args.stage:
        print(json.dumps(run_one(args.stage, args.quick)))
        return
    failures: dict[str, str] = {}
    info = machine()
    for stage in args.only or stage_modules():
        started = time.monotonic()
        print(f">> bench {stage} ...", file=sys.stderr, flush=True)
        cmd = [sys.executable, "-m", "bench.run", "--stage", stage] + (["--quick"] if args.quick else [])
        proc = subprocess.run(cmd, cwd=ROOT, capture_output=True, text=True, check=False)
        if proc.returncode != 0:
            failures[stage] = (proc.stderr.strip().splitlines() or ["failed"])[-1]
            print(proc.stderr[-3000:], file=sys.stderr)
            continue
        stage_rows = json.loads(proc.stdout.strip().splitlines()[-1])
        if not args.quick:
            RESULTS.mkdir(parents=True, exist_ok=True)
            (RESULTS / f"{stage}.json").write_text(
                json.dumps({"machine": info, "rows": stage_rows}, indent=1, default=str) + "\n"
            )
        print(f"   {len(stage_rows)} rows in {time.monotonic() - started:.0f}s", file=sys.stderr)
    rows: list[dict[str, Any]] = []
    for stage in stage_modules():
        saved = RESULTS / f"{stage}.json"
        if saved.exists() and not args.quick:
            data = json.loads(saved.read_text())
            for row in data["rows"]:
                row.setdefault("note", "")
                if data["machine"].get("commit") != info["commit"]:
                    row["note"] = f"{row['note']} (measured at {data['machine'].get('commit')})".strip()
            rows.extend(data["rows"])
    pathlib.Path(args.output).write_text(render(rows, info, failures))
    print(f"wrote {args.output}", file=sys.stderr)


if __name__ == "__main__":
    main()
