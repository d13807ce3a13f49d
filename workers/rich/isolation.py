"""Belt and braces: a Chromium that cannot reach the network even if a request escapes the guard.

Every request a page makes is intercepted and answered by the guard (``intercept.py``),
so Chromium itself should never open a connection. Some traffic is not interceptable
(a preconnect, Chromium's own background requests, a WebRTC or WebSocket connection
from a worker, a redirect Chromium follows itself), so the browser is also started with:

- ``--proxy-server`` pointing at :class:`Blackhole`, a listener on 127.0.0.1 that reads the
  request line, counts it and closes the connection without answering, and
  ``--proxy-bypass-list=<-loopback>``: without it Chromium connects to loopback addresses
  directly, proxy or not;
- ``--host-resolver-rules=MAP * ~NOTFOUND, EXCLUDE 127.0.0.1``: no host name resolves
  (only the proxy's own address), so even a direct connection has no address to go to;
- ``--force-webrtc-ip-handling-policy=disable_non_proxied_udp``: WebRTC may only use the
  (blackholed) proxy, never its own UDP sockets.

The blackhole's counter is ``renderer_blackholed_requests_total``. Chromium's own
housekeeping (component updates, account checks) lands there too, so it is not zero on
an idle browser; the tests check that what a *page* asks for lands there, never on the
network.
"""

from __future__ import annotations

import asyncio
import collections
import contextlib
import logging

from workers.rich import metrics

__all__ = ["Blackhole", "isolation_flags"]

log = logging.getLogger(__name__)

_READ_TIMEOUT_S = 1.0
_KEEP_LINES = 200


def isolation_flags(proxy_port: int) -> list[str]:
    """Chromium flags that send every connection to the blackhole at ``127.0.0.1:proxy_port``."""
    return [
        f"--proxy-server=http://127.0.0.1:{proxy_port}",
        "--proxy-bypass-list=<-loopback>",
        "--host-resolver-rules=MAP * ~NOTFOUND, EXCLUDE 127.0.0.1",
        "--force-webrtc-ip-handling-policy=disable_non_proxied_udp",
        "--webrtc-ip-handling-policy=disable_non_proxied_udp",
    ]


class Blackhole:
    """A TCP listener on 127.0.0.1 that swallows proxy requests: nothing is forwarded or answered."""

    def __init__(self) -> None:
        self.port = 0
        self.requests = 0
        """Proxy requests received (a connection that sent a request line)."""
        self.lines: collections.deque[str] = collections.deque(maxlen=_KEEP_LINES)
        """The latest request lines, e.g. ``GET http://10.0.0.1/ HTTP/1.1`` (for tests and logs)."""
        self._server: asyncio.Server | None = None

    async def start(self) -> int:
        if self._server is None:
            self._server = await asyncio.start_server(self._swallow, "127.0.0.1", 0)
            self.port = int(self._server.sockets[0].getsockname()[1])
        return self.port

    async def stop(self) -> None:
        server, self._server = self._server, None
        if server is not None:
            server.close()
            with contextlib.suppress(TimeoutError):
                async with asyncio.timeout(2):
                    await server.wait_closed()

    async def _swallow(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            async with asyncio.timeout(_READ_TIMEOUT_S):
                line = await reader.readline()
        except (TimeoutError, OSError, ValueError):
            line = b""  # a preconnect: a connection that never sends a request
        finally:
            writer.close()
        if line:
            text = line[:300].decode("latin-1").strip()
            self.requests += 1
            self.lines.append(text)
            metrics.BLACKHOLED.inc()
            log.debug("blackholed a browser request that bypassed the guard: %s", text)
