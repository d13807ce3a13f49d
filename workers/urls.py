"""URL normalisation and identity: one URL, one hash, everywhere."""

from __future__ import annotations

import hashlib
from urllib.parse import urlsplit, urlunsplit

from workers.errors import ConfigError

__all__ = ["host_of", "normalize_url", "url_hash"]

_DEFAULT_PORTS = {"http": 80, "https": 443}


def normalize_url(raw: str) -> str:
    """Canonical form used for identity: scheme and host lower-cased, default port and
    fragment dropped, empty path made ``/``. A bare domain becomes ``https://domain/``.

    Raises ConfigError for input that is not an http(s) URL or domain.
    """
    text = raw.strip()
    if not text:
        raise ConfigError("empty URL")
    if "://" not in text:
        text = "https://" + text
    parts = urlsplit(text)
    scheme = parts.scheme.lower()
    if scheme not in _DEFAULT_PORTS:
        raise ConfigError(f"not an http(s) URL: {raw!r}")
    host = (parts.hostname or "").rstrip(".").lower()
    if not host or " " in host:
        raise ConfigError(f"URL has no valid host: {raw!r}")
    try:
        port = parts.port
    except ValueError as exc:
        raise ConfigError(f"URL has an invalid port: {raw!r}") from exc
    netloc = host if port in (None, _DEFAULT_PORTS[scheme]) else f"{host}:{port}"
    if ":" in host and not host.startswith("["):
        netloc = f"[{host}]" if port is None else f"[{host}]:{port}"
    return urlunsplit((scheme, netloc, parts.path or "/", parts.query, ""))


def url_hash(url: str) -> str:
    """128-bit hex identity of an already normalised URL."""
    return hashlib.blake2b(url.encode("utf-8"), digest_size=16).hexdigest()


def host_of(url: str) -> str:
    return (urlsplit(url).hostname or "").lower()
