"""The demo web's pages and links: one function, :func:`node`, that the server renders and the
oracle crawls, so the links a crawler finds are exactly the links the oracle follows.

Every generated site (``site-NNN.demo.test``) is a tree::

    /                                   home (level 0)
    ├── /section/<s>                    section front = listing page 1 (level 1)
    │   ├── /section/<s>/2 → /3 → …     paginated listings, each one level deeper
    │   ├── /article/<n>                articles of a listing page (one level below it)
    │   └── special pages               failure kinds, redirects, non-HTML, charsets, /app/1 (SPA)
    ├── /calendar/YYYY-MM               the trap: next month, its days, their events … forever
    ├── http://blog.site-NNN…/          the site's blog (another host, same registered domain)
    │   └── /post/<k>
    ├── /noindex/1 /none/1 /nofollow/1  meta robots noindex | none | nofollow, two children each
    ├── /x-robots/noindex|nofollow      the same as an X-Robots-Tag header
    ├── /private/1 /admin/              robots.txt-disallowed (/private/ on ~30% of sites)
    ├── /sponsored/1                    linked only with rel=nofollow (also from every section)
    └── /about /contact /privacy /terms

Each page has exactly one tree parent one level up, and links only to its tree children,
to its ancestors (breadcrumbs, home), to duplicates of those (tracking parameters, upper-case
host, fragments), to assets and non-HTTP schemes a crawler drops, and to the home pages of
lower-numbered sites (which a demo list of site-001..site-N always lists). So the depth at
which a crawl finds a page equals its tree level whatever order pages are processed in
(tests/unit/test_demoweb_graph.py checks this on the generated graph and by simulation).

Paths outside the tree (``/list/<n>``, ``/article/<small n>``, the legacy kinds of urls.py)
are served too; they link only to their site's home and partner homes.
"""

from __future__ import annotations

import calendar
import re
from dataclasses import dataclass, field
from typing import Final, Literal

from workers.demoweb.legacy import path_kind, path_numbers
from workers.demoweb.shape import BLOG_PREFIX, SiteShape, main_host_of, site_shape
from workers.demoweb.site import PRIVATE_PREFIX, Origin, SiteProfile, site_profile

__all__ = [
    "HIDDEN_CHILDREN",
    "ROBOTS_PAGES",
    "STATIC_PAGES",
    "Link",
    "Node",
    "Template",
    "article_path",
    "node",
]

Place = Literal["nav", "crumb", "teaser", "pager", "inline", "aside", "footer"]
Template = Literal["listing", "article", "special"]

STATIC_PAGES: Final = ("about", "contact", "privacy", "terms")
"""Leaves linked from the home page's footer."""
ROBOTS_PAGES: Final = {
    # path: (kind, meta robots content, X-Robots-Tag header)
    "/noindex/1": ("noindex", "noindex", None),
    "/none/1": ("robots_none", "none", None),
    "/nofollow/1": ("meta_nofollow", "nofollow", None),
    "/x-robots/noindex": ("x_robots_noindex", None, "noindex"),
    "/x-robots/nofollow": ("x_robots_nofollow", None, "nofollow"),
}
HIDDEN_CHILDREN: Final = 2
"""Pages only a robots page links to: stored when its links are followed, never requested otherwise."""
_SECTION_RE: Final = re.compile(r"^/section/(\d{1,2})(?:/(\d{1,3}))?$")
_ARTICLE_RE: Final = re.compile(r"^/article/(\d{1,9})$")
_CAL_RE: Final = re.compile(r"^/calendar/(\d{4})-(\d{2})(?:-(\d{2})(?:/(\d{1,2}))?)?$")
_NUM_RE: Final = re.compile(r"^/([a-z-]+)/(\d{1,9})$")
_HIDDEN_RE: Final = re.compile(
    r"^(/noindex/1|/none/1|/nofollow/1|/x-robots/noindex|/x-robots/nofollow)/(\d)$"
)
_ARTICLE_LIKE: Final = frozenset(
    {
        "article",
        "flaky",
        "throttled",
        "slow",
        "private_page",
        "robots_blocked",
        "static",
        "sponsored",
        "hidden",
    }
)


