"""A PostgreSQL client host that vanishes holding row locks (run by tests/integration/test_pg_lost_client.py).

``orchestrate`` runs on the lab's ``svc`` host: it starts PostgreSQL listening on the LAN,
starts ``client`` on host ``w`` with our DSN (``PostgresSettings.dsn``, timeouts from the
command line), waits until the client holds one row lock in each of three states, cuts
``w``'s link at the switch and measures how long each lock takes to come free. It prints one
JSON object: each state's server-side activity before the cut, and seconds to release (None
when still held at the deadline).

The three states are where a worker host can be when its cable is pulled mid-transaction:

- ``idle``: between statements (the server waits for the next one: ``idle in transaction``);
- ``mid_protocol``: inside an extended-protocol exchange, after Parse and before Sync (the
  server waits for the rest; no ReadyForQuery was sent, so it is not "idle");
- ``sending``: the server is writing a result the client stopped reading (blocked in
  ClientWrite with unacknowledged or unwindowed data).
"""

from __future__ import annotations

import asyncio
import json
import struct
import subprocess
import sys
import time
from pathlib import Path

import asyncpg

from tests.helpers.netns import NetLab
from tests.helpers.services import start_postgres

STATES = ("idle", "mid_protocol", "sending")
ROWS = {state: i + 1 for i, state in enumerate(STATES)}


def _message(kind: bytes, body: bytes) -> bytes:
    return kind + struct.pack("!I", len(body) + 4) + body


async def _client(dsn: str) -> None:
    conns = {state: await asyncpg.connect(dsn) for state in STATES}
    for state, conn in conns.items():
        await conn.execute("BEGIN")
        await conn.fetch("SELECT id FROM locks WHERE id = $1 FOR UPDATE", ROWS[state])
        await conn.execute("SELECT set_config('application_name', $1, true)", f"lost-{state}")
    # Raw protocol from here on: asyncpg would finish each exchange itself.
    mid = conns["mid_protocol"]._transport  # type: ignore[attr-defined]
    mid.write(_message(b"P", b"\0SELECT 1\0\0\0"))  # Parse, no Sync: the server waits for more
    sending = conns["sending"]._transport  # type: ignore[attr-defined]
    sending.pause_reading()  # the kernel's receive buffer fills, then the window closes
    sending.write(_message(b"Q", b"SELECT repeat('x', 1000000) FROM generate_series(1, 2000)\0"))
    print("ready", flush=True)
    await asyncio.sleep(3600)


async def _orchestrate(prefix: str, base: Path, timeout_s: float, lost_s: float, deadline_s: float) -> None:
    lab = NetLab(["svc", "w"], prefix=prefix)
    svc = lab.address("svc")
    component, pg = start_postgres(base / "pg", lan=svc)
    client: subprocess.Popen[bytes] | None = None
    try:
        local = pg.model_copy(update={"idle_in_transaction_timeout_s": 0, "lost_client_timeout_s": 0})
        admin = await asyncpg.connect(local.dsn())
        await admin.execute("CREATE TABLE locks (id int PRIMARY KEY)")
        await admin.execute("INSERT INTO locks SELECT generate_series(1, $1::int)", len(STATES))
        remote = pg.model_copy(
            update={"host": svc, "idle_in_transaction_timeout_s": timeout_s, "lost_client_timeout_s": lost_s}
        )
        client = lab.spawn(
            "w",
            [sys.executable, "-m", "tests.helpers.lost_client", "client", remote.dsn()],
            stdout=subprocess.PIPE,
        )
        assert client.stdout is not None
        line = await asyncio.wait_for(asyncio.to_thread(client.stdout.readline), 30)
        assert line.strip() == b"ready", line
        before: dict[str, dict[str, str | None]] = {}
        for _ in range(50):  # until the server is where each state puts it
            await asyncio.sleep(0.2)
            rows = await admin.fetch(
                "SELECT application_name, state, wait_event FROM pg_stat_activity WHERE application_name LIKE 'lost-%'"
            )
            before = {
                r["application_name"][5:]: {"state": r["state"], "wait_event": r["wait_event"]} for r in rows
            }
            if before.get("sending", {}).get("wait_event") == "ClientWrite":
                break
        lab.cut("w")
        cut_at = time.monotonic()

        async def released(state: str) -> float | None:
            conn = await asyncpg.connect(local.dsn())
            try:
                async with conn.transaction():
                    await conn.execute(f"SET LOCAL lock_timeout = {round(deadline_s * 1000)}")
                    await conn.fetch("SELECT id FROM locks WHERE id = $1 FOR UPDATE", ROWS[state])
                return round(time.monotonic() - cut_at, 1)
            except asyncpg.LockNotAvailableError:
                return None
            finally:
                await conn.close()

        after = await asyncio.gather(*(released(s) for s in STATES))
        print(json.dumps({"before": before, "released_after_s": dict(zip(STATES, after, strict=True))}))
        await admin.close()
    finally:
        if client is not None:
            client.kill()
            client.wait(10)
        component.stop()


def main() -> None:
    if sys.argv[1] == "client":
        asyncio.run(_client(sys.argv[2]))
    else:
        prefix, base, timeout_s, lost_s, deadline_s = sys.argv[2:7]
        asyncio.run(_orchestrate(prefix, Path(base), float(timeout_s), float(lost_s), float(deadline_s)))


if __name__ == "__main__":
    main()
