"""Kinds of the paths outside a site's tree: the URL kinds of urls.py and anything else.

A URL list (``demo_urls``) names pages by path (``/missing/3``, ``/redirect/2/8``,
``/charset/shift_jis/1``); graph.py asks :func:`path_kind` what such a path is, and
:func:`path_numbers` which numbers (page number, redirect hops) its answer needs.
"""

from __future__ import annotations

import re
from typing import Final

from workers.demoweb.site import PRIVATE_PREFIX
from workers.demoweb.special import CHARSET_VARIANTS

__all__ = ["MAX_REDIRECTS", "path_kind", "path_numbers"]

MAX_REDIRECTS: Final = 5
"""IngestorSettings.max_redirects' default: a longer chain is ``redirect_too_many``."""
_STATIC: Final = frozenset(
    {"about", "contact", "privacy", "terms", "careers", "advertise", "newsletter", "archive", "search"}
)
_NUM_RE: Final = re.compile(r"^/([a-z-]+)/(\d{1,9})$")
_CHARSET_RE: Final = re.compile(r"^/charset/([a-z0-9_-]+)/(\d{1,9})$")
_REDIRECT_RE: Final = re.compile(r"^/redirect/(\d{1,9})/(\d{1,3})$")
_ARTICLE_RE: Final = re.compile(r"^/article/\d{1,9}$")
_BY_HEAD: Final = {
    "missing": "not_found",
    "gone": "gone",
    "error": "server_error",
    "flaky": "flaky",
    "throttle": "throttled",
    "throttle-always": "throttled_always",
    "slow": "slow",
    "stall": "stall",
    "huge": "huge",
    "xhtml": "xhtml",
    "report": "report",
    "redirect-loop": "redirect_loop",
    "app": "spa",
    "landing": "article",
    "list": "listing",
    "sponsored": "sponsored",
}
_FILES: Final = (("/files/", ".pdf", "pdf"), ("/data/", ".json", "json"), ("/images/", ".png", "image"))


def path_numbers(path: str) -> tuple[dict[str, int], str | None]:
    """({"n": page number, "hops": redirects left}, final path of a redirect chain or None)."""
    m = _REDIRECT_RE.match(path)
    if m:
        n = int(m.group(1))
        return {"n": n, "hops": int(m.group(2))}, f"/landing/{n}"
    m2 = _CHARSET_RE.match(path) or _NUM_RE.match(path)
    if m2:
        return {"n": int(m2.group(2))}, None
    for prefix, ext, _kind in _FILES:
        stem = path.removeprefix(prefix).removesuffix(ext)
        if path.startswith(prefix) and path.endswith(ext) and stem.isdigit() and len(stem) < 10:
            return {"n": int(stem)}, None
    return {}, None


def path_kind(path: str, *, disallow_private: bool) -> str:
    """The kind (kinds.KINDS) of a path outside the tree; ``unknown`` (404) for anything else."""
    if path.startswith(PRIVATE_PREFIX) and _NUM_RE.match(path):
        return "robots_blocked" if disallow_private else "private_page"
    if path.startswith("/admin/"):
        return "admin"
    if path == "/":
        return "home"
    name = path.strip("/")
    if path == f"/{name}" and name in _STATIC:
        return "listing"
    m = _REDIRECT_RE.match(path)
    if m:
        return "redirect" if int(m.group(2)) <= MAX_REDIRECTS else "redirect_too_many"
    m = _CHARSET_RE.match(path)
    if m and m.group(1) in CHARSET_VARIANTS:
        return "charset_" + m.group(1).replace("-", "_")
    if _ARTICLE_RE.match(path):
        return "article"
    m = _NUM_RE.match(path)
    if m and m.group(1) in _BY_HEAD:
        return _BY_HEAD[m.group(1)]
    for prefix, ext, kind in _FILES:
        if path.startswith(prefix) and path.endswith(ext) and path_numbers(path)[0]:
            return kind
    return "unknown"
