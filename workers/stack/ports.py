"""Port claims: which local ports a component binds, which setting moves each, and probes."""

from __future__ import annotations

import contextlib
import socket
import time
from collections.abc import Iterable
from dataclasses import dataclass

from pydantic_settings import BaseSettings

from workers.errors import ConfigError, PortInUseError

__all__ = [
    "LOCALHOST",
    "PortClaim",
    "ensure_ports_free",
    "env_name",
    "parse_host_port",
    "port_free",
    "tcp_open",
]

LOCALHOST = "127.0.0.1"


def env_name(settings: type[BaseSettings], field: str) -> str:
    """The environment variable that sets ``field`` of a settings group, e.g. STREAMCRAWL_PG_PORT."""
    if field not in settings.model_fields:
        raise KeyError(f"{settings.__name__} has no field {field!r}")
    prefix = str(settings.model_config.get("env_prefix", ""))
    return f"{prefix}{field}".upper()


@dataclass(frozen=True, slots=True)
class PortClaim:
    """A port a component binds on 127.0.0.1 and the setting to change when it is taken."""

    port: int
    setting: str


def parse_host_port(value: str, *, setting: str) -> tuple[str, int]:
    """Split ``host:port``; a malformed value is a ConfigError naming ``setting``."""
    host, sep, port_text = value.strip().rpartition(":")
    if not sep or not host or not port_text.isdigit() or not 0 < int(port_text) < 65536:
        raise ConfigError(f"{setting}={value!r} is not host:port (e.g. 127.0.0.1:18333); fix {setting}")
    return host, int(port_text)


def port_free(port: int, host: str = LOCALHOST) -> bool:
    """True if nothing is bound to ``host:port`` (SO_REUSEADDR, so TIME_WAIT leftovers don't count)."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            sock.bind((host, port))
        except OSError:
            return False
    return True


def ensure_ports_free(component: str, claims: Iterable[PortClaim], *, grace_s: float = 1.0) -> None:
    """Raise PortInUseError for the first claimed port another process holds.

    A port is re-checked for ``grace_s`` seconds first: a server that just died may take a
    moment to release its sockets.
    """
    for claim in claims:
        if not 0 < claim.port < 65536:
            raise ConfigError(f"{component}: port {claim.port} is out of range; fix {claim.setting}")
        deadline = time.monotonic() + grace_s
        while not port_free(claim.port):
            if time.monotonic() >= deadline:
                raise PortInUseError(component=component, port=claim.port, setting=claim.setting)
            time.sleep(0.1)


def tcp_open(port: int, host: str = LOCALHOST, *, timeout: float = 0.5) -> bool:
    """True if something accepts TCP connections on ``host:port``."""
    with contextlib.suppress(OSError), socket.create_connection((host, port), timeout=timeout):
        return True
    return False
