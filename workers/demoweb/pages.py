"""Generated HTML pages: articles, listings, the homepage, and error pages.

Pages look like a real news site: a head with og:/article: metadata, canonical, JSON-LD
and inline CSS; a header with navigation and breadcrumbs; the main content; a related-links
aside; a footer. Every link on a page is one of ``graph.node(...).links``, rendered in its
place: the page carries exactly the links the oracle follows, and nothing else. Main content is 3-20 KB of prose so a main-content extractor has
real work to do, and boilerplate is heavy enough that whole-page text extraction is wrong.
Some static articles (``SiteProfile.framework_share``) carry Next.js-style markers
(``__NEXT_DATA__``, ``data-reactroot``, a ``*.bundle.js``) while being fully readable
without JavaScript, as about a quarter of real news pages do.
"""

from __future__ import annotations

import datetime as dt
import functools
import json
import random
from html import escape

from workers.demoweb.graph import Link, Node
from workers.demoweb.graph import node as graph_node
from workers.demoweb.site import Origin, SiteProfile, page_title, site_profile
from workers.demoweb.text import author_name, headline, paragraph, rng_for, sentence, summary

__all__ = [
    "article_page",
    "error_page",
    "is_framework_article",
    "listing_page",
    "page_title",
    "published",
    "render",
    "render_path",
]

_EPOCH = dt.datetime(2024, 1, 1, 6, 0, tzinfo=dt.UTC)

_CSS = (
    "body{margin:0;font:16px/1.6 Georgia,serif;color:#222;background:#fafafa}"
    ".site-header{background:#111;color:#eee;padding:12px 24px;display:flex;gap:24px}"
    ".site-header a{color:#eee;text-decoration:none}.main-nav ul{list-style:none;display:flex;gap:16px;margin:0;padding:0}"
    ".cookie-banner{position:fixed;bottom:0;left:0;right:0;background:#333;color:#fff;padding:8px}"
    ".content{max-width:760px;margin:24px auto;padding:0 16px}.byline{color:#666;font-size:14px}"
    "article h1{font-size:34px;line-height:1.2}article h2{margin-top:32px}blockquote{border-left:4px solid #ccc;"
    "margin:16px 0;padding-left:16px;color:#555}figure{margin:24px 0}figcaption{font-size:13px;color:#666}"
    ".related,.trending{max-width:760px;margin:24px auto;padding:0 16px;font-size:14px}"
    ".site-footer{background:#eee;padding:24px;font-size:13px;columns:3}.site-footer a{color:#444;display:block}"
    ".teaser{border-bottom:1px solid #ddd;padding:12px 0}.teaser h2{font-size:20px;margin:0}"
    "@media (max-width:600px){.site-footer{columns:1}.main-nav{display:none}}"
)


def published(rng: random.Random) -> dt.datetime:
    return _EPOCH + dt.timedelta(days=rng.randint(0, 600), minutes=rng.randint(0, 1439))


def is_framework_article(profile: SiteProfile, path: str) -> bool:
    return rng_for(profile.host, "framework", path).random() < profile.framework_share


def _a(link: Link, text: str | None = None) -> str:
    rel = f' rel="{escape(link.rel)}"' if link.rel else ""
    return f'<a href="{escape(link.href)}"{rel}>{escape(text if text is not None else link.label)}</a>'


def _placed(node: Node, place: str) -> list[Link]:
    return [link for link in node.links if link.place == place]


def _header(profile: SiteProfile, node: Node) -> str:
    items = "".join(f"<li>{_a(link)}</li>" for link in _placed(node, "nav"))
    crumbs = _placed(node, "crumb")
    trail = (
        '<nav class="breadcrumb" aria-label="Breadcrumb"><ol>'
        + "".join(f"<li>{_a(link)}</li>" for link in crumbs)
        + "</ol></nav>"
        if crumbs
        else ""
    )
    return (
        f'<header class="site-header"><span class="logo">{escape(profile.name)}</span>'
        f'<nav class="main-nav" aria-label="Sections"><ul>{items}</ul></nav>'
        '<form class="search" action="/search"><input name="q" placeholder="Search"></form></header>'
        '<div class="cookie-banner" role="dialog">We use cookies to improve your experience. '
        "<button>Accept all</button></div>" + trail
    )


