"""Which links of a stored page become candidates of its batch, and why the others do not.

A page's links are read only when the page was fetched (stored, unchanged, or skipped because
it is ``noindex``), its batch follows links at its depth, and it does not carry ``nofollow``
(meta robots, X-Robots-Tag). Each link is then, in order:

1. dropped as ``nofollow`` when its ``rel`` says so (unless the scope follows nofollow);
2. canonicalised (:func:`workers.urls.canonicalize`; a link that is not a valid http(s) URL is
   dropped as ``invalid_url``);
3. judged by the batch's :class:`~workers.scope.ScopeRules` (``out_of_scope``, ``too_deep``,
   ``asset``, ``excluded``, ``not_included``).

What survives is a :class:`~workers.ledger.Candidate` at depth + 1 whose seed host is the page's
(see :func:`workers.scope.child_seed`); the URL-seen store decides whether it is new.
"""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass, field

from workers.ledger import Candidate
from workers.messages import StoredPage
from workers.scope import ScopeRules, child_seed
from workers.urls import InvalidURL, canonicalize, host_of, url_hash

__all__ = ["FOLLOWED_SKIPS", "PageLinks", "page_links", "robots_nofollow"]

FOLLOWED_SKIPS = frozenset({"noindex"})
"""Skip reasons after which a page's links are still followed (it was fetched and parsed)."""


@dataclass(slots=True)
class PageLinks:
    candidates: list[Candidate] = field(default_factory=list)
    seed: str = ""
    """Seed host of every candidate (the page's children share it)."""
    dropped: Counter[str] = field(default_factory=Counter)
    examples: dict[str, str] = field(default_factory=dict)


def robots_nofollow(directives: list[str]) -> bool:
    return any(d in ("nofollow", "none") for d in directives)


def expandable(page: StoredPage) -> bool:
    """Whether the page was fetched and parsed, so its links can be read."""
    if page.outcome in ("stored", "unchanged"):
        return True
    return page.outcome == "skipped" and (page.reason or "") in FOLLOWED_SKIPS


def page_links(page: StoredPage, rules: ScopeRules) -> PageLinks:
    """The candidates found on ``page`` and the count of links dropped per reason."""
    out = PageLinks()
    ctx = page.ctx
    if ctx is None or not rules.follows_links(ctx.depth) or not expandable(page):
        return out
    if robots_nofollow(page.robots):
        if page.outlinks:
            out.dropped["nofollow_page"] += len(page.outlinks)
        return out
    follow_nofollow = rules.scope.follow_nofollow
    nofollow = set(page.outlinks_nofollow) if not follow_nofollow else set()
    page_host = page.host or host_of(page.url)
    out.seed = seed = child_seed(ctx, parent_host=page_host, final_host=host_of(page.final_url))
    depth = ctx.depth + 1
    seen: set[str] = set()

    def drop(reason: str, link: str) -> None:
        out.dropped[reason] += 1
        out.examples.setdefault(reason, link)

    for link in page.outlinks:
        if link in nofollow:
            drop("nofollow", link)
            continue
        try:
            url = canonicalize(link)
        except InvalidURL:
            drop("invalid_url", link)
            continue
        if url in seen:
            continue
        seen.add(url)
        host = host_of(url)
        reason = rules.reject(url, host, seed=seed, depth=depth)
        if reason is not None:
            drop(reason, url)
            continue
        out.candidates.append(
            Candidate(
                url=url, url_hash=url_hash(url), host=host, depth=depth, source="link", parent=page.url_hash
            )
        )
    return out
