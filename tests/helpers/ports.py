"""Free 127.0.0.1 ports for test services, asked from the OS."""

from __future__ import annotations

import random
import socket

from workers.stack.ports import port_free
from workers.stack.seaweed import GRPC_OFFSET

__all__ = ["free_port", "free_port_block", "free_port_with_grpc"]

_handed_out: set[int] = set()


def free_port() -> int:
    """A port nothing listens on now (never the same one twice in a session)."""
    while True:
        with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
            sock.bind(("127.0.0.1", 0))
            port = int(sock.getsockname()[1])
        if port not in _handed_out:
            _handed_out.add(port)
            return port


def free_port_with_grpc() -> int:
    """A free port whose SeaweedFS gRPC companion (port + 10000) is free and valid too."""
    for _ in range(1000):
        port = free_port()
        grpc = port + GRPC_OFFSET
        if grpc < 65536 and grpc not in _handed_out and port_free(grpc):
            _handed_out.add(grpc)
            return port
    raise RuntimeError("no free port pair for SeaweedFS")


def free_port_block(size: int = 100) -> int:
    """The first of ``size`` consecutive free ports below the kernel's ephemeral range.

    For STREAMCRAWL_METRICS_BASE_PORT (each daemon binds base + its offset): ports the OS hands
    out for outgoing connections (32768 and up) could be taken by a client socket meanwhile.
    """
    rng = random.Random()
    for _ in range(200):
        base = rng.randrange(20000, 32000 - size, 100)
        block = range(base, base + size)
        if not _handed_out.intersection(block) and all(port_free(p) for p in block):
            _handed_out.update(block)
            return base
    raise RuntimeError(f"no block of {size} free ports")
