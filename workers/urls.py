"""URL canonicalisation and identity: one URL, one hash, everywhere.

:func:`canonicalize` is the only way a URL becomes an identity. The CLI and Dagster list
loaders, the ingestor (for redirect targets), the discovery stage (for outlinks and
sitemap entries) and the API all call it, and :func:`url_hash` hashes its result.

What it does (w3lib's ``canonicalize_url`` for the hard parts, then our rules):

* scheme and host lower-cased; the host IDNA-encoded (``bücher.de`` -> ``xn--bcher-kva.de``),
  a trailing dot dropped, IPv6 literals kept in brackets;
* default ports (``:80`` for http, ``:443`` for https) dropped, other ports kept;
* ``user:password@`` dropped (a crawler never sends credentials from a link);
* dot segments resolved (``/a/./b/../c`` -> ``/a/c``), an empty path made ``/``;
* percent-encoding normalised: unreserved characters decoded (``%7E`` -> ``~``), other
  escapes upper-cased, non-ASCII path and query characters UTF-8 percent-encoded;
* the fragment dropped;
* query parameters **sorted** (by name, then value) and known tracking
  parameters (``utm_*``, ``gclid``, ``fbclid``, … see :data:`TRACKING_PARAMS`) removed. Sorting
  makes ``?a=1&b=2`` and ``?b=2&a=1`` one page, as Common Crawl's SURT keys do; a site whose
  pages differ only by parameter order is far rarer than one linking both orders.

Anything that is not an absolute http(s) URL with a valid host raises :class:`InvalidURL`
with the actual problem (``mailto:`` is a non-HTTP scheme, not a host called ``mailto``).
"""

from __future__ import annotations

import functools
import hashlib
import re
from urllib.parse import unquote_plus, urlsplit, urlunsplit

import idna
from w3lib.url import canonicalize_url

from workers.errors import ConfigError

__all__ = [
    "TRACKING_PARAMS",
    "InvalidURL",
    "canonicalize",
    "host_of",
    "normalize_url",
    "url_hash",
]

_DEFAULT_PORTS = {"http": 80, "https": 443}
_SCHEME = re.compile(r"^([a-zA-Z][a-zA-Z0-9+.\-]*):(.*)$", re.DOTALL)
_PORT_ONLY = re.compile(r"^\d+(?:[/?#]|$)")
_TRACKING_PREFIXES = ("utm_", "pk_", "mtm_")
TRACKING_PARAMS = frozenset(
    {
        "gclid",
        "gclsrc",
        "dclid",
        "gbraid",
        "wbraid",
        "fbclid",
        "msclkid",
        "yclid",
        "twclid",
        "igshid",
        "mc_cid",
        "mc_eid",
        "_ga",
        "_gl",
        "_hsenc",
        "_hsmi",
        "mkt_tok",
        "oly_anon_id",
        "oly_enc_id",
        "vero_id",
        "rb_clickid",
        "s_cid",
        "ref_src",
    }
)
"""Query parameters that only track the click, never select content (plus ``utm_*``, ``pk_*``, ``mtm_*``)."""
_HOST_CHARS = re.compile(r"^[a-z0-9.\-_]+$")


class InvalidURL(ConfigError):
    """Input that is not an absolute http(s) URL; the message names the actual problem."""


def _is_tracking(name: str) -> bool:
    lower = name.lower()
    return lower in TRACKING_PARAMS or lower.startswith(_TRACKING_PREFIXES)


def _scheme_of(text: str) -> str | None:
    """The URL's scheme, or None for ``host``, ``host:port/...`` and other scheme-less input."""
    match = _SCHEME.match(text)
    if match is None or _PORT_ONLY.match(match.group(2)):
        return None
    return match.group(1).lower()


def _canonical_host(host: str, raw: str) -> str:
    try:
        return _canonical_hostname(host)
    except _BadHost as exc:
        raise InvalidURL(f"URL has {exc}: {raw!r}") from None


class _BadHost(ValueError):
    pass


