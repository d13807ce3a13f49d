"""What we run inside the page: the wait strategy and the DOM capture.

**Wait strategy.** Navigation waits for the commit, then in the page for
``DOMContentLoaded`` only (a hanging image or tracker never blocks us on ``load``).
The in-page wait, not Playwright's ``wait_until="domcontentloaded"``: when the guard
aborts a navigation the page starts while it is still parsing (a form submitted by an
inline script), Chromium keeps and finishes the document but Playwright's wait never
returns (measured). Then we wait until all of these hold

- ``document.readyState == "complete"`` (scripts, styles, images done),
- no ``fetch``/``XMLHttpRequest`` in flight,
- no DOM change (nodes or text) and no ``fetch``/``XMLHttpRequest`` finished for
  ``quiet_s``: the framework has finished rendering, including what it does with a
  response (a fetch resolves on its headers, before the page reads the body and shows it),
- at least ``min(quiet_s, 50 ms)`` since the load event, so that what load handlers
  start (a timer, a fetch) is seen,

or until the cap, ``min(settle_timeout_s, time left before the page deadline)``. Hitting
the cap is not an error: we take the DOM as it is then. An init script, installed in
every page before its own scripts run, counts the requests in flight and stamps the last
DOM change, so a page that went quiet before we ask costs no extra wait.

**Capture.** The serialised DOM, with open shadow roots flattened into
it (slots resolved) when the page created any, cut in the page at ``maxChars``
characters so a page that builds a huge DOM never sends it all over the DevTools
socket (the caller cuts the UTF-8 bytes to the exact cap). The init script forces shadow
roots open so that web-component apps (Lit, plain custom elements) show their text.

**One round trip.** The Renderer runs the wait, the settle wait and the capture as one
evaluation (:func:`rendered_dom`): each evaluation is a round trip through Playwright's
driver, and the three no longer wait on each other's replies.

**Guard helpers.** The init script also makes ``navigator.serviceWorker.register()``
reject (a service worker's requests would bypass the page's interception; Playwright's
``service_workers="block"`` does the same) and ``window.open`` open nothing (a popup is
a page we do not render).
"""

from __future__ import annotations

import contextlib
import time
from typing import Any

from workers.processed import cap_utf8

__all__ = [
    "CAPTURE_JS",
    "INIT_JS",
    "PARSED_JS",
    "RENDER_JS",
    "SETTLE_JS",
    "capture",
    "parsed",
    "rendered_dom",
    "settle",
]

INIT_JS = """
(() => {
  const KEY = Symbol.for("streamcrawl.page");
  if (window[KEY] !== undefined) return;
  const box = {inflight: 0, lastMutation: performance.now(), lastNetwork: 0, shadowRoots: 0};
  Object.defineProperty(window, KEY, {value: box, enumerable: false});
  const done = () => { box.inflight = Math.max(0, box.inflight - 1); box.lastNetwork = performance.now(); };
  const origFetch = window.fetch;
  if (typeof origFetch === "function") {
    window.fetch = function (...args) {
      box.inflight += 1;
      let result;
      try { result = origFetch.apply(this, args); } catch (e) { done(); throw e; }
      Promise.resolve(result).then(done, done);
      return result;
    };
  }
  const XHR = window.XMLHttpRequest;
  if (XHR && XHR.prototype) {
    const origSend = XHR.prototype.send;
    XHR.prototype.send = function (...args) {
      box.inflight += 1;
      this.addEventListener("loadend", done, {once: true});
      try { return origSend.apply(this, args); } catch (e) { done(); throw e; }
    };
  }
  const origAttach = Element.prototype.attachShadow;
  Element.prototype.attachShadow = function (init) {
    box.shadowRoots += 1;
    return origAttach.call(this, Object.assign({}, init, {mode: "open"}));
  };
  new MutationObserver(() => { box.lastMutation = performance.now(); })
    .observe(document, {subtree: true, childList: true, characterData: true});
  if (self.ServiceWorkerContainer) {
    ServiceWorkerContainer.prototype.register = function () {
      return Promise.reject(new DOMException("service workers are blocked by the crawler", "SecurityError"));
    };
  }
  window.open = function () { return null; };
})();
"""
"""Installed in every page before its own scripts (``window[Symbol.for("streamcrawl.page")]``)."""