@dataclass(frozen=True, slots=True)
class Link:
    href: str
    """As written in the page: absolute, root-relative or relative (resolve against the page)."""
    place: Place
    label: str = ""
    rel: str | None = None


@dataclass(frozen=True, slots=True)
class Node:
    """One URL of the demo web: what it is, where it sits in the tree, what it links to."""

    host: str
    path: str
    kind: str
    """A key of kinds.KINDS: decides the expected outcome and how the server answers."""
    level: int | None = None
    """Tree level (0 = home); None outside the tree."""
    parent: tuple[str, str] | None = None
    """(host, path) of the tree parent."""
    template: Template = "article"
    title: str = ""
    links: tuple[Link, ...] = ()
    robots_meta: str | None = None
    """Content of ``<meta name="robots">``."""
    x_robots: str | None = None
    """Value of an ``X-Robots-Tag`` response header."""
    base_href: str | None = None
    """``<base href>`` of the page: relative links resolve against it."""
    final_path: str | None = None
    """Where a redirect chain ends (same host); None: the page itself answers."""
    extra: dict[str, int] = field(default_factory=dict)
    """Numbers a special page needs (redirect hops, charset page number)."""


def article_path(section: int, page: int, item: int) -> str:
    return f"/article/{1000 * section + 100 * page + item}"


def _category(profile: SiteProfile, section: int) -> str:
    return profile.categories[(section - 1) % len(profile.categories)]


