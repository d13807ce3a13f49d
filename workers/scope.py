"""A batch's crawl scope: which discovered URLs it may request, and why others are dropped.

The scope (:class:`~workers.messages.Scope`) is fixed when a batch is published and travels
with every request of the batch in its :class:`~workers.messages.CrawlContext`. The
discovery stage asks :meth:`ScopeRules.reject` about each canonical outlink; ``None`` means
the URL may be admitted (the URL-seen store and the budgets decide the rest), otherwise the
reason is counted, never dead-lettered.

``mode``:

* ``host`` — the link's host equals the seed host (the listed URL's host, or the host it
  redirected to at depth 0: ``http://example.com`` -> ``https://www.example.com`` keeps
  ``www.example.com`` in scope);
* ``domain`` — the link's registered domain equals the seed's, from the Public Suffix List
  bundled in ``tldextract`` (private suffixes such as ``github.io`` count as public, so
  ``a.github.io`` and ``b.github.io`` are different sites). Nothing is downloaded at run
  time. ``STREAMCRAWL_DISCOVERY_EXTRA_SUFFIXES`` adds suffixes the list does not know
  (``demo.test`` for the offline demo web, an intranet's ``corp.internal``);
* ``any`` — every http(s) host.

Then ``max_depth``, the include/exclude patterns (``re.search`` on the canonical URL) and
obvious non-HTML assets by path extension (images, media, archives, fonts, styles, scripts,
office documents) are applied.
"""

from __future__ import annotations

import functools
import re
from collections.abc import Iterable, Sequence
from typing import Final, Literal

import tldextract

from workers.errors import ConfigError
from workers.messages import CrawlContext, Scope

__all__ = [
    "ASSET_EXTENSIONS",
    "SCOPE_MODES",
    "DropReason",
    "ScopeRules",
    "child_seed",
    "compile_patterns",
    "registered_domain",
    "validate_scope",
]

SCOPE_MODES: Final = ("host", "domain", "any")
DropReason = Literal["out_of_scope", "too_deep", "excluded", "not_included", "asset"]

ASSET_EXTENSIONS: Final = frozenset(
    [
        "jpg",
        "jpeg",
        "png",
        "gif",
        "webp",
        "avif",
        "bmp",
        "ico",
        "svg",
        "tif",
        "tiff",
        "heic",
        "mp3",
        "mp4",
        "m4a",
        "m4v",
        "ogg",
        "oga",
        "ogv",
        "wav",
        "webm",
        "flac",
        "aac",
        "mov",
        "avi",
        "mkv",
        "wmv",
        "flv",
        "mpg",
        "mpeg",
        "zip",
        "gz",
        "tgz",
        "bz2",
        "xz",
        "7z",
        "rar",
        "tar",
        "zst",
        "iso",
        "dmg",
        "exe",
        "msi",
        "apk",
        "deb",
        "rpm",
        "bin",
        "woff",
        "woff2",
        "ttf",
        "otf",
        "eot",
        "css",
        "js",
        "mjs",
        "map",
        "json",
        "pdf",
        "doc",
        "docx",
        "xls",
        "xlsx",
        "ppt",
        "pptx",
        "odt",
        "ods",
        "odp",
        "rtf",
        "epub",
    ]
)
"""Path extensions of links that are never HTML pages; dropped before they cost a fetch."""


@functools.lru_cache(maxsize=4)
def _extractor(extra: tuple[str, ...]) -> tldextract.TLDExtract:
    # suffix_list_urls=() : only the snapshot bundled in the package, never a download.
    return tldextract.TLDExtract(
        suffix_list_urls=(), cache_dir=None, include_psl_private_domains=True, extra_suffixes=list(extra)
    )


@functools.lru_cache(maxsize=65_536)
def _registered(host: str, extra: tuple[str, ...]) -> str:
    parts = _extractor(extra)(host)
    return parts.top_domain_under_public_suffix or host


def registered_domain(host: str, *, extra_suffixes: Sequence[str] = ()) -> str:
    """``www.bbc.co.uk`` -> ``bbc.co.uk``; IP literals and unknown suffixes give the host itself."""
    return _registered(host.lower().rstrip("."), tuple(extra_suffixes))


def _extension(url: str) -> str:
    path = url.split("?", 1)[0]
    slash = path.rfind("/")
    name = path[slash + 1 :]
    dot = name.rfind(".")
    return name[dot + 1 :].lower() if dot > 0 else ""


def compile_patterns(patterns: Iterable[str], *, option: str) -> tuple[re.Pattern[str], ...]:
    """Compile include/exclude patterns; a bad one is a ConfigError naming the option."""
    out = []
    for pattern in patterns:
        try:
            out.append(re.compile(pattern))
        except re.error as exc:
            raise ConfigError(f"{option} {pattern!r} is not a valid regular expression: {exc}") from exc
    return tuple(out)


def validate_scope(scope: Scope) -> Scope:
    """Check a scope before a batch is published: the CLI, Dagster and the API call this."""
    if scope.mode not in SCOPE_MODES:
        raise ConfigError(f"scope must be one of {', '.join(SCOPE_MODES)}, not {scope.mode!r}")
    if scope.max_depth < 0:
        raise ConfigError(f"depth must be 0 or more, not {scope.max_depth}")
    for name, value in (("max pages per host", scope.max_pages_per_host), ("max pages", scope.max_pages)):
        if value is not None and value < 1:
            raise ConfigError(f"{name} must be at least 1, not {value}")
    compile_patterns(scope.include, option="--include")
    compile_patterns(scope.exclude, option="--exclude")
    return scope


def child_seed(parent: CrawlContext | None, *, parent_host: str, final_host: str) -> str:
    """The seed host a page's outlinks are measured from.

    A listed page (depth 0) that redirected elsewhere (``example.com`` -> ``www.example.com``)
    makes the redirect target the seed of everything found below it.
    """
    if parent is None or parent.depth == 0 or not parent.seed:
        return final_host or parent_host
    return parent.seed


class ScopeRules:
    """One batch's scope, compiled once (discovery caches one per batch)."""

    def __init__(self, scope: Scope, *, extra_suffixes: Sequence[str] = ()) -> None:
        validate_scope(scope)
        self.scope = scope
        self._extra = tuple(extra_suffixes)
        self._include = compile_patterns(scope.include, option="--include")
        self._exclude = compile_patterns(scope.exclude, option="--exclude")

    def follows_links(self, depth: int) -> bool:
        """Whether a page at ``depth`` has links worth reading at all."""
        return depth < self.scope.max_depth

    def _same_site(self, host: str, seed: str) -> bool:
        mode = self.scope.mode
        if mode == "any":
            return True
        if mode == "host":
            return False
        extra = self._extra
        return registered_domain(host, extra_suffixes=extra) == registered_domain(seed, extra_suffixes=extra)

    def reject(self, url: str, host: str, *, seed: str, depth: int) -> DropReason | None:
        """Why the canonical ``url`` (on ``host``, found at ``depth``) is dropped, or None."""
        if depth > self.scope.max_depth:
            return "too_deep"
        if host != seed and not self._same_site(host, seed):
            return "out_of_scope"
        if _extension(url) in ASSET_EXTENSIONS:
            return "asset"
        if self._exclude and any(p.search(url) for p in self._exclude):
            return "excluded"
        if self._include and not any(p.search(url) for p in self._include):
            return "not_included"
        return None
