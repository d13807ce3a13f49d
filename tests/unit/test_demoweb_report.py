"""`streamcrawl demo`'s comparison with the oracle, with a fake progress (no stack)."""

from __future__ import annotations

import argparse
import json
from collections.abc import Sequence

import pytest

from workers.cli import cmd_demo
from workers.cli.main import build_parser
from workers.demoweb.hosts import demo_host
from workers.demoweb.oracle import Expectation, expect_crawl
from workers.demoweb.report import CrawlProgress, ProgressCounts, demo_report
from workers.errors import ConfigError
from workers.messages import Scope
from workers.settings import IngestorSettings, Settings
from workers.urls import url_hash

PORT = 8080


def _homes(n: int) -> list[str]:
    return [f"http://{demo_host(i)}:{PORT}/" for i in range(1, n + 1)]


def _correct(expectation: Expectation) -> ProgressCounts:
    """The progress a correct crawl ends with."""
    return ProgressCounts(
        requested=expectation.requested,
        stored=expectation.expected,
        dead_lettered=sum(expectation.dead_lettered.values()),
        lost=0,
        discovered=expectation.discovered,
        skipped=dict(expectation.skipped),
    )


def _hashes(urls: frozenset[str] | set[str]) -> set[str]:
    return {url_hash(u) for u in urls}


@pytest.fixture(scope="module")
def expectation() -> Expectation:
    return expect_crawl(_homes(3), Scope(mode="domain", max_depth=2))


def test_a_correct_crawl_reports_nothing_unexpected_missing_or_lost(expectation: Expectation) -> None:
    report = demo_report(expectation, _hashes(expectation.stored), _correct(expectation), batch="b1")
    assert report.ok and report.exact and report.explain() == []
    out = report.to_json()
    assert {"expected", "stored", "dead_lettered", "skipped", "discovered", "unexpected", "lost"} <= set(out)
    assert out["stored"] == out["expected"] == expectation.expected
    assert (out["unexpected"], out["missing"], out["lost"]) == (0, 0, 0)
    assert out["skipped"] == dict(sorted(expectation.skipped.items())) == out["expected_skipped"]
    assert out["discovered"] == expectation.requested - 3
    json.dumps(out)


def test_wrong_pages_are_counted_and_named(expectation: Expectation) -> None:
    host = demo_host(2)
    canary = f"http://{host}:{PORT}/sponsored/1"  # only linked with rel=nofollow
    noindex = f"http://{host}:{PORT}/noindex/1"  # requested, must not be stored
    assert canary in expectation.dropped and noindex in expectation.urls
    gone = sorted(expectation.stored)[:2]
    stored = (_hashes(expectation.stored) - _hashes(set(gone))) | _hashes({canary, noindex}) | {"f" * 32}
    progress = ProgressCounts(requested=100, stored=0, dead_lettered=0, lost=7)
    report = demo_report(expectation, stored, progress, batch="b2")
    assert (report.unexpected, report.missing, report.lost) == (3, 2, 7) and not report.ok
    assert set(report.unexpected_sample) == {canary, noindex, "f" * 32}
    assert set(report.missing_sample) == set(gone)
    lines = report.explain()
    assert len(lines) == 3 and "3 stored pages" in lines[0] and "7 requested URLs" in lines[2]


def test_an_inexact_oracle_bounds_instead_of_equating() -> None:
    racy = expect_crawl(_homes(1), Scope(mode="domain", max_depth=2), sitemaps=True)
    assert not racy.exact and racy.certain_stored < racy.stored
    report = demo_report(racy, _hashes(racy.certain_stored), _correct(racy), batch="b3")
    assert report.ok and report.stored < report.expected and "upper bound" in report.explain()[0]
    outside = f"http://{demo_host(1)}:{PORT}/calendar/2099-01"
    report = demo_report(racy, _hashes(racy.stored | {outside}), _correct(racy), batch="b3")
    assert report.unexpected == 1 and report.missing == 0


def _args(*argv: str) -> argparse.Namespace:
    return build_parser().parse_args(["demo", *argv])


def _demo_settings() -> Settings:
    return Settings(
        ingestor=IngestorSettings(resolve_overrides={"*.demo.test": "127.0.0.1"}, allow_private_networks=True)
    )


def test_the_cli_crawls_the_listed_homes_and_reports(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    calls: list[tuple[Sequence[str], Scope]] = []

    class FakeWeb:
        port = PORT

        def __init__(self, **_: object) -> None: ...

        def ensure_running(self) -> None: ...

        def address(self) -> str:
            return f"http://127.0.0.1:{PORT}"

    async def publish_and_wait(
        _settings: Settings, urls: Sequence[str], *, scope: Scope, **_: object
    ) -> tuple[CrawlProgress, set[str]]:
        calls.append((urls, scope))
        expectation = expect_crawl(urls, scope)
        return _correct(expectation), _hashes(expectation.stored)

    monkeypatch.setattr(cmd_demo, "DemoWebServer", FakeWeb)
    monkeypatch.setattr(cmd_demo, "publish_and_wait", publish_and_wait)
    args = _args("--hosts", "3", "--depth", "1", "--scope", "host", "--json")
    assert cmd_demo.run(args, _demo_settings()) == 0
    urls, scope = calls[0]
    assert list(urls) == _homes(3)
    assert (scope.mode, scope.max_depth, scope.max_pages_per_host) == ("host", 1, None)
    out = json.loads(capsys.readouterr().out.strip().splitlines()[-1])
    assert out["stored"] == out["expected"] > 3 and out["lost"] == out["unexpected"] == 0
    assert cmd_demo.DEFAULT_DEPTH >= 2  # make run crawls with discovery on


def test_the_cli_refuses_what_it_cannot_do() -> None:
    with pytest.raises(ConfigError, match=r"127\.0\.0\.1"):
        cmd_demo.run(_args(), Settings())
    with pytest.raises(ConfigError, match="depth"):
        cmd_demo.run(_args("--depth", "-1"), _demo_settings())
    with pytest.raises(ConfigError, match="at least 1"):
        cmd_demo.run(_args("--hosts", "0"), _demo_settings())
