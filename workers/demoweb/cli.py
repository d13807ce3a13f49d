"""``python -m workers.demoweb [serve|urls|tranco|bench]``.

serve (the default command)
    ``--port P`` (0: a free port; printed, and written to ``--port-file`` once serving)
    ``--processes N`` server processes sharing the port with SO_REUSEPORT; plus one flag per
    DemoWebConfig field (``--data-dir``, ``--link-hosts``, ``--crawl-delay-s``, ...).
urls
    One URL per line (``--json``: one JSON object per line with kind/expected/route/reason/marker).
tranco
    A ``rank,domain`` CSV of the demo hosts.
bench
    A plain aiohttp fetch loop against a running demo web; prints requests/s as JSON.
"""

from __future__ import annotations

import argparse
import asyncio
import dataclasses
import json
import logging
import multiprocessing
import multiprocessing.connection
import os
import shutil
import signal
import sys
import tempfile
from collections.abc import Callable, Coroutine, Sequence
from pathlib import Path
from typing import Any

from workers.demoweb.app import DemoWebConfig
from workers.demoweb.hosts import demo_host
from workers.demoweb.server import bind_socket, serve_socket
from workers.demoweb.urls import KINDS, data_urls, demo_tranco_csv, demo_urls

__all__ = ["main"]

log = logging.getLogger("workers.demoweb")
_COMMANDS = ("serve", "urls", "tranco", "bench")


def _run(coro: Coroutine[Any, Any, None]) -> None:
    try:
        import uvloop
    except ImportError:  # optional: ~1.5x more requests/s when present
        asyncio.run(coro)
    else:
        uvloop.run(coro)


async def _watch_parent(parent_pid: int, stop: asyncio.Event) -> None:
    """Stop when the parent dies (e.g. SIGKILL): no orphaned servers holding the port."""
    while True:
        await asyncio.sleep(1.0)
        if os.getppid() != parent_pid:
            stop.set()
            return


async def _serve(
    config: DemoWebConfig,
    port: int,
    *,
    reuse_port: bool,
    on_ready: Callable[[int], None],
    parent_pid: int | None = None,
) -> None:
    sock = bind_socket(port, reuse_port=reuse_port)
    bound = int(sock.getsockname()[1])
    runner = await serve_socket(config, sock)
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, stop.set)
    watchdog = asyncio.create_task(_watch_parent(parent_pid, stop)) if parent_pid else None
    on_ready(bound)
    try:
        await stop.wait()
    finally:
        if watchdog is not None:
            watchdog.cancel()
        await runner.cleanup()


def _child(config: DemoWebConfig, port: int, ready: Any, level: str, parent_pid: int) -> None:
    logging.basicConfig(level=level, format="%(asctime)s demoweb[%(process)d] %(levelname)s %(message)s")
    on_ready: Callable[[int], None] = lambda _port: ready.put(os.getpid())  # noqa: E731
    _run(_serve(config, port, reuse_port=True, on_ready=on_ready, parent_pid=parent_pid))


def _announce(port: int, processes: int, port_file: Path | None) -> None:
    if port_file is not None:
        tmp = port_file.with_name(port_file.name + ".tmp")
        tmp.write_text(f"{port}\n")
        tmp.replace(port_file)
    print(
        f"demoweb: serving *.demo.test on 127.0.0.1:{port} with {processes} process(es); "
        f"try http://{demo_host(1)}:{port}/",
        flush=True,
    )


def _serve_many(config: DemoWebConfig, port: int, processes: int, port_file: Path | None, level: str) -> int:
    ctx = multiprocessing.get_context("spawn")
    probe = bind_socket(port, reuse_port=True, listen=False)  # reserves the port until the children listen
    port = int(probe.getsockname()[1])
    own_state = config.state_dir is None
    if own_state:
        config = dataclasses.replace(config, state_dir=Path(tempfile.mkdtemp(prefix="demoweb-state-")))
    ready = ctx.Queue()
    children = [
        ctx.Process(target=_child, args=(config, port, ready, level, os.getpid())) for _ in range(processes)
    ]
    stopping = False

    def _stop(_sig: int, _frame: object) -> None:
        nonlocal stopping
        stopping = True

    signal.signal(signal.SIGTERM, _stop)
    signal.signal(signal.SIGINT, _stop)
    code = 0
    try:
        for child in children:
            child.start()
        for _ in children:
            ready.get(timeout=30)
        probe.close()
        _announce(port, processes, port_file)
        while not stopping:
            dead = multiprocessing.connection.wait([c.sentinel for c in children], timeout=0.2)
            if dead and not stopping:
                log.error("a demo web process exited unexpectedly; stopping the others")
                code = 1
                break
    finally:
        probe.close()
        for child in children:
            if child.is_alive():
                child.terminate()
        for child in children:
            child.join(5)
            if child.is_alive():
                child.kill()
                child.join()
        if own_state and config.state_dir is not None:
            shutil.rmtree(config.state_dir, ignore_errors=True)
    return code