def _footer(profile: SiteProfile, node: Node, rng: random.Random) -> str:
    links = "".join(_a(link) for link in _placed(node, "footer"))
    return (
        f'<footer class="site-footer"><div class="footer-links">{links}</div>'
        f"<p>&copy; {2024 + rng.randint(0, 1)} {escape(profile.name)}. All rights reserved. "
        "Reproduction without permission is prohibited.</p></footer>"
        "<script>window.dataLayer=window.dataLayer||[];function gtag(){dataLayer.push(arguments)}"
        'gtag("js",new Date());gtag("config","G-DEMO0000");</script>'
    )


def _aside(node: Node, heading: str) -> str:
    items = "".join(f"<li>{_a(link)}</li>" for link in _placed(node, "aside"))
    return f'<aside class="related"><h3>{escape(heading)}</h3><ul>{items}</ul></aside>' if items else ""


@functools.lru_cache(maxsize=4096)
def _ad_config(host: str, categories: tuple[str, ...]) -> str:
    """An inline ad-slot configuration script, as heavy as on real news pages (3-6 KB)."""
    rng = rng_for(host, "ads")
    sizes = ([300, 250], [728, 90], [970, 250], [320, 50], [160, 600])
    slots = [
        {
            "id": f"div-gpt-ad-{rng.randint(10**9, 10**10)}-{i}",
            "path": f"/{rng.randint(1000, 9999)}/{host.split('.')[0]}/{rng.choice(categories).lower()}",
            "sizes": rng.sample(sizes, rng.randint(1, 3)),
            "targeting": {"pos": rng.choice(("top", "mid", "bottom", "rail")), "refresh": rng.random() < 0.3},
        }
        for i in range(rng.randint(20, 40))
    ]
    return f"<script>var adSlots = {json.dumps(slots)};</script>"


def _head(
    origin: Origin, profile: SiteProfile, node: Node, *, title: str, description: str, extra: str = ""
) -> str:
    path = node.path
    if node.base_href:
        extra = f'<base href="{escape(node.base_href)}">' + extra
    if node.robots_meta:
        extra = f'<meta name="robots" content="{escape(node.robots_meta)}">' + extra
    return (
        f'<!DOCTYPE html>\n<html lang="{profile.lang}"><head><meta charset="utf-8">'
        '<meta name="viewport" content="width=device-width, initial-scale=1">'
        f"<title>{escape(title)} | {escape(profile.name)}</title>"
        f'<meta name="description" content="{escape(description)}">'
        f'<link rel="canonical" href="{origin.base}{escape(path)}">'
        f'<meta property="og:site_name" content="{escape(profile.name)}">'
        f'<meta property="og:title" content="{escape(title)}">'
        f'<meta property="og:url" content="{origin.base}{escape(path)}">'
        '<link rel="stylesheet" href="/static/site.css">'
        f"<style>{_CSS}</style>{_ad_config(profile.host, profile.categories)}{extra}</head>"
    )


def render(origin: Origin, node: Node) -> bytes:
    """The HTML of a listing- or article-template page (graph.Node.template)."""
    profile = site_profile(node.host)
    if node.template == "listing":
        return listing_page(origin, profile, node)
    return article_page(origin, profile, node)


def render_path(origin: Origin, path: str) -> bytes:
    """The HTML served at ``path`` on ``origin`` (tests, benchmarks)."""
    return render(origin, graph_node(origin, path))


