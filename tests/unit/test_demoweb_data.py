"""The shared-data hosts: locating the data dir, file lookup, and a clear 404 when it is missing."""

from __future__ import annotations

import logging
from pathlib import Path

import pytest

from workers.demoweb.data import DATA_DIR_ENV, DataFiles, locate_data_dir


def test_data_dir_resolution_order(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.setenv(DATA_DIR_ENV, str(tmp_path / "env"))
    assert locate_data_dir(tmp_path / "explicit") == tmp_path / "explicit"
    assert locate_data_dir() == tmp_path / "env"
    monkeypatch.delenv(DATA_DIR_ENV)
    found = locate_data_dir()
    assert found is None or found.name == "data"


def test_missing_data_dir_logs_once_and_answers_404(tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    with caplog.at_level(logging.WARNING, logger="workers.demoweb.data"):
        files = DataFiles(tmp_path / "nowhere")
    assert "demo data dir not found" in caplog.text
    assert files.reply("readability", "/aclu/").status == 404
    assert files.readability == () and files.spa_apps == {} and files.rendertron == ()


def test_file_lookup_in_a_fake_data_dir(tmp_path: Path) -> None:
    page = tmp_path / "readability" / "test" / "test-pages" / "demo"
    page.mkdir(parents=True)
    (page / "source.html").write_text("<html><body><p>hello</p></body></html>")
    (tmp_path / "secret.txt").write_text("no")
    app = tmp_path / "spa" / "todomvc" / "examples" / "vue" / "dist"
    (app / "assets").mkdir(parents=True)
    (app / "index.html").write_text('<div id="app"></div><script src="./assets/x.js"></script>')
    (app / "assets" / "x.js").write_text("console.log(1)")
    rendertron = tmp_path / "spa" / "rendertron" / "test-resources"
    rendertron.mkdir(parents=True)
    (rendertron / "basic-script.html").write_text("<script></script>")
    files = DataFiles(tmp_path)
    assert files.readability == ("demo",)
    assert list(files.spa_apps) == ["vue"]  # no manifest: found by globbing the builds
    ok = files.reply("readability", "/demo/")
    assert ok.status == 200 and b"hello" in ok.body and ok.content_type.startswith("text/html")
    moved = files.reply("readability", "/demo")
    assert (moved.status, moved.location) == (301, "/demo/")
    assert files.reply("readability", "/demo/../../../../secret.txt").status == 404
    assert files.reply("spa", "/vue/").body.startswith(b'<div id="app">')
    js = files.reply("spa", "/vue/assets/x.js")
    assert js.status == 200 and "javascript" in js.content_type
    assert files.reply("rendertron", "/basic-script.html").status == 200
    index = files.reply("spa", "/")
    assert index.status == 200 and b'href="/vue/"' in index.body


def test_real_manifest_when_present() -> None:
    files = DataFiles(locate_data_dir())
    if files.root is None:
        pytest.skip("../shared/data not present")
    assert len(files.readability) >= 100
    assert files.spa_apps["angular"].directory.name == "browser"
    assert files.spa_apps["react"].label == "csr"
    assert "basic-script.html" in files.rendertron
