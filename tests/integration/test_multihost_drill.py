"""Multi-host failure drill: every stage on two worker hosts, one host cut off mid-crawl.

Three hosts are Linux network namespaces with their own addresses on one switch
(tests/helpers/netns.py): ``svc`` runs the broker (Tansu on its LAN address), PostgreSQL
(the embedded stack's launcher, also listening on the LAN: a cut host must be a vanished TCP
peer of the server's own), S3 (served on the LAN through a port forwarder) and the demo
web; ``w1`` and ``w2`` each run every stage daemon (``python -m workers.<stage>``), joined to
the same consumer groups. Once both hosts are doing work in every hot-path stage, ``w2``'s
link is taken down at the switch: its daemons keep running but reach nobody, the broker
evicts them after the session timeout, the groups rebalance onto ``w1``, and what ``w2`` had
not committed is redelivered there. The batch must complete with 0 lost URLs, one row per
stored URL and exactly one object per stored part (tests/helpers/drill.py, run on ``svc``).

Needs root (CI runs as root); skipped only where a network namespace cannot be created.
Select it alone with ``pytest -m drill``.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

import pytest

from tests.helpers.netns import NetLab, netns_unavailable_reason

pytestmark = [pytest.mark.integration, pytest.mark.drill, pytest.mark.browser]

ROOT = Path(__file__).resolve().parents[2]
DRILL_TIMEOUT_S = 530.0
"""The drill's start-up and crawl deadlines (tests/helpers/drill.py) plus the services' start."""


@pytest.mark.timeout(DRILL_TIMEOUT_S + 60)
def test_a_worker_host_is_cut_off_mid_crawl_and_nothing_is_lost(tmp_path: Path) -> None:
    reason = netns_unavailable_reason()
    if reason is not None:
        pytest.skip(f"multi-host drill: {reason}")
    # PostgreSQL runs as `postgres`: its data dir's parents must be traversable.
    base = Path(tempfile.mkdtemp(prefix="streamcrawl-drill-"))
    os.chmod(base, 0o711)
    lab = NetLab(["svc", "w1", "w2"]).build()
    log_path = base / "drill.log"
    try:
        with log_path.open("wb") as log:
            # Output to a file, not a pipe: the daemons the drill starts would hold a pipe open.
            proc = lab.spawn(
                "svc",
                [sys.executable, "-m", "tests.helpers.drill", lab.prefix, str(base)],
                cwd=ROOT,
                stdout=log,
                stderr=subprocess.STDOUT,
            )
            try:
                code = proc.wait(timeout=DRILL_TIMEOUT_S)
            except subprocess.TimeoutExpired:
                code = None
        text = log_path.read_text(errors="replace")
        print(text[-3000:])
        if code != 0:  # every host's and stage's log, kept with pytest's tmp dirs (last 3 runs)
            for path in base.glob("*.log"):
                shutil.copy(path, tmp_path / path.name)
            print(f"drill logs kept in {tmp_path}")
        assert code is not None, f"the drill did not finish within {DRILL_TIMEOUT_S:.0f} s:\n{text[-6000:]}"
        assert code == 0, text[-8000:]
    finally:
        leftovers = lab.kill_all()
        lab.destroy()
        shutil.rmtree(base, ignore_errors=True)
    assert leftovers == [], f"the drill left processes running: {leftovers}"
