"""Real pages from ../shared/data under their own demo hosts.

- ``readability.demo.test/<name>/`` serves ``readability/test/test-pages/<name>/source.html``
  (other files of that folder by name, e.g. ``/<name>/expected.html``);
- ``spa.demo.test/<app>/`` serves a built TodoMVC app (``index.html`` and its relative assets,
  paths taken from ``spa/manifest.json``);
- ``rendertron.demo.test/<file>`` serves ``spa/rendertron/test-resources/<file>``.

The root of each host is an index page linking to everything it serves. The data
directory is, in order: the explicit argument, ``STREAMCRAWL_DEMO_DATA_DIR``, then
``../shared/data`` next to the repository (or the working directory). When it is missing
these hosts answer 404 and one warning is logged at start.
"""

from __future__ import annotations

import json
import logging
import mimetypes
import os
from dataclasses import dataclass
from html import escape
from pathlib import Path
from typing import Final

__all__ = ["DATA_DIR_ENV", "DataFiles", "FileReply", "SpaApp", "locate_data_dir"]

log = logging.getLogger(__name__)

DATA_DIR_ENV: Final = "STREAMCRAWL_DEMO_DATA_DIR"
_READABILITY: Final = Path("readability/test/test-pages")
_TODOMVC: Final = Path("spa/todomvc")
_RENDERTRON: Final = Path("spa/rendertron/test-resources")


def locate_data_dir(explicit: Path | str | None = None) -> Path | None:
    """The shared data directory, or None when none of the candidates exists."""
    if explicit is not None:
        return Path(explicit)
    env = os.environ.get(DATA_DIR_ENV)
    if env:
        return Path(env)
    repo = Path(__file__).resolve().parents[2]
    for candidate in (repo.parent / "shared" / "data", Path.cwd().parent / "shared" / "data"):
        if candidate.is_dir():
            return candidate
    return None


@dataclass(frozen=True, slots=True)
class SpaApp:
    name: str
    directory: Path
    label: str
    """Manifest label: ``csr``, ``csr-shadow-dom`` or ``static-shell+js``."""
    expect_after_js: tuple[str, ...]


@dataclass(frozen=True, slots=True)
class FileReply:
    status: int
    body: bytes
    content_type: str
    location: str | None = None


def _content_type(path: Path) -> str:
    if path.suffix in (".html", ".htm"):
        return "text/html; charset=utf-8"
    if path.suffix in (".js", ".mjs"):
        return "text/javascript; charset=utf-8"
    guessed, _ = mimetypes.guess_type(path.name)
    return guessed or "application/octet-stream"


def _inside(root: Path, rel: str) -> Path | None:
    """``root/rel`` if it is a file inside ``root`` (no traversal), else None."""
    try:
        target = (root / rel).resolve()
        base = root.resolve()
    except (OSError, ValueError):
        return None
    if not target.is_relative_to(base) or not target.is_file():
        return None
    return target


class DataFiles:
    """Index of the shared data pages and the file lookup behind the data hosts."""

    def __init__(self, root: Path | None) -> None:
        self.root = root if root is not None and root.is_dir() else None
        if self.root is None:
            log.warning(
                "demo data dir not found (%s); readability/spa/rendertron demo hosts will answer 404. "
                "Set %s or pass --data-dir.",
                root or "no candidate exists",
                DATA_DIR_ENV,
            )
        self.readability = self._readability_names()
        self.spa_apps = self._spa_apps()
        self.rendertron = self._rendertron_files()

    def _readability_names(self) -> tuple[str, ...]:
        if self.root is None or not (self.root / _READABILITY).is_dir():
            return ()
        base = self.root / _READABILITY
        return tuple(sorted(p.name for p in base.iterdir() if (p / "source.html").is_file()))

    def _spa_apps(self) -> dict[str, SpaApp]:
        if self.root is None:
            return {}
        apps: dict[str, SpaApp] = {}
        manifest_path = self.root / "spa" / "manifest.json"
        try:
            manifest = json.loads(manifest_path.read_text())
        except (OSError, ValueError):
            manifest = {}
        for group, entries in manifest.items():
            if not group.startswith("todomvc") or not isinstance(entries, dict):
                continue
            for rel, meta in entries.items():
                index = self.root / _TODOMVC / rel
                if not index.is_file():
                    continue
                name = Path(rel).parts[1]
                apps[name] = SpaApp(
                    name=name,
                    directory=index.parent,
                    label=str(meta.get("label", "")),
                    expect_after_js=tuple(meta.get("expect_after_js", ())),
                )
        if not apps and (self.root / _TODOMVC / "examples").is_dir():  # no manifest: find the builds
            for index in sorted((self.root / _TODOMVC / "examples").glob("*/dist/**/index.html")):
                name = index.relative_to(self.root / _TODOMVC / "examples").parts[0]
                apps.setdefault(name, SpaApp(name, index.parent, "", ()))
        return dict(sorted(apps.items()))

    def _rendertron_files(self) -> tuple[str, ...]:
        if self.root is None or not (self.root / _RENDERTRON).is_dir():
            return ()
        return tuple(sorted(p.name for p in (self.root / _RENDERTRON).iterdir() if p.is_file()))

    def reply(self, label: str, path: str) -> FileReply:
        """Answer ``path`` on the data host ``label`` (``readability``, ``spa`` or ``rendertron``)."""
        if self.root is None:
            return FileReply(404, b"demo data dir not found; see the server log", "text/plain; charset=utf-8")
        rel = path.lstrip("/")
        if rel == "":
            return self._index(label)
        if label == "rendertron":
            return self._file(self.root / _RENDERTRON, rel)
        name, slash, rest = rel.partition("/")
        if label == "readability":
            if name not in self.readability:
                return _not_found()
            directory = self.root / _READABILITY / name
        else:
            app = self.spa_apps.get(name)
            if app is None:
                return _not_found()
            directory = app.directory
        if not slash:
            return FileReply(301, b"", "text/plain", location=f"/{name}/")
        if rest == "":
            rest = "source.html" if label == "readability" else "index.html"
        return self._file(directory, rest)

    def _file(self, directory: Path, rel: str) -> FileReply:
        target = _inside(directory, rel)
        if target is None:
            return _not_found()
        return FileReply(200, target.read_bytes(), _content_type(target))

    def _index(self, label: str) -> FileReply:
        if label == "readability":
            links = [f"/{n}/" for n in self.readability]
        elif label == "spa":
            links = [f"/{n}/" for n in self.spa_apps]
        else:
            links = [f"/{n}" for n in self.rendertron if n.endswith(".html")]
        items = "".join(f'<li><a href="{escape(href)}">{escape(href.strip("/"))}</a></li>' for href in links)
        body = (
            f'<!DOCTYPE html>\n<html lang="en"><head><meta charset="utf-8"><title>{label} pages</title>'
            f"</head><body><h1>{label} test pages</h1><ul>{items}</ul></body></html>"
        )
        return FileReply(200, body.encode(), "text/html; charset=utf-8")


def _not_found() -> FileReply:
    return FileReply(
        404, b"<!DOCTYPE html>\n<title>404</title><h1>404 Not Found</h1>", "text/html; charset=utf-8"
    )
