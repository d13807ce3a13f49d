"""The table of bad list lines (tests/unit/test_lists.py) through `streamcrawl crawl` and through
Dagster's tranco_list asset: each line refused with its line number and its reason, and no input
of the table crashes the CLI (as a list file or as a command-line argument)."""

from __future__ import annotations

import json
import uuid
from pathlib import Path

import pytest
from dagster import DagsterInstance

from tests.integration.test_dagster_assets import load_list
from tests.unit.test_lists import BAD_LINES, GOOD_FIRST
from workers.cli.main import main
from workers.settings import Settings

pytestmark = [
    pytest.mark.integration,
    pytest.mark.filterwarnings("ignore::dagster_shared.utils.warnings.BetaWarning"),
]


def _table(tmp: Path) -> Path:
    path = tmp / "bad-lines.csv"
    path.write_text("\n".join([GOOD_FIRST, *(line for line, _, _ in BAD_LINES)]) + "\n", encoding="utf-8")
    return path


def test_the_cli_refuses_each_bad_line_with_its_reason(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(["crawl", str(_table(tmp_path)), "--dry-run", "--json"]) == 0
    doc = json.loads(capsys.readouterr().out)
    refused = {r["line"]: r for r in doc["rejected"]}
    for number, (line, reason, _ranked) in enumerate(BAD_LINES, start=2):
        if reason:
            assert refused[number]["text"] == line and reason in refused[number]["reason"], (
                line,
                refused.get(number),
            )
        else:
            assert number not in refused
    assert doc["urls"] == 2

    assert main(["crawl", str(_table(tmp_path)), "--dry-run"]) == 0
    out, err = capsys.readouterr()
    assert out.split() == ["https://example.com/", "https://dup-rank.example/"]
    assert "line 2: 'http://[::1': malformed URL (Invalid IPv6 URL)" in err
    assert f"{len(refused)} lines refused" in err and "Traceback" not in err


@pytest.mark.parametrize(
    "line", [line for line, reason, _ in BAD_LINES if reason and "duplicate" not in reason]
)
def test_no_bad_line_crashes_the_cli_as_an_argument(line: str, capsys: pytest.CaptureFixture[str]) -> None:
    code = main(["crawl", line, "--dry-run"])
    out, err = capsys.readouterr()
    assert code == 1 and out == "" and len(err.splitlines()) == 1, (line, err)
    assert err.startswith("streamcrawl crawl: error: ") and "Traceback" not in err


def test_the_dagster_loader_refuses_the_same_lines(settings: Settings, tmp_path: Path) -> None:
    meta = load_list(settings, DagsterInstance.ephemeral(), _table(tmp_path), f"bad-{uuid.uuid4().hex[:6]}")
    expected = [(n, reason) for n, (_, _, reason) in enumerate(BAD_LINES, start=2) if reason]
    assert (meta["row_count"], meta["rejected_count"]) == (2, len(expected))
    shown = meta["rejected_examples"].splitlines()
    for number, reason in expected:
        assert any(s.startswith(f"- line {number}: ") and reason in s for s in shown), (number, reason, shown)