class _Builder:
    """Pages of one host; ``o`` knows the port the client used, so absolute links keep it."""

    def __init__(self, origin: Origin) -> None:
        self.o = origin
        self.host = origin.host
        self.main = main_host_of(origin.host) or origin.host
        self.is_blog = self.main != origin.host
        self.profile = site_profile(origin.host)
        self.shape: SiteShape = site_shape(self.main, link_hosts=origin.link_hosts)

    # -- shared link groups -------------------------------------------------------------
    def _footer(self, *, home: bool = False) -> list[Link]:
        out: list[Link] = []
        if home:
            out += [Link(f"/{name}", "footer", name.title()) for name in STATIC_PAGES]
            out.append(Link("/admin/", "footer", "Staff login"))
            out.append(Link("/files/1.pdf", "footer", "Annual report (PDF)"))
        elif self.is_blog:
            out.append(Link(self.o.url(self.main) + "/", "footer", "Main site"))
        else:
            out.append(Link("/", "footer", "Home"))
        for i, index in enumerate(self.shape.partners):
            href = self.o.other(index) + "/"
            if i == 0 and home:  # a host-case duplicate: the same URL once canonicalised
                href = href.replace("site-", "Site-").replace(".demo.test", ".Demo.Test")
            out.append(Link(href, "footer", f"Partner site {i + 1}"))
        out += [
            Link(f"mailto:newsroom@{self.main}", "footer", "Contact the newsroom"),
            Link("tel:+15550100", "footer", "Call us"),
            Link("javascript:void(0)", "footer", "Cookie settings"),
            Link("#top", "footer", "Back to top"),
        ]
        return out

    def _home_nav(self) -> list[Link]:
        return [Link("/", "nav", self.profile.name)]

    # -- the tree -------------------------------------------------------------------------
    def home(self) -> Node:
        p, s = self.profile, self.shape
        nav = [Link(f"/section/{i}", "nav", _category(p, i)) for i in range(1, s.sections + 1)]
        year, month = s.calendar_start
        teasers = [
            Link(f"/section/{i}", "teaser", f"Latest in {_category(p, i)}") for i in range(1, s.sections + 1)
        ]
        teasers += [
            Link(f"/calendar/{year:04d}-{month:02d}", "teaser", "Events calendar"),
            Link(self.o.url(BLOG_PREFIX + self.main) + "/", "teaser", "From our blog"),
            Link("/noindex/1", "teaser", "Topic: all our coverage"),
            Link("/none/1", "teaser", "Print edition archive"),
            Link("/nofollow/1", "teaser", "Reader comments"),
            Link("/x-robots/noindex", "teaser", "Search results for 'election'"),
            Link("/x-robots/nofollow", "teaser", "User-submitted stories"),
            Link(PRIVATE_PREFIX + "1", "teaser", "Members only"),
            Link("/sponsored/1", "teaser", "Sponsored: a word from our partners", rel="nofollow"),
        ]
        aside = [
            Link("/?utm_source=homepage&utm_medium=logo", "aside", "Front page"),
            Link(f"http://{self.host.upper()}{self.o.port_suffix}/section/1", "aside", "Top section"),
            Link("/section/2#latest", "aside", "Latest"),
            Link("/section/1?fbclid=IwAR0demo", "aside", "Shared on social media"),
        ]
        return Node(
            self.host, "/", "home", 0, None, "listing", f"{p.name}: today's stories",
            tuple(nav + teasers + aside + self._footer(home=True)),
        )  # fmt: skip

    def section(self, s: int, page: int) -> Node:
        p, shape = self.profile, self.shape
        pages = shape.pages[s - 1]
        path = f"/section/{s}" if page == 1 else f"/section/{s}/{page}"
        cat = _category(p, s)
        links = [*self._home_nav(), Link(f"/section/{s}", "nav", cat), Link("/", "crumb", "Home")]
        if page > 1:
            links.append(Link(f"../{s}", "crumb", cat))
        links += [Link(article_path(s, page, i), "teaser") for i in range(1, shape.articles_per_page + 1)]
        if page == 1:
            links += [Link(sp.path, "teaser") for sp in shape.specials if sp.section == s]
            if s == 1:
                links.append(Link("/app/1", "teaser", "Interactive: explore the data"))
            first = article_path(s, 1, 1)
            links += [
                Link(f"{path}?utm_campaign=section", "aside", f"Share {cat}"),
                Link(f"{first}#comments", "aside", "Comments"),
                Link(f"/sponsored/{s + 1}", "aside", "Advertisement", rel="nofollow noopener"),
                Link(f"/files/{s + 1}.pdf", "aside", "Download the report (PDF)"),
                Link(f"/images/gallery/{s}.png", "aside", "Photo gallery"),  # no page embeds it
            ]
            if pages >= 2:
                links.append(Link(f"{s}/2", "pager", "Next page"))
        else:
            prev = f"../{s}" if page == 2 else str(page - 1)
            links.append(Link(prev, "pager", "Previous page"))
            if page < pages:
                links.append(Link(str(page + 1), "pager", "Next page"))
        parent = "/" if page == 1 else (f"/section/{s}" if page == 2 else f"/section/{s}/{page - 1}")
        title = cat if page == 1 else f"{cat}: page {page}"
        kind = "section" if page == 1 else "section_page"
        return Node(
            self.host, path, kind, page, (self.host, parent), "listing", title,
            tuple(links + self._footer()),
        )  # fmt: skip

    def article(self, path: str, s: int, page: int) -> Node:
        cat = _category(self.profile, s)
        links = [
            *self._home_nav(),
            Link(f"/section/{s}", "nav", cat),
            Link("/", "crumb", "Home"),
            Link(f"/section/{s}", "crumb", cat),
            Link(f"/section/{s}", "inline", f"More from {cat}"),
            Link(f"{path}?utm_source=share&utm_medium=social", "aside", "Share this story"),
            Link(f"{path.replace('/article/', '/files/')}.pdf", "aside", "Download as PDF"),
        ]
        parent = f"/section/{s}" if page == 1 else f"/section/{s}/{page}"
        return Node(
            self.host, path, "article", page + 1, (self.host, parent), links=tuple(links + self._footer())
        )

    def calendar(self, year: int, month: int, day: int | None, event: int | None) -> Node | None:
        if not (1 <= month <= 12) or year < 1:
            return None
        if day is not None and not 1 <= day <= calendar.monthrange(year, month)[1]:
            return None
        s = self.shape
        start_y, start_m = s.calendar_start
        since = (year - start_y) * 12 + (month - start_m)
        ym = f"{year:04d}-{month:02d}"
        days = range(1, calendar.monthrange(year, month)[1] + 1) if s.calendar_daily else (1, 8, 15, 22)
        in_tree = since >= 0 and (day is None or day in days)
        if event is not None and not 1 <= event <= s.events_per_day:
            in_tree = False
        nav = self._home_nav()
        if day is None:
            links = [*nav, Link("/", "crumb", "Home")]
            links += [Link(f"/calendar/{ym}-{d:02d}", "teaser", f"Events on {ym}-{d:02d}") for d in days]
            parent = "/"
            if since > 0:
                py, pm = (year, month - 1) if month > 1 else (year - 1, 12)
                parent = f"/calendar/{py:04d}-{pm:02d}"
                links.append(Link(parent, "pager", "Previous month"))
            ny, nm = (year, month + 1) if month < 12 else (year + 1, 1)
            if ny <= 9999:
                links.append(Link(f"/calendar/{ny:04d}-{nm:02d}", "pager", "Next month"))
            return Node(
                self.host, f"/calendar/{ym}", "calendar_month", 1 + since if in_tree else None,
                (self.host, parent) if in_tree else None, "listing", f"Events in {ym}",
                tuple(links + self._footer()),
            )  # fmt: skip
        date = f"{ym}-{day:02d}"
        if event is None:
            links = [*nav, Link(f"/calendar/{ym}", "crumb", f"All of {ym}")]
            links += [
                Link(f"{date}/{e}", "teaser", f"Event {e} on {date}") for e in range(1, s.events_per_day + 1)
            ]
            return Node(
                self.host, f"/calendar/{date}", "calendar_day", 2 + since if in_tree else None,
                (self.host, f"/calendar/{ym}") if in_tree else None, "listing", f"Events on {date}",
                tuple(links + self._footer()),
            )  # fmt: skip
        links = [
            *nav,
            Link(f"../{date}", "crumb", date),
            Link(f"/calendar/{ym}", "crumb", ym),
        ]
        return Node(
            self.host, f"/calendar/{date}/{event}", "calendar_event", 3 + since if in_tree else None,
            (self.host, f"/calendar/{date}") if in_tree else None, links=tuple(links + self._footer()),
        )  # fmt: skip

    def blog(self, post: int | None) -> Node:
        main_home = self.o.url(self.main) + "/"
        if post is None:
            links = [Link(main_home, "nav", "Main site"), Link("./", "nav", "Blog")]
            links += [Link(f"post/{k}", "teaser") for k in range(1, self.shape.blog_posts + 1)]
            return Node(
                self.host, "/", "blog_home", 1, (self.main, "/"), "listing", f"The {self.profile.name} blog",
                tuple(links + self._footer()), base_href=self.o.url(self.host) + "/",
            )  # fmt: skip
        path = f"/post/{post}"
        links = [
            Link("/", "nav", "Blog"),
            Link(main_home, "nav", "Main site"),
            Link(f"{path}?utm_source=rss", "aside", "Permalink"),
        ]
        return Node(self.host, path, "blog_post", 2, (self.host, "/"), links=tuple(links + self._footer()))

    def robots_page(self, path: str) -> Node:
        kind, meta, header = ROBOTS_PAGES[path]
        links = [*self._home_nav(), Link("/", "crumb", "Home")]
        links += [Link(f"{path}/{i}", "teaser") for i in range(1, HIDDEN_CHILDREN + 1)]
        return Node(
            self.host, path, kind, 1, (self.host, "/"), "listing", kind.replace("_", " ").title(),
            tuple(links + self._footer()), robots_meta=meta, x_robots=header,
        )  # fmt: skip

    def hidden(self, parent: str, i: int) -> Node:
        links = [*self._home_nav(), Link(parent, "crumb", "Back")]
        in_tree = 1 <= i <= HIDDEN_CHILDREN
        return Node(
            self.host, f"{parent}/{i}", "hidden", 2 if in_tree else None,
            (self.host, parent) if in_tree else None, links=tuple(links + self._footer()),
        )  # fmt: skip

    def leaf(
        self,
        path: str,
        kind: str,
        level: int | None,
        parent: str | None,
        *,
        extra: dict[str, int] | None = None,
        final_path: str | None = None,
    ) -> Node:
        """A tree leaf or a page outside the tree: links to the site's home and partners only."""
        template: Template = "article" if kind in _ARTICLE_LIKE else "special"
        if kind in ("listing", "home"):
            template = "listing"
        links = tuple(self._home_nav() + self._footer()) if template != "special" else ()
        return Node(
            self.host, path, kind, level, (self.host, parent) if parent else None, template,
            links=links, final_path=final_path, extra=extra or {},
        )  # fmt: skip

    # -- dispatch -------------------------------------------------------------------------
    def node(self, path: str) -> Node:
        if self.is_blog:
            if path == "/":
                return self.blog(None)
            m = _NUM_RE.match(path)
            if m and m.group(1) == "post" and 1 <= int(m.group(2)) <= self.shape.blog_posts:
                return self.blog(int(m.group(2)))
        else:
            found = self._tree_node(path)
            if found is not None:
                return found
        return self._legacy(path)

    def _tree_node(self, path: str) -> Node | None:
        shape = self.shape
        if path == "/":
            return self.home()
        m = _SECTION_RE.match(path)
        if m:
            s, page = int(m.group(1)), int(m.group(2) or 1)
            if 1 <= s <= shape.sections and (m.group(2) is None or 2 <= page <= shape.pages[s - 1]):
                return self.section(s, page)
            return self.leaf(path, "unknown", None, None)
        m = _ARTICLE_RE.match(path)
        if m:
            n = int(m.group(1))
            s, page, item = n // 1000, n // 100 % 10, n % 100
            if (
                1 <= s <= shape.sections
                and 1 <= page <= shape.pages[s - 1]
                and 1 <= item <= shape.articles_per_page
            ):
                return self.article(path, s, page)
            return None
        m = _CAL_RE.match(path)
        if m:
            day = int(m.group(3)) if m.group(3) else None
            event = int(m.group(4)) if m.group(4) else None
            return self.calendar(int(m.group(1)), int(m.group(2)), day, event) or self.leaf(
                path, "unknown", None, None
            )
        if path in ROBOTS_PAGES:
            return self.robots_page(path)
        m = _HIDDEN_RE.match(path)
        if m:
            return self.hidden(m.group(1), int(m.group(2)))
        special = next((sp for sp in shape.specials if sp.path.partition("?")[0] == path), None)
        if special is not None:
            return self._special(path, special.kind, 2, f"/section/{special.section}")
        if path == "/app/1":
            return self.leaf(path, "spa", 2, "/section/1", extra={"n": 1})
        if path == PRIVATE_PREFIX + "1":
            kind = "robots_blocked" if self.profile.disallow_private else "private_page"
            return self.leaf(path, kind, 1, "/")
        if path == "/admin/":
            return self.leaf(path, "admin", 1, "/")
        if path.strip("/") in STATIC_PAGES and path == "/" + path.strip("/"):
            return self.leaf(path, "static", 1, "/")
        m = _NUM_RE.match(path)
        if m and m.group(1) == "sponsored" and 1 <= int(m.group(2)) <= shape.sections + 1:
            k = int(m.group(2))
            return self.leaf(path, "sponsored", 1 if k == 1 else 2, "/" if k == 1 else f"/section/{k - 1}")
        return None

    def _special(self, path: str, kind: str, level: int | None, parent: str | None) -> Node:
        extra, final_path = path_numbers(path)
        return self.leaf(path, kind, level, parent, extra=extra, final_path=final_path)

    def _legacy(self, path: str) -> Node:
        """Pages outside the tree: the URL kinds of urls.py and anything else the server answers."""
        return self._special(
            path, path_kind(path, disallow_private=self.profile.disallow_private), None, None
        )


def node(origin: Origin, path: str) -> Node:
    """The page at ``path`` on ``origin.host`` (a generated demo host), as the server serves it."""
    return _Builder(origin).node(path)
