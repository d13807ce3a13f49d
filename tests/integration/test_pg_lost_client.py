"""A worker host that vanishes mid-transaction does not hold its row locks for long.

A host cut off the network sends no FIN or RST: PostgreSQL's backend for it keeps its locks
until something on the server side gives up on the client, and every other writer of those
rows (the other hosts' discovery daemons, on the batch's ledger rows) waits behind it. CI's
multi-host drill hung that way with the idle-in-transaction timeout alone: the idle timeout
only runs while the server waits for a new statement. ``PostgresSettings.dsn`` also sets TCP
keepalives and ``tcp_user_timeout`` for the session; this test puts a client in each of the
three states (tests/helpers/lost_client.py), pulls its cable and times the locks' release,
once with the idle timeout only (the two other states must still be held: the scenario is
real) and once with both.

Needs root (network namespaces); skipped only where a namespace cannot be created.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import tempfile
from pathlib import Path

import pytest

from tests.helpers.netns import NetLab, netns_unavailable_reason

pytestmark = [pytest.mark.integration, pytest.mark.drill]

ROOT = Path(__file__).resolve().parents[2]
TIMEOUT_S = 3.0
"""Both timeouts in the test (the defaults are 30 s)."""
SLACK_S = 4.0


def _run(lost_s: float, deadline_s: float) -> dict[str, dict[str, object]]:
    base = Path(tempfile.mkdtemp(prefix="streamcrawl-lost-"))
    os.chmod(base, 0o711)  # PostgreSQL runs as `postgres`: its data dir's parents must be traversable
    lab = NetLab(["svc", "w"]).build()
    try:
        argv = [sys.executable, "-m", "tests.helpers.lost_client", "orchestrate", lab.prefix, str(base)]
        proc = lab.spawn(
            "svc",
            [*argv, str(TIMEOUT_S), str(lost_s), str(deadline_s)],
            cwd=ROOT,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
        )
        out, err = proc.communicate(timeout=deadline_s + 90)
        assert proc.returncode == 0, err.decode(errors="replace")[-4000:]
        result: dict[str, dict[str, object]] = json.loads(out.decode().strip().splitlines()[-1])
        print(result)
        return result
    finally:
        lab.destroy()
        subprocess.run(["rm", "-rf", str(base)], check=False)


@pytest.fixture(autouse=True)
def _needs_netns() -> None:
    reason = netns_unavailable_reason()
    if reason is not None:
        pytest.skip(f"lost-client drill: {reason}")


@pytest.mark.timeout(180)
def test_the_idle_timeout_alone_frees_only_the_idle_session() -> None:
    result = _run(lost_s=0.0, deadline_s=3 * TIMEOUT_S + SLACK_S)
    before, released = result["before"], result["released_after_s"]
    assert before["idle"]["state"] == "idle in transaction", before  # type: ignore[index]
    assert before["sending"]["wait_event"] == "ClientWrite", before  # type: ignore[index]
    assert released["idle"] is not None and released["idle"] <= TIMEOUT_S + SLACK_S, released  # type: ignore[operator]
    # Neither of these is "idle in transaction": without the TCP settings they stay locked.
    assert released["mid_protocol"] is None and released["sending"] is None, released


@pytest.mark.timeout(180)
def test_every_state_of_a_vanished_client_releases_its_locks_within_the_timeout() -> None:
    result = _run(lost_s=TIMEOUT_S, deadline_s=3 * TIMEOUT_S + SLACK_S)
    released = result["released_after_s"]
    for state, seconds in released.items():
        assert seconds is not None and seconds <= TIMEOUT_S + SLACK_S, (state, result)  # type: ignore[operator]
