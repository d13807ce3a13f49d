"""`streamcrawl crawl --wait` driven as a user drives it: in a pseudo-terminal at 80 and 200
columns, and piped; a batch with mixed outcomes and a batch that entirely fails. The exit
codes, the breakdown by reason and the counts shown are checked against the batch's ledger
row (its real outcome); then `dlq` and `dlq replay` on the failed batch.

Real daemons as subprocesses (tests/helpers/pipeline.py) over the session's services and the
demo web (plain HTTP, so an https URL of a demo host fails its TLS handshake).
"""

from __future__ import annotations

import asyncio
import fcntl
import json
import os
import pty
import re
import select
import struct
import subprocess
import sys
import termios
import time
from collections.abc import Coroutine, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import asyncpg
import pytest

from tests.helpers.pipeline import HOT_PATH, ROOT, Pipeline
from tests.helpers.ports import free_port
from tests.integration.test_pipeline_e2e import TIMEOUT_ENV
from workers.cli.crawl_report import EXIT_NOTHING_STORED, verdict
from workers.demoweb import demo_host
from workers.ledger import BatchProgress, read_progress
from workers.settings import Settings, StackSettings
from workers.stack.demoweb import DemoWebServer
from workers.stack.environment import settings_env
from workers.stack.paths import StackPaths

pytestmark = pytest.mark.integration

_ANSI = re.compile(r"\x1b\[[0-9;]*[A-Za-z]")
_HEADLINE = re.compile(
    r"batch (?P<batch>\S+): requested (?P<requested>\d+)(?: \((?P<discovered>\d+) discovered\))? · "
    r"stored (?P<stored>\d+) · unchanged (?P<unchanged>\d+) · skipped (?P<skipped>\d+) · "
    r"dead-lettered (?P<dead>\d+) · in flight (?P<in_flight>\d+)"
)


@dataclass(frozen=True)
class Run:
    code: int
    out: str
    """Everything the user saw (a terminal merges stdout and stderr), or stdout when piped."""
    err: str = ""


@pytest.fixture(scope="module")
def stack(settings: Settings, tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[Settings, int]]:
    base = tmp_path_factory.mktemp("crawl-cli")
    web = DemoWebServer(stack=StackSettings(data_dir=base, demo_port=free_port()), paths=StackPaths.at(base))
    web.paths.ensure()
    web.ensure_running()
    pipeline = Pipeline(settings, log_dir=base / "logs", extra_env=TIMEOUT_ENV)
    pipeline.start(*HOT_PATH)
    try:
        yield settings, web.port
    finally:
        pipeline.stop()
        web.stop()


def _run_sync(coro: Coroutine[Any, Any, BatchProgress]) -> BatchProgress:
    return asyncio.run(coro)


def _env(settings: Settings) -> dict[str, str]:
    return {**os.environ, **settings_env(settings), **TIMEOUT_ENV, "PYTHONUNBUFFERED": "1"}


def _cli(settings: Settings, *args: str) -> list[str]:
    return [sys.executable, "-m", "workers.cli.main", *args]


def in_terminal(settings: Settings, *args: str, columns: int, timeout: float = 240) -> Run:
    """Run the CLI with stdin, stdout and stderr on a pseudo-terminal of ``columns`` columns."""
    master, slave = pty.openpty()
    fcntl.ioctl(slave, termios.TIOCSWINSZ, struct.pack("HHHH", 40, columns, 0, 0))
    proc = subprocess.Popen(
        _cli(settings, *args), stdin=slave, stdout=slave, stderr=slave, env=_env(settings), cwd=ROOT
    )
    os.close(slave)
    chunks: list[bytes] = []
    deadline = time.monotonic() + timeout
    try:
        while time.monotonic() < deadline:
            ready, _, _ = select.select([master], [], [], 0.5)
            if ready:
                try:
                    data = os.read(master, 65536)
                except OSError:  # EIO: the last writer closed the terminal
                    break
                if not data:
                    break
                chunks.append(data)
            elif proc.poll() is not None:
                break
        code = proc.wait(timeout=max(1.0, deadline - time.monotonic()))
    finally:
        if proc.poll() is None:
            proc.kill()
        os.close(master)
    return Run(code, b"".join(chunks).decode("utf-8", "replace"))