@functools.lru_cache(maxsize=65_536)
def _canonical_hostname(host: str) -> str:
    # Keyed by the host alone: keyed by the URL too, the cache held one entry per distinct
    # URL (65,536 of them, ~30 MB: the discovery daemon's RSS grew over its first 100k URLs).
    host = host.rstrip(".").lower()
    if not host:
        raise _BadHost("no host")
    if ":" in host:  # an IPv6 literal (urlsplit removed the brackets)
        return f"[{host}]"
    if _HOST_CHARS.match(host):
        if ".." in host or host.startswith(".") or any(len(label) > 63 for label in host.split(".")):
            raise _BadHost(f"an invalid host {host!r}")
        return host
    try:
        return idna.encode(host, uts46=True).decode("ascii")
    except idna.IDNAError as exc:
        raise _BadHost(f"an invalid host {host!r} ({exc})") from None


def canonicalize(raw: str, *, default_scheme: str | None = None) -> str:
    """The canonical form of an absolute http(s) URL (see the module docstring).

    ``default_scheme`` (``https`` or ``http``) is prepended to scheme-less input such as a
    bare domain from a Tranco list; without it, scheme-less input is refused.
    """
    text = raw.strip()
    if not text:
        raise InvalidURL("empty URL")
    scheme = _scheme_of(text)
    if scheme is None:
        if default_scheme is None:
            raise InvalidURL(f"not an absolute URL (no scheme): {raw!r}")
        text = f"{default_scheme}://{text.lstrip('/')}"
        scheme = default_scheme
    if scheme not in _DEFAULT_PORTS:
        raise InvalidURL(f"non-HTTP(S) scheme {scheme!r} refused: {raw!r}")
    if any(ch in text for ch in "\x00\r\n\t"):
        text = text.replace("\t", "").replace("\r", "").replace("\n", "")
        if "\x00" in text:
            raise InvalidURL(f"URL contains a NUL byte: {raw!r}")
    try:
        parts = urlsplit(text)
        port = parts.port
    except ValueError as exc:  # unbalanced IPv6 brackets, a port out of range or not a number
        raise InvalidURL(f"malformed URL ({exc}): {raw!r}") from exc
    if not parts.netloc or parts.hostname is None:
        raise InvalidURL(f"URL has no host: {raw!r}")
    host = _canonical_host(parts.hostname, raw)
    netloc = host if port in (None, _DEFAULT_PORTS[scheme]) else f"{host}:{port}"
    query = _without_tracking(parts.query)
    try:
        canonical = canonicalize_url(
            urlunsplit((scheme, netloc, parts.path or "/", query, "")), keep_fragments=False
        )
    except (ValueError, UnicodeError) as exc:
        raise InvalidURL(f"malformed URL ({exc}): {raw!r}") from exc
    out = urlsplit(canonical)
    # w3lib keeps the netloc it was given; rebuild it so ports and case are exactly ours.
    return urlunsplit((scheme, netloc, out.path or "/", out.query, ""))


def _without_tracking(query: str) -> str:
    """The raw query minus tracking parameters (encoding left to w3lib)."""
    if not query:
        return query
    fields = query.split("&")
    kept = [f for f in fields if not _is_tracking(unquote_plus(f.split("=", 1)[0]))]
    return query if len(kept) == len(fields) else "&".join(kept)


def normalize_url(raw: str, *, default_scheme: str | None = "https") -> str:
    """:func:`canonicalize` with bare domains read as ``https://domain/`` (list input)."""
    return canonicalize(raw, default_scheme=default_scheme)


def url_hash(url: str) -> str:
    """128-bit hex identity of a canonical URL (pass the result of :func:`canonicalize`)."""
    return hashlib.blake2b(url.encode("utf-8"), digest_size=16).hexdigest()


def host_of(url: str) -> str:
    """The host of a canonical URL, without port (``[…]`` stripped for IPv6)."""
    return (urlsplit(url).hostname or "").lower()