def _config_flags(parser: argparse.ArgumentParser) -> None:
    for f in dataclasses.fields(DemoWebConfig):
        kind: Callable[[str], Any] = Path if "Path" in str(f.type) else (int if f.type == "int" else float)
        parser.add_argument("--" + f.name.replace("_", "-"), dest=f.name, type=kind, default=f.default)


def _build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="python -m workers.demoweb",
        description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    sub = parser.add_subparsers(dest="command", required=True)
    serve = sub.add_parser("serve", help="serve the demo web (default command)")
    serve.add_argument("--port", type=int, default=0, help="port on 127.0.0.1; 0 picks a free one")
    serve.add_argument("--processes", type=int, default=1, help="server processes (SO_REUSEPORT)")
    serve.add_argument("--port-file", type=Path, help="write the port here once serving")
    serve.add_argument("--log-level", default="INFO")
    _config_flags(serve)
    urls = sub.add_parser("urls", help="print a URL list over the demo web")
    urls.add_argument("--port", type=int, required=True)
    urls.add_argument("--hosts", type=int, default=60)
    urls.add_argument("--per-host", type=int, default=10)
    urls.add_argument("--seed", type=int, default=0)
    urls.add_argument("--no-failures", action="store_true", help="only pages that should be stored")
    urls.add_argument("--failures-each", type=int, help="URLs per failure kind (default: 1 per 200)")
    urls.add_argument(
        "--exclude", action="append", default=[], choices=sorted(KINDS), help="leave a kind out"
    )
    urls.add_argument("--timeout-delay-s", type=float, default=60.0)
    urls.add_argument("--data", action="store_true", help="append the ../shared/data pages")
    urls.add_argument("--data-dir", type=Path)
    urls.add_argument("--json", action="store_true", help="JSON lines with the expected outcomes")
    tranco = sub.add_parser("tranco", help="print a rank,domain CSV of demo hosts")
    tranco.add_argument("--hosts", type=int, default=60)
    tranco.add_argument("--port", type=int, help="append :PORT to each domain")
    tranco.add_argument("--start-rank", type=int, default=1)
    bench = sub.add_parser("bench", help="load-test a running demo web with a plain aiohttp loop")
    bench.add_argument("--port", type=int, required=True)
    bench.add_argument("--hosts", type=int, default=60)
    bench.add_argument("--per-host", type=int, default=10)
    bench.add_argument("--concurrency", type=int, default=100)
    bench.add_argument("--seconds", type=float, default=10.0)
    bench.add_argument("--clients", type=int, default=1, help="client processes, each with --concurrency")
    bench.add_argument("--warmup-s", type=float, default=3.0, help="fill the server caches first")
    bench.add_argument("--server-pid", type=int, help="report the CPU this process tree used")
    return parser


def _bench(args: argparse.Namespace) -> int:
    from workers.demoweb.loadgen import run_bench

    result = run_bench(
        port=args.port,
        hosts=args.hosts,
        per_host=args.per_host,
        concurrency=args.concurrency,
        seconds=args.seconds,
        clients=args.clients,
        warmup_s=args.warmup_s,
        server_pid=args.server_pid,
    )
    sys.stdout.write(json.dumps(result) + "\n")
    return 0


def main(argv: Sequence[str] | None = None) -> int:
    args_list = list(sys.argv[1:] if argv is None else argv)
    if not args_list or args_list[0] not in (*_COMMANDS, "-h", "--help"):
        args_list.insert(0, "serve")
    args = _build_parser().parse_args(args_list)
    if args.command == "urls":
        items = demo_urls(
            port=args.port,
            hosts=args.hosts,
            per_host=args.per_host,
            include_failures=not args.no_failures,
            seed=args.seed,
            failures_each=args.failures_each,
            exclude_kinds=args.exclude,
            timeout_delay_s=args.timeout_delay_s,
        )
        if args.data:
            items += data_urls(port=args.port, data_dir=args.data_dir)
        for item in items:
            sys.stdout.write((json.dumps(item.to_json()) if args.json else item.url) + "\n")
        return 0
    if args.command == "bench":
        return _bench(args)
    if args.command == "tranco":
        sys.stdout.write(demo_tranco_csv(hosts=args.hosts, port=args.port, start_rank=args.start_rank))
        return 0
    logging.basicConfig(
        level=args.log_level, format="%(asctime)s demoweb[%(process)d] %(levelname)s %(message)s"
    )
    config = DemoWebConfig(**{f.name: getattr(args, f.name) for f in dataclasses.fields(DemoWebConfig)})
    if args.processes > 1:
        return _serve_many(config, args.port, args.processes, args.port_file, args.log_level)
    _run(
        _serve(config, args.port, reuse_port=False, on_ready=lambda port: _announce(port, 1, args.port_file))
    )
    return 0
