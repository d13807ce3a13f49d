"""Generated single-page-app shells: an empty root, a script bundle, and a JSON API.

The shell's static HTML holds no article text (only a noscript line). After the window
``load`` event the site's bundle fetches ``/api/app/<n>.json`` and injects a headline and
paragraphs into the root, and sets ``document.title``: a browser (the rich renderer) sees
an article, a static fetch sees an empty page. Each site's shells come in one flavour
(react: ``<div id="root">``; nuxt: ``window.__NUXT__`` + a loading spinner; angular:
``<app-root ng-app>``), so the router's framework rules all get exercised.
"""

from __future__ import annotations

import hashlib
import json
from html import escape

from workers.demoweb.site import Origin, SiteProfile
from workers.demoweb.text import headline, paragraph, rng_for

__all__ = ["spa_bundle", "spa_bundle_path", "spa_data", "spa_shell", "spa_title"]

_ROOT_ID = {"react": "root", "nuxt": "__nuxt", "angular": "app-root"}

_BUNDLE = """/* demo SPA bundle (%(host)s) */
(function () {
  "use strict";
  function el(tag, text) { var e = document.createElement(tag); if (text) { e.textContent = text; } return e; }
  function render(data) {
    var root = document.getElementById(%(root)s) || document.querySelector("app-root");
    root.innerHTML = "";
    var main = el("main"); main.className = "content";
    var art = el("article");
    art.appendChild(el("h1", data.title));
    var by = el("p", "By " + data.author); by.className = "byline"; art.appendChild(by);
    data.paragraphs.forEach(function (t) { art.appendChild(el("p", t)); });
    main.appendChild(art);
    root.appendChild(main);
    document.title = data.title;
    document.documentElement.setAttribute("data-rendered", "true");
  }
  function load() {
    var page = document.body.getAttribute("data-page");
    fetch("/api/app/" + page + ".json", {headers: {"Accept": "application/json"}})
      .then(function (r) { return r.json(); })
      .then(render)
      .catch(function (e) { document.body.setAttribute("data-error", String(e)); });
  }
  if (document.readyState === "complete") { load(); } else { window.addEventListener("load", load); }
})();
"""


def spa_bundle_path(profile: SiteProfile) -> str:
    digest = hashlib.blake2b(profile.host.encode(), digest_size=4).hexdigest()
    return f"/static/js/main.{digest}.bundle.js"


def spa_bundle(profile: SiteProfile) -> bytes:
    root = json.dumps(_ROOT_ID[profile.spa_flavour])
    return (_BUNDLE % {"host": profile.host, "root": root}).encode()


def spa_title(profile: SiteProfile, n: int) -> str:
    """The headline the bundle injects into ``/app/<n>`` (absent from the static HTML)."""
    return headline(rng_for(profile.host, "spa", n), profile.topic)


def spa_data(profile: SiteProfile, n: int) -> bytes:
    rng = rng_for(profile.host, "spa", n)
    title = headline(rng, profile.topic)
    paras = [paragraph(rng, profile.topic, profile.lang) for _ in range(rng.randint(6, 14))]
    author = f"Staff of {profile.name}"
    return json.dumps({"title": title, "author": author, "paragraphs": paras}).encode()


def spa_shell(origin: Origin, profile: SiteProfile, n: int) -> bytes:
    flavour = profile.spa_flavour
    bundle = spa_bundle_path(profile)
    if flavour == "react":
        root = '<div id="root"></div>'
        extra_head = ""
    elif flavour == "nuxt":
        root = '<div id="__nuxt"><div class="loading spinner" aria-busy="true">Loading…</div></div>'
        extra_head = "<script>window.__NUXT__={config:{public:{}},state:{}}</script>"
    else:
        root = '<app-root ng-app="demo" ng-controller="MainCtrl"></app-root>'
        extra_head = ""
    return (
        f'<!DOCTYPE html>\n<html lang="{profile.lang}"><head><meta charset="utf-8">'
        '<meta name="viewport" content="width=device-width, initial-scale=1">'
        f"<title>{escape(profile.name)}</title>"
        f'<link rel="canonical" href="{origin.base}/app/{n}">'
        f'<link rel="stylesheet" href="/static/site.css">{extra_head}</head>'
        f'<body data-page="{n}"><noscript>You need to enable JavaScript to run this app.</noscript>'
        f'{root}<script src="{bundle}" defer></script></body></html>'
    ).encode()