PARSED_JS = """
(ms) => document.readyState !== "loading" || new Promise((resolve) => {
  document.addEventListener("DOMContentLoaded", () => resolve(true), {once: true});
  setTimeout(() => resolve(document.readyState !== "loading"), ms);
})
"""
"""Resolves true once the document is parsed (DOMContentLoaded), false after ``ms``."""

SETTLE_JS = """
async ({quietMs, capMs}) => {
  const start = performance.now();
  const box = window[Symbol.for("streamcrawl.page")] || {inflight: 0, lastMutation: 0, lastNetwork: 0};
  const step = Math.max(10, Math.min(50, quietMs / 4));
  const afterLoadMs = Math.min(quietMs, 50);  // let load handlers' timers and fetches start
  for (;;) {
    const now = performance.now();
    let wait = step;  // polled while loading or fetching
    if (document.readyState === "complete" && box.inflight === 0) {
      const nav = performance.getEntriesByType("navigation")[0];
      const loaded = nav && nav.loadEventEnd ? nav.loadEventEnd : now;
      // Quiet: sleep until the earliest moment both could hold (a change meanwhile moves it).
      const active = Math.max(box.lastMutation, box.lastNetwork);
      wait = Math.max(quietMs - (now - active), afterLoadMs - (now - loaded));
      if (wait <= 0) return {settled: true, ms: now - start};
    }
    if (now - start >= capMs) return {settled: false, ms: now - start};
    await new Promise((resolve) => setTimeout(resolve, Math.max(1, Math.min(wait, capMs - (now - start)))));
  }
}
"""
"""Resolves once the page is complete, idle on the network and its DOM quiet, or at the cap."""

CAPTURE_JS = """
(maxChars) => {
  const box = window[Symbol.for("streamcrawl.page")];
  const doctype = document.doctype ? "<!DOCTYPE " + document.doctype.name + ">" : "";
  const cut = (html) => html.length > maxChars ? [html.slice(0, maxChars), true] : [html, false];
  if (!document.documentElement) return [doctype, false];
  if (!box || !box.shadowRoots) return cut(doctype + document.documentElement.outerHTML);
  const VOID = new Set(["area", "base", "br", "col", "embed", "hr", "img", "input", "link",
                        "meta", "param", "source", "track", "wbr"]);
  const text = (s) => s.replace(/&/g, "&amp;").replace(/</g, "&lt;").replace(/>/g, "&gt;");
  const attr = (s) => s.replace(/&/g, "&amp;").replace(/"/g, "&quot;");
  const out = [doctype];
  let size = doctype.length;
  const push = (...parts) => { for (const p of parts) { out.push(p); size += p.length; } };
  const walk = (node) => {
    if (size > maxChars) return;
    if (node.nodeType === Node.TEXT_NODE) { push(text(node.data)); return; }
    if (node.nodeType !== Node.ELEMENT_NODE) return;
    const tag = node.localName;
    if (tag === "script" || tag === "style" || tag === "template") return;
    if (tag === "slot") {
      const assigned = node.assignedNodes({flatten: true});
      for (const child of (assigned.length ? assigned : node.childNodes)) walk(child);
      return;
    }
    push("<", tag);
    for (const a of node.attributes) push(" ", a.name, '="', attr(a.value), '"');
    push(">");
    if (VOID.has(tag)) return;
    const children = node.shadowRoot ? node.shadowRoot.childNodes : node.childNodes;
    for (const child of children) walk(child);
    push("</", tag, ">");
  };
  walk(document.documentElement);
  return cut(out.join(""));
}
"""
"""``[html, truncated]``: the DOM as HTML (with shadow roots, a composed-tree serialisation,
scripts and styles left out), cut at ``maxChars`` characters."""