def article_page(origin: Origin, profile: SiteProfile, node: Node) -> bytes:
    """A full article page; content is seeded by host and path (so /private/3 differs from /article/3)."""
    path = node.path
    rng = rng_for(profile.host, "article", path)
    title = headline(rng, profile.topic)
    lang, topic = profile.lang, profile.topic
    description = summary(rng, topic, lang)
    when = published(rng)
    author = author_name(rng)
    framework = is_framework_article(profile, path)
    ld = {
        "@context": "https://schema.org",
        "@type": "NewsArticle",
        "headline": title,
        "datePublished": when.isoformat(),
        "author": {"@type": "Person", "name": author},
        "publisher": {"@type": "Organization", "name": profile.name},
    }
    extra = (
        '<meta property="og:type" content="article">'
        f'<meta property="article:published_time" content="{when.isoformat()}">'
        f'<meta name="author" content="{escape(author)}">'
        f'<script type="application/ld+json">{json.dumps(ld)}</script>'
    )
    if framework:
        extra += (
            '<script id="__NEXT_DATA__" type="application/json">'
            + json.dumps({"props": {"pageProps": {"path": path}}, "page": "/article/[id]", "buildId": "demo"})
            + '</script><script src="/_next/static/chunks/main-app.bundle.js" defer></script>'
        )
    inline = _placed(node, "inline")
    body: list[str] = [f'<p class="lead"><strong>{escape(description)}</strong></p>']
    for i in range(rng.randint(10, 36)):
        text = escape(paragraph(rng, topic, lang))
        if i % 3 == 1 and inline:
            text += " " + _a(inline.pop(0))
        body.append(f"<p>{text}</p>")
        roll = rng.random()
        if i % 5 == 4 and roll < 0.5:
            body.append(f"<h2>{escape(headline(rng, topic))}</h2>")
        elif roll < 0.08:
            body.append(f"<blockquote><p>{escape(sentence(rng, topic, lang))}</p></blockquote>")
        elif roll < 0.14:
            items = "".join(
                f"<li>{escape(sentence(rng, topic, lang))}</li>" for _ in range(rng.randint(3, 5))
            )
            body.append(f"<ul>{items}</ul>")
        elif roll < 0.18:
            body.append(
                f'<figure><img src="/images/{rng.randint(1, 500)}.png" alt="{escape(title)}" width="640" height="360">'
                f"<figcaption>{escape(sentence(rng, topic, lang))}</figcaption></figure>"
            )
    body += [f"<p>{_a(link)}</p>" for link in inline]  # short pages: the rest at the end
    byline = (
        f'<p class="byline">By <span class="author">{escape(author)}</span> &middot; '
        f'<time datetime="{when.isoformat()}">{when:%d %B %Y, %H:%M}</time></p>'
    )
    content = f"<header><h1>{escape(title)}</h1>{byline}</header>" + "".join(body)
    if rng.random() < 0.75:
        main = f'<main id="content" class="content"><article class="post">{content}</article></main>'
    else:
        main = (
            f'<div id="content" class="content"><div class="entry-content story-body">{content}</div></div>'
        )
    page = _head(origin, profile, node, title=title, description=description, extra=extra)
    inner = _header(profile, node) + main + _aside(node, "Related") + _footer(profile, node, rng)
    if framework:
        inner = f'<div id="__next" data-reactroot="">{inner}</div>'
    return (page + f"<body>{inner}</body></html>").encode()


def listing_page(origin: Origin, profile: SiteProfile, node: Node) -> bytes:
    """A section front, a listing page, a calendar or blog index: teasers, a pager, asides."""
    rng = rng_for(profile.host, "listing", node.path)
    heading = node.title or rng.choice(profile.categories)
    teasers = []
    for link in _placed(node, "teaser"):
        title = link.label or page_title(profile, link.href.split("#", 1)[0])
        when = published(rng)
        teasers.append(
            f'<li><article class="teaser"><h2>{_a(link, title)}</h2>'
            f'<time datetime="{when.isoformat()}">{when:%d %b %Y}</time>'
            f"<p>{escape(summary(rng, profile.topic, profile.lang))}</p></article></li>"
        )
    pager = " ".join(_a(link) for link in _placed(node, "pager"))
    main = (
        f'<main id="content" class="content"><h1>{escape(heading)}</h1>'
        f'<ul class="teasers">{"".join(teasers)}</ul><nav class="pager">{pager}</nav></main>'
    )
    description = f"Latest {heading} news from {profile.name}."
    page = _head(origin, profile, node, title=heading, description=description)
    inner = _header(profile, node) + main + _aside(node, "Also on this site") + _footer(profile, node, rng)
    return (page + f"<body>{inner}</body></html>").encode()


def error_page(status: int, reason: str) -> bytes:
    return (
        f"<!DOCTYPE html>\n<html><head><title>{status} {escape(reason)}</title></head>"
        f"<body><h1>{status} {escape(reason)}</h1><p>The demo web returned this status on purpose.</p>"
        "</body></html>"
    ).encode()
