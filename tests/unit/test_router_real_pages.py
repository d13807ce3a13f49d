"""Router on real pages: readable articles go fast, client-rendered apps go rich."""

from __future__ import annotations

import json

import pytest

from bench.quality import load_readability
from workers.demoweb.data import locate_data_dir
from workers.router import score_page


def test_readability_articles_route_fast() -> None:
    cases = load_readability()
    if not cases:
        pytest.skip("readability test pages (../shared/data) not available")
    rich = [c.name for c in cases if score_page(c.source).route == "rich"]
    assert len(rich) <= 0.05 * len(cases), rich


def test_client_rendered_apps_route_rich() -> None:
    root = locate_data_dir()
    if root is None or not (root / "spa" / "manifest.json").is_file():
        pytest.skip("spa data (../shared/data/spa) not available")
    manifest = root / "spa" / "manifest.json"
    apps = json.loads(manifest.read_text())
    checked = 0
    for group, entries in apps.items():
        if not group.startswith("todomvc"):
            continue
        for rel, meta in entries.items():
            if meta.get("label") not in ("csr", "csr-shadow-dom"):
                continue
            page = root / "spa" / "todomvc" / rel
            decision = score_page(page.read_bytes())
            assert decision.route == "rich", (rel, decision)
            checked += 1
    assert checked == 8


def test_router_benchmark_runs() -> None:
    from bench import stage_router

    rows = stage_router.bench(quick=True)
    assert rows and all("metric" in row for row in rows)
