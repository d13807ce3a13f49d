"""URL lists over the demo web, each URL with the outcome a correct pipeline must reach.

``demo_urls`` builds a deterministic mix (mostly articles and listings, ~10% SPA shells,
and a few of every failure kind) so an end-to-end test can check that every URL is
accounted for. Failing URLs are spread over hosts, at most ``max_failures_per_host``
per host, so a per-host circuit breaker (5 consecutive failures by default) never trips
on the healthy pages of the same host.
"""

from __future__ import annotations

import random
from collections import Counter
from collections.abc import Collection
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

from workers.demoweb import pages, spa
from workers.demoweb.data import DataFiles, locate_data_dir
from workers.demoweb.hosts import READABILITY_HOST, RENDERTRON_HOST, SPA_HOST, demo_host, demo_scheme
from workers.demoweb.kinds import KINDS, SPECIAL_KINDS, KindSpec, Outcome, Route
from workers.demoweb.site import site_profile
from workers.demoweb.special import CHARSET_MARKERS

__all__ = [
    "KINDS",
    "DemoURL",
    "KindSpec",
    "Outcome",
    "Route",
    "data_urls",
    "demo_tranco_csv",
    "demo_urls",
]


@dataclass(frozen=True, slots=True)
class DemoURL:
    url: str
    kind: str
    """A key of KINDS; generated articles with SPA framework markers are ``article_framework``."""
    expected: Outcome
    """``stored``, ``dead_lettered``, ``skipped`` (recorded without a body) or ``any`` (accounted for)."""
    route: Route | None = None
    """Where the router should send the page, when that is known."""
    reason: str | None = None
    marker: str | None = None
    """Text a correct extraction of the page contains (title, decoded charset text, text injected by JS)."""

    def to_json(self) -> dict[str, Any]:
        return asdict(self)


def _path(kind: str, n: int, *, rng: random.Random, timeout_delay_s: float) -> str:
    return KINDS[kind].path.format(n=n, hops=rng.randint(1, 3), delay=f"{timeout_delay_s:g}")


def _marker(kind: str, host: str, path: str, n: int) -> str | None:
    profile = site_profile(host)
    if kind in ("article", "flaky", "throttled", "slow"):
        return pages.page_title(profile, path.partition("?")[0])
    if kind == "redirect":
        return pages.page_title(profile, f"/landing/{n}")
    if kind == "spa":
        return spa.spa_title(profile, n)
    if kind.startswith("charset_"):
        return CHARSET_MARKERS[path.split("/")[2]]
    return None


def demo_urls(
    *,
    port: int,
    hosts: int,
    per_host: int,
    include_failures: bool = True,
    seed: int = 0,
    spa_share: float = 0.10,
    listing_share: float = 0.15,
    failures_each: int | None = None,
    exclude_kinds: Collection[str] = (),
    timeout_delay_s: float = 60.0,
    max_failures_per_host: int = 2,
) -> list[DemoURL]:
    """``hosts * per_host`` URLs (fewer only if a special kind finds no eligible host).

    With ``include_failures`` every kind of KINDS appears ``failures_each`` times
    (default: one per 200 URLs, at least one), capped at 35% of the list. ``timeout``
    URLs sleep ``timeout_delay_s`` (keep it above the ingestor's read timeout);
    ``stall`` URLs trickle bytes and need a total timeout below the server's stall_max_s.
    """
    rng = random.Random(f"demo_urls|{seed}")
    names = [demo_host(i) for i in range(1, hosts + 1)]
    total = hosts * per_host
    slots: dict[str, list[str]] = {h: [] for h in names}
    bad: Counter[str] = Counter()
    specials: list[str] = []
    if include_failures and total:
        each = failures_each if failures_each is not None else max(1, round(total / 200))
        specials = [k for k in SPECIAL_KINDS if k not in exclude_kinds for _ in range(each)]
        if len(specials) > int(total * 0.35):
            specials = sorted(rng.sample(specials, int(total * 0.35)))
        rng.shuffle(specials)
    cursor = 0
    for kind in specials:
        for step in range(hosts):
            host = names[(cursor + step) % hosts]
            spec = KINDS[kind]
            if len(slots[host]) >= per_host or (spec.failing and bad[host] >= max_failures_per_host):
                continue
            if kind == "robots_blocked" and not site_profile(host).disallow_private:
                continue
            slots[host].append(kind)
            bad[host] += spec.failing
            cursor = (cursor + step + 1) % hosts
            break
    if "spa" not in exclude_kinds:
        for i in range(round(total * spa_share)):
            for step in range(hosts):
                host = names[(i + step) % hosts]
                if len(slots[host]) < per_host:
                    slots[host].append("spa")
                    break
    out: list[DemoURL] = []
    for host in names:
        kinds = slots[host]
        if per_host >= 3 and len(kinds) < per_host and "home" not in exclude_kinds:
            kinds.insert(0, "home")
        while len(kinds) < per_host:
            kinds.append("listing" if rng.random() < listing_share else "article")
        counters: Counter[str] = Counter()
        for kind in kinds:
            prefix = KINDS[kind].path.split("{")[0]
            counters[prefix] += 1
            n = counters[prefix]
            path = _path(kind, n, rng=rng, timeout_delay_s=timeout_delay_s)
            spec = KINDS[kind]
            label = kind
            if kind == "article" and pages.is_framework_article(site_profile(host), path):
                label = "article_framework"
            out.append(
                DemoURL(
                    url=f"{demo_scheme}://{host}:{port}{path}",
                    kind=label,
                    expected=spec.expected,
                    route=spec.route,
                    reason=spec.reason,
                    marker=_marker(kind, host, path, n),
                )
            )
    rng.shuffle(out)
    return out


def demo_tranco_csv(*, hosts: int, port: int | None = None, start_rank: int = 1) -> str:
    """A Tranco-style ``rank,domain`` CSV (no header) of site-001 .. site-<hosts>.

    Tranco rows mean ``https://domain/``; the demo web is plain HTTP on one port, so with
    ``port`` the domain column reads ``site-001.demo.test:PORT`` and the reader must use
    ``demo_scheme`` (http) for these rows. The root ``/`` of every demo host is a homepage.
    """
    suffix = f":{port}" if port is not None else ""
    return "".join(f"{start_rank + i - 1},{demo_host(i)}{suffix}\n" for i in range(1, hosts + 1))


def data_urls(*, port: int, data_dir: Path | str | None = None) -> list[DemoURL]:
    """URLs of the real pages in ../shared/data, as served by the data hosts."""
    files = DataFiles(locate_data_dir(data_dir))
    out = [
        DemoURL(
            url=f"{demo_scheme}://{READABILITY_HOST}:{port}/{name}/", kind="readability", expected="stored"
        )
        for name in files.readability
    ]
    for app in files.spa_apps.values():
        csr = app.label.startswith("csr")
        out.append(
            DemoURL(
                url=f"{demo_scheme}://{SPA_HOST}:{port}/{app.name}/",
                kind=f"spa_{app.label or 'app'}",
                expected="stored",
                route="rich" if csr else None,
                marker=app.expect_after_js[-1] if app.expect_after_js and app.label == "csr" else None,
            )
        )
    out += [
        DemoURL(url=f"{demo_scheme}://{RENDERTRON_HOST}:{port}/{name}", kind="rendertron", expected="any")
        for name in files.rendertron
        if name.endswith(".html")
    ]
    return out
