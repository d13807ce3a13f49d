"""Free 127.0.0.1 ports for test services, asked from the OS."""

from __future__ import annotations

import socket

from workers.stack.ports import port_free
from workers.stack.seaweed import GRPC_OFFSET

__all__ = ["free_port", "free_port_with_grpc"]

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