def piped(settings: Settings, *args: str, timeout: float = 240) -> Run:
    done = subprocess.run(
        _cli(settings, *args), capture_output=True, text=True, env=_env(settings), cwd=ROOT, timeout=timeout
    )
    return Run(done.returncode, done.stdout, done.stderr)


async def _progress(settings: Settings, batch: str) -> BatchProgress:
    conn = await asyncpg.connect(settings.postgres.dsn())
    try:
        found = await read_progress(conn, batch)
    finally:
        await conn.close()
    assert found is not None, f"batch {batch} is not in the ledger"
    return found


def _assert_matches_ledger(text: str, p: BatchProgress) -> None:
    """The counts the CLI printed are the batch's outcome, and every reason is listed once."""
    clean = _ANSI.sub("", text)
    match = _HEADLINE.search(clean)
    assert match, clean[-2000:]
    shown = {k: int(v) for k, v in match.groupdict().items() if k not in ("batch", "discovered") and v}
    assert match["batch"] == p.batch
    assert shown == {
        "requested": p.requested,
        "stored": p.stored,
        "unchanged": p.unchanged,
        "skipped": p.skipped,
        "dead": p.dead_lettered,
        "in_flight": p.in_flight,
    }
    lines = [line.rstrip("\r") for line in clean.splitlines()]
    for outcome, counts in (("skipped", p.skipped_by_reason), ("dead", p.dead_by_reason)):
        for reason, n in counts.items():
            row = [
                line for line in lines if re.fullmatch(rf"  {re.escape(reason)}\s+{n}(  e\.g\. .+)?", line)
            ]
            assert len(row) == 1, (reason, n, clean[-2000:])
            example = p.examples.get(f"{outcome}:{reason}")
            assert example is None or row[0].endswith(f"e.g. {example}")


def _progress_frames(text: str) -> list[str]:
    frames = [_ANSI.sub("", f) for f in re.split(r"[\r\n]", text)]
    return [f for f in frames if "pages/s" in f and f.strip() and not f.startswith("batch ")]


def _mixed_lists(tmp: Path, port: int) -> list[Path]:
    """Three lists over disjoint demo hosts: stored pages, a skipped PDF, 404s, a 500 and a timeout."""
    out = []
    for part in range(3):
        hosts = [demo_host(i) for i in range(1 + 3 * part, 4 + 3 * part)]
        urls = [
            f"http://{h}:{port}{path}"
            for h in hosts
            for path in ("/", "/article/1", "/missing/1", "/files/1.pdf")
        ]
        urls += [f"http://{hosts[0]}:{port}/error/1", f"http://{hosts[1]}:{port}/slow/1?delay=6"]
        path = tmp / f"mixed-{part}.txt"
        path.write_text(
            "# demo URLs\n" + "\n".join(urls) + "\nftp://files.demo.test/x\n6;site-006.demo.test\n"
        )
        out.append(path)
    return out


