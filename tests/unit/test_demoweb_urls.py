"""URL lists over the demo web and their expected outcomes."""

from __future__ import annotations

import json
from collections import Counter
from urllib.parse import urlsplit

import pytest

from workers.demoweb import (
    DEMO_SUFFIX,
    KINDS,
    DemoURL,
    chromium_host_rules,
    demo_host,
    demo_scheme,
    demo_tranco_csv,
    demo_urls,
    ingestor_env,
    is_demo_host,
    resolve_overrides,
)
from workers.demoweb.cli import main
from workers.demoweb.site import site_profile


@pytest.fixture(scope="module")
def mix() -> list[DemoURL]:
    return demo_urls(port=8080, hosts=60, per_host=10)


def test_default_mix_has_every_url_once_and_is_deterministic(mix: list[DemoURL]) -> None:
    assert len(mix) == 600
    assert len({u.url for u in mix}) == 600
    assert mix == demo_urls(port=8080, hosts=60, per_host=10)
    assert [u.url for u in mix] != [u.url for u in demo_urls(port=8080, hosts=60, per_host=10, seed=1)]
    assert {urlsplit(u.url).hostname for u in mix} == {demo_host(i) for i in range(1, 61)}
    assert all(u.url.startswith(f"{demo_scheme}://site-") and ":8080/" in u.url for u in mix)


def test_default_mix_proportions(mix: list[DemoURL]) -> None:
    kinds = Counter(u.kind for u in mix)
    assert 50 <= kinds["spa"] <= 70  # ~10% SPA shells
    assert kinds["article"] + kinds["article_framework"] + kinds["listing"] + kinds["home"] > 400
    assert kinds["article_framework"] > 0
    for kind, spec in KINDS.items():
        assert kinds[kind] >= 1 or not spec.listed, kind
    outcomes = Counter(u.expected for u in mix)
    assert outcomes["dead_lettered"] >= 20 and outcomes["skipped"] >= 6
    assert outcomes["stored"] > 500


def test_expected_outcomes_follow_the_kind_table(mix: list[DemoURL]) -> None:
    for u in mix:
        spec = KINDS["article" if u.kind == "article_framework" else u.kind]
        assert (u.expected, u.route, u.reason) == (spec.expected, spec.route, spec.reason)
        if u.expected == "dead_lettered" or u.expected == "skipped":
            assert u.reason
    assert {u.kind for u in mix if u.expected == "skipped"} == {
        "pdf",
        "json",
        "image",
        "report",
        "robots_blocked",
    }
    assert all(not KINDS[u.kind.replace("_framework", "")].failing for u in mix if u.expected == "skipped")


def test_failures_are_spread_so_no_breaker_trips(mix: list[DemoURL]) -> None:
    failing = Counter(
        urlsplit(u.url).hostname for u in mix if KINDS[u.kind.replace("_framework", "")].failing
    )
    assert max(failing.values()) <= 2
    for u in mix:
        if u.kind == "robots_blocked":
            assert site_profile(urlsplit(u.url).hostname or "").disallow_private
            assert urlsplit(u.url).path.startswith("/private/")


def test_markers_name_what_a_correct_extraction_contains(mix: list[DemoURL]) -> None:
    assert all(
        u.marker for u in mix if u.kind in ("article", "spa", "redirect", "flaky", "charset_shift_jis")
    )


def test_without_failures_everything_is_stored() -> None:
    urls = demo_urls(port=1, hosts=5, per_host=4, include_failures=False)
    assert len(urls) == 20 and {u.expected for u in urls} == {"stored"}


def test_small_and_excluded_lists() -> None:
    assert len(demo_urls(port=1, hosts=1, per_host=1)) == 1
    assert demo_urls(port=1, hosts=0, per_host=10) == []
    urls = demo_urls(port=1, hosts=20, per_host=10, exclude_kinds={"stall", "timeout"}, failures_each=2)
    kinds = Counter(u.kind for u in urls)
    assert kinds["stall"] == 0 and kinds["timeout"] == 0 and kinds["not_found"] == 2
    timeout = demo_urls(port=1, hosts=20, per_host=10, timeout_delay_s=7)
    assert any(u.url.endswith("?delay=7") for u in timeout if u.kind == "timeout")


def test_tranco_csv_and_resolution_helpers() -> None:
    assert demo_tranco_csv(hosts=2) == f"1,site-001.{DEMO_SUFFIX}\n2,site-002.{DEMO_SUFFIX}\n"
    assert demo_tranco_csv(hosts=1, port=9000, start_rank=5) == "5,site-001.demo.test:9000\n"
    assert resolve_overrides() == {"*.demo.test": "127.0.0.1"}
    env = ingestor_env()
    assert json.loads(env["STREAMCRAWL_INGESTOR_RESOLVE_OVERRIDES"]) == resolve_overrides()
    assert chromium_host_rules() == "MAP *.demo.test 127.0.0.1"
    assert is_demo_host("Site-001.Demo.Test.") and not is_demo_host("example.com")


def test_cli_prints_urls_and_json(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["urls", "--port", "8080", "--hosts", "3", "--per-host", "4"]) == 0
    lines = capsys.readouterr().out.splitlines()
    assert len(lines) == 12 and all(line.startswith("http://site-") for line in lines)
    assert main(["urls", "--port", "8080", "--hosts", "3", "--per-host", "4", "--json"]) == 0
    rows = [json.loads(line) for line in capsys.readouterr().out.splitlines()]
    assert {"url", "kind", "expected", "route", "reason", "marker"} <= set(rows[0])
    assert main(["tranco", "--hosts", "2", "--port", "81"]) == 0
    assert capsys.readouterr().out == "1,site-001.demo.test:81\n2,site-002.demo.test:81\n"
