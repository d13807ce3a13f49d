"""Router scoring: every rule of the table, the added rules, overrides and robustness."""

from __future__ import annotations

import pytest

from workers.errors import ConfigError
from workers.router import DEFAULT_WEIGHTS, RouteDecision, resolve_weights, score_page
from workers.router.rules import RULE_DESCRIPTIONS, TEXT_PLENTY_CHARS
from workers.router.scan import FULL_TEXT_BYTES, scan_page

SCRIPT = '<script src="/static/site.js"></script>'


def words(n: int) -> str:
    """About ``n`` visible characters of prose (whitespace not counted)."""
    sentence = "Readable static prose for the router test suite. "
    per = len(sentence.replace(" ", ""))
    return sentence * (n // per + 1)


def page(body: str, *, head: str = "", scripts: str = SCRIPT, chars: int = 1000) -> str:
    return (
        f"<!doctype html><html><head><title>t</title>{head}{scripts}</head>"
        f"<body>{body}<p>{words(chars)}</p></body></html>"
    )


def fired(html: str | bytes) -> set[str]:
    return set(score_page(html).rules)


def test_plain_page_scores_base() -> None:
    decision = score_page(page(""))
    assert decision == RouteDecision(route="fast", score=100, rules=[], text_chars=decision.text_chars)
    assert 1000 <= decision.text_chars < 1100


@pytest.mark.parametrize(
    ("snippet", "rule"),
    [
        ('<script id="__NEXT_DATA__" type="application/json">{"props":{}}</script>', "next_data"),
        ("<script>window.__NUXT__={data:[]}</script>", "nuxt"),
        ('<div ng-app="shop"></div>', "angular"),
        ('<div ng-controller="Ctl"></div>', "angular"),
        ('<div data-reactroot="">x</div>', "react_root"),
        ('<script src="/js/main.bundle.js"></script>', "script_bundle"),
        ('<noscript><img src="/pixel.gif"></noscript>', "noscript"),
        ('<div class="page-loading">x</div>', "loading_indicator"),
        ('<div id="spinner">x</div>', "loading_indicator"),
        ("<article><p>x</p></article>", "article"),
        ('<main id="content"><p>x</p></main>', "main_content"),
    ],
)
def test_design_table_rules_fire(snippet: str, rule: str) -> None:
    decision = score_page(page(snippet))
    assert rule in decision.rules
    assert decision.score == 100 + DEFAULT_WEIGHTS[rule]


@pytest.mark.parametrize(
    "snippet",
    [
        '<img loading="lazy" src="a.jpg" alt="lazy loading is not a spinner">',
        "<p>The page is loading slowly, said nobody.</p>",
        "<mainframe>x</mainframe><articles>x</articles>",
        '<script>var s = "<div ng-app data-reactroot>";</script>',
        '<script src="/js/app.js"></script><noscripts>x</noscripts>',
    ],
)
def test_lookalikes_do_not_fire(snippet: str) -> None:
    assert fired(page(snippet)) == set()


def test_text_thresholds() -> None:
    assert "text_rich" in fired(page("", chars=3200))
    assert "text_plenty" in fired(page("", chars=TEXT_PLENTY_CHARS + 50))
    poor = score_page(page("", chars=100))
    assert poor.rules == ["text_poor"]
    assert poor.route == "rich"
    assert "text_plenty" not in fired(page("", chars=TEXT_PLENTY_CHARS - 100))


def test_text_in_scripts_styles_and_head_is_not_visible() -> None:
    hidden = (
        f"<style>{words(4000)}</style><script>var x = '{words(4000)}';</script>"
        f"<template><p>{words(4000)}</p></template><noscript>{words(4000)}</noscript>"
    )
    html = f"<html><head><title>{words(4000)}</title></head><body>{hidden}<p>hello</p></body></html>"
    assert scan_page(html.encode()).text_chars == len("hello")


def test_plenty_of_text_keeps_framework_pages_fast() -> None:
    markers = (
        '<noscript>enable js</noscript><div class="spinner"></div>'
        '<script src="/app.bundle.js"></script>'
        '<script id="__NEXT_DATA__" type="application/json">{}</script>'
    )
    decision = score_page(page(markers, chars=5000))
    assert {"next_data", "script_bundle", "noscript", "loading_indicator", "text_plenty"} <= set(
        decision.rules
    )
    assert decision.route == "fast"


@pytest.mark.parametrize(
    "root",
    [
        '<div id="root"></div>',
        "<div id='app'>\n </div>",
        '<div id="__next"></div>',
        '<section class="todoapp" id="root"></section>',
        "<app-root></app-root>",
        '<todo-app class="x"></todo-app>',
    ],
)
def test_empty_spa_root_is_strongly_rich(root: str) -> None:
    decision = score_page(page(root, chars=50))
    assert "empty_root" in decision.rules
    assert decision.route == "rich"
    assert decision.score <= 100 + DEFAULT_WEIGHTS["text_poor"] + DEFAULT_WEIGHTS["empty_root"]


def test_empty_custom_element_needs_little_text() -> None:
    # MathJax-style server-rendered custom elements on a readable page are not a mount point.
    assert "empty_root" not in fired(page('<mjx-c class="m"></mjx-c>', chars=800))
    assert "empty_root" not in fired(page('<div id="root"><p>server rendered</p></div>'))


def test_no_scripts_means_nothing_to_render() -> None:
    decision = score_page(page("", scripts="", chars=20))
    assert decision.rules == ["text_poor", "no_scripts"]
    assert decision.route == "fast"


def test_script_heavy_shell() -> None:
    shell = f"<html><head><script>{'var a=1;' * 5000}</script></head><body><p>Hi</p></body></html>"
    decision = score_page(shell)
    assert "script_heavy" in decision.rules
    assert decision.route == "rich"


def test_weights_override_and_threshold() -> None:
    html = page("<noscript>x</noscript><article><p>x</p></article>")
    assert score_page(html).score == 110
    assert score_page(html, weights={"noscript": -50}).score == 70
    assert score_page(html, weights={"noscript": -50}).route == "rich"
    zeroed = score_page(html, weights={"noscript": 0})
    assert zeroed.rules == ["article"]  # a zero weight switches the rule off
    assert score_page(html, threshold=111).route == "rich"
    assert score_page(html, threshold=110).route == "fast"


def test_resolve_weights() -> None:
    assert resolve_weights(None) == dict(DEFAULT_WEIGHTS)
    assert resolve_weights({"nuxt": -5})["nuxt"] == -5
    with pytest.raises(ConfigError, match="unknown router rule"):
        resolve_weights({"nxt": 1})
    assert set(RULE_DESCRIPTIONS) == set(DEFAULT_WEIGHTS)


def test_rules_are_in_table_order() -> None:
    decision = score_page(page("<article>x</article><noscript>x</noscript>", chars=3500))
    order = list(DEFAULT_WEIGHTS)
    assert decision.rules == sorted(decision.rules, key=order.index)


@pytest.mark.parametrize(
    "html",
    [
        b"",
        b"\x00\xff\xfe garbage \x80\x81",
        b"<script",
        b"<html><body><script>never closed",
        b"<body><p>unclosed <b>tags <i>everywhere",
        b"<" * 10_000,
        "<p>caf\u00e9 \ud800 lone surrogate</p>",
    ],
)
def test_malformed_input_never_raises(html: bytes | str) -> None:
    decision = score_page(html)
    assert decision.route in ("fast", "rich")


def test_upper_case_tags() -> None:
    html = f"<HTML><BODY><SCRIPT>{words(3000)}</SCRIPT><ARTICLE><P>hi</P></ARTICLE></BODY></HTML>"
    scan = scan_page(html.encode())
    assert scan.text_chars == 2
    assert "article" in scan.markers


def test_big_page_estimate_is_close() -> None:
    # Over FULL_TEXT_BYTES of markup the visible text is sampled; it must stay close.
    block = f'<div class="c"><a href="/x">nav</a><p>{words(400)}</p></div>'
    body = block * (4 * FULL_TEXT_BYTES // len(block))
    html = f"<html><body>{body}</body></html>".encode()
    exact = body.count("nav") * 3 + (len(words(400).replace(" ", ""))) * body.count("<p>")
    estimate = scan_page(html).text_chars
    assert abs(estimate - exact) / exact < 0.1


def test_giant_tag_does_not_inflate_text() -> None:
    data_uri = "data:image/png;base64," + "A" * 200_000
    html = f'<html><body><p>{words(300)}</p><img src="{data_uri}"><p>end</p></body></html>'
    assert scan_page(html.encode()).text_chars < 1000


@pytest.mark.parametrize(
    "html",
    [
        b"<" * 200_000,
        b"<div " * 50_000,
        b"<div id=root " * 20_000,
        b"<a-b " * 50_000,
        b"<body><script>" * 50_000,
    ],
)
def test_adversarial_markup_is_handled_in_linear_time(html: bytes) -> None:
    # Regexes are bounded ([^<>]{0,512}): no quadratic backtracking on garbage (no timing
    # assertion here; a quadratic scan would make this test take minutes).
    assert score_page(html).route in ("fast", "rich")


def test_unquoted_empty_root() -> None:
    assert "empty_root" in fired(page("<div id=root></div>", chars=50))