def test_mixed_batch_in_a_terminal_at_80_and_200_columns_and_piped(
    stack: tuple[Settings, int], tmp_path: Path
) -> None:
    settings, port = stack
    lists = _mixed_lists(tmp_path, port)
    for path, mode in zip(lists, (80, 200, "piped"), strict=True):
        batch = f"cli-mixed-{mode}-{time.time_ns()}"
        args = ("crawl", str(path), "--wait", "--batch", batch, "--timeout", "180")
        run = piped(settings, *args) if mode == "piped" else in_terminal(settings, *args, columns=int(mode))
        p = _run_sync(_progress(settings, batch))
        assert p.complete and p.stored > 0 and p.dead_lettered > 0, (mode, p.summary(), run)
        assert run.code == verdict(p, max_dead_share=0.5).code == 0, (mode, run)
        _assert_matches_ledger(run.out, p)
        seen = run.out + run.err
        n_lines = len(path.read_text().splitlines())
        assert f"line {n_lines - 1}: 'ftp://files.demo.test/x': non-HTTP(S) scheme 'ftp' refused" in seen
        assert f"line {n_lines}: '6;site-006.demo.test': ';' separates the rank from the domain" in seen
        assert f"`streamcrawl dlq --batch {batch}`" in seen
        assert "Traceback" not in seen
        if mode == "piped":
            assert "\r" not in run.err and "\x1b" not in run.err
            plain = [line for line in run.err.splitlines() if line.startswith("[")]
            assert plain and plain[-1].startswith(f"[{p.accounted}/{p.requested}]"), run.err
        else:
            frames = _progress_frames(run.out)
            assert len(frames) >= 2, run.out[-2000:]
            for frame in frames:
                assert len(frame) <= int(mode) - 1, frame
                assert "━" in frame or "─" in frame, frame
                assert re.search(r"\d+/\d+ · \d+\.\d pages/s · (ETA|finishing)", frame), frame
            if mode == 200:
                assert any("dead-lettered" in f and "in flight" in f for f in frames)
    # `status` shows the same progress model for the latest batches.
    status = json.loads(piped(settings, "status", "--json").out)
    shown = {b["batch"]: b for b in status["batches"]}
    assert batch in shown and shown[batch]["line"].startswith(
        f"{batch}  complete  [{p.accounted}/{p.requested}]"
    )
    assert {k: shown[batch][k] for k in ("stored", "skipped", "dead_lettered")} == {
        "stored": p.stored,
        "skipped": p.skipped,
        "dead_lettered": p.dead_lettered,
    }


def test_a_batch_that_entirely_fails_exits_5_with_the_breakdown_and_the_scheme_hint(
    stack: tuple[Settings, int],
) -> None:
    settings, port = stack
    batch = f"cli-tls-{time.time_ns()}"
    hosts = [demo_host(i) for i in (31, 32)]
    urls = [f"https://{h}:{port}{path}" for h in hosts for path in ("/", "/article/1")]
    run = in_terminal(settings, "crawl", *urls, "--wait", "--batch", batch, "--timeout", "180", columns=80)
    p = _run_sync(_progress(settings, batch))
    assert p.complete and p.stored == 0 and p.dead_lettered == 4, (p.summary(), run.out)
    assert run.code == EXIT_NOTHING_STORED, run.out
    _assert_matches_ledger(run.out, p)
    clean = _ANSI.sub("", run.out)
    assert "streamcrawl crawl: nothing was stored: 4 of 4 URLs dead-lettered" in clean
    assert "hint: 2 hosts failed the TLS handshake on every https URL" in clean and "--scheme http" in clean
    assert all(h in clean for h in hosts)

    # Triage: the letters of the batch, with totals; a replay through the shared code; again.
    listed = piped(settings, "dlq", "--batch", batch, "--json")
    assert listed.code == 0, listed
    doc = json.loads(listed.out)
    assert doc["total"]["matched"] == 4 and doc["total"]["urls"] == 4
    assert {row["url"] for row in doc["letters"]} == set(urls)
    assert all("TLS handshake" in row["error"] for row in doc["letters"])
    text = piped(settings, "dlq", "--batch", batch, "--stage", "ingestor")
    assert text.code == 0 and "raw.page.dlq: 4 letters match (4 URLs)" in text.out, text
    # A failed TLS handshake is not retryable: a plain replay parks it; once the cause is fixed
    # an operator replays that class anyway, without waiting out the backoff.
    replay = piped(
        settings, "dlq", "replay", "--batch", batch, "--stage", "ingestor", "--all-classes", "--backoff", "0"
    )
    assert replay.code == 0 and re.search(r"raw.page.dlq: read \d+, replayed 4, parked 0", replay.out), replay
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline:
        again = json.loads(piped(settings, "dlq", "--batch", batch, "--json").out)
        if again["total"]["matched"] == 8:
            break
        time.sleep(1)
    assert again["total"] == {**again["total"], "matched": 8, "urls": 4}
    assert _run_sync(_progress(settings, batch)).dead_lettered == 4  # the ledger counts URLs once