RENDER_JS = f"""
async ({{parseMs, leftMs, quietMs, settleMs, maxChars}}) => {{
  const start = performance.now();
  if (!await ({PARSED_JS})(parseMs)) return {{parsed: false}};
  const capMs = Math.min(settleMs, leftMs - (performance.now() - start) - 500);
  if (capMs > 0) {{
    try {{ await ({SETTLE_JS})({{quietMs, capMs}}); }} catch (e) {{}}
  }}
  return {{parsed: true, dom: ({CAPTURE_JS})(maxChars)}};
}}
"""
"""The three above in one round trip: parsed, then settled within ``min(settleMs, leftMs -
the parse - 0.5 s)``, then captured: ``{parsed, dom: [html, truncated]}``."""


async def rendered_dom(
    page: Any, *, timeout_s: float, quiet_s: float, settle_s: float, max_bytes: int
) -> tuple[str, bool]:
    """Wait for DOMContentLoaded, let the page settle, capture the DOM: :func:`parsed`,
    :func:`settle` and :func:`capture` in one evaluation (each costs a round trip through
    the driver). Raises TimeoutError if the document is still loading after ``timeout_s``.

    If the evaluation fails (a client-side navigation destroyed its context mid-wait),
    the new document is waited for and captured on its own, as :func:`settle` swallows
    that error.
    """
    deadline = time.monotonic() + timeout_s
    params = {
        "parseMs": max(0.0, timeout_s) * 1000,
        "leftMs": max(0.0, timeout_s) * 1000,
        "quietMs": quiet_s * 1000,
        "settleMs": settle_s * 1000,
        "maxChars": max_bytes,  # a character is at least one byte
    }
    try:
        result = await page.evaluate(RENDER_JS, params)
    except Exception:  # noqa: BLE001 - see the docstring; a crashed tab fails these too
        if not await parsed(page, timeout_s=deadline - time.monotonic()):
            raise TimeoutError("the document was still loading") from None
        return await capture(page, max_bytes=max_bytes)
    if not isinstance(result, dict) or not result.get("parsed"):
        raise TimeoutError("the document was still loading")
    return _captured(result.get("dom"), max_bytes)


async def parsed(page: Any, *, timeout_s: float) -> bool:
    """Wait up to ``timeout_s`` for DOMContentLoaded; False if the document is still loading then."""
    return bool(await page.evaluate(PARSED_JS, max(0.0, timeout_s) * 1000))


async def settle(page: Any, *, quiet_s: float, cap_s: float) -> bool:
    """Wait for the page to settle (see module docstring); True if it did before the cap.

    Errors are swallowed: a client-side navigation destroys the execution context
    mid-wait, and a crashed tab fails the capture that follows anyway.
    """
    if cap_s <= 0:
        return False
    with contextlib.suppress(Exception):
        result = await page.evaluate(SETTLE_JS, {"quietMs": quiet_s * 1000, "capMs": cap_s * 1000})
        return bool(result.get("settled")) if isinstance(result, dict) else False
    return False


async def capture(page: Any, *, max_bytes: int) -> tuple[str, bool]:
    """The rendered DOM as HTML of at most ``max_bytes`` UTF-8 bytes, and whether it was cut."""
    return _captured(
        await page.evaluate(CAPTURE_JS, max_bytes), max_bytes
    )  # a character is at least one byte


def _captured(result: Any, max_bytes: int) -> tuple[str, bool]:
    if not (isinstance(result, list) and len(result) == 2 and isinstance(result[0], str)):
        return "", False
    html, truncated = cap_utf8(result[0], max_bytes)
    return html, truncated or bool(result[1])
