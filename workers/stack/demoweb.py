"""The offline demo web as a stack component: started by `streamcrawl demo`, stopped by `down`."""

from __future__ import annotations

import signal
import sys

from workers.settings import StackSettings
from workers.stack.component import Component
from workers.stack.paths import StackPaths
from workers.stack.ports import LOCALHOST, PortClaim, env_name, tcp_open
from workers.stack.process import ProcessSpec

__all__ = ["DemoWebServer"]


class DemoWebServer(Component):
    name = "demoweb"
    ready_timeout_s = 30.0
    stop_signal = signal.SIGTERM
    stop_timeout_s = 5.0

    def __init__(self, *, stack: StackSettings, paths: StackPaths) -> None:
        super().__init__(run_dir=paths.run, log_dir=paths.logs)
        self.port = stack.demo_port
        self.paths = paths

    def address(self) -> str:
        return f"http://{LOCALHOST}:{self.port} (hosts *.demo.test)"

    def port_claims(self) -> list[PortClaim]:
        return [PortClaim(self.port, env_name(StackSettings, "demo_port"))]

    def spec(self) -> ProcessSpec:
        return self.process_spec([sys.executable, "-m", "workers.demoweb", "serve", "--port", str(self.port)])

    def probe(self) -> bool:
        return tcp_open(self.port)
