"""The one list parser (workers/lists.py) and the CLI's reading of targets (list_input.py).

BAD_LINES is the table of refused lines; tests/integration/test_list_input.py runs the same
table through `streamcrawl crawl` and through Dagster's tranco_list asset.
"""

from __future__ import annotations

import gzip
import io
import zipfile
from pathlib import Path

import pytest

from workers.cli.list_input import load_targets
from workers.errors import ConfigError
from workers.lists import ListEntry, normalize_domain, parse_list_lines, read_list_file
from workers.urls import InvalidURL, canonicalize

# (line, reason in a file read by `crawl` (auto), reason in a Tranco list (ranked)).
BAD_LINES: list[tuple[str, str, str]] = [
    ("http://[::1", "malformed URL (Invalid IPv6 URL)", "a URL where a `rank,domain` row belongs"),
    (
        "ftp://files.example.org/a",
        "non-HTTP(S) scheme 'ftp' refused",
        "a URL where a `rank,domain` row belongs",
    ),
    ("mailto:me@x.org", "non-HTTP(S) scheme 'mailto' refused", "a URL where a `rank,domain` row belongs"),
    (
        "javascript:alert(1)",
        "non-HTTP(S) scheme 'javascript' refused",
        "a URL where a `rank,domain` row belongs",
    ),
    (
        "6;site-006.demo.test",
        "';' separates the rank from the domain",
        "';' separates the rank from the domain",
    ),
    (
        "7\tsite-007.demo.test",
        "a tab separates the rank from the domain",
        "a tab separates the rank from the domain",
    ),
    ("8,site-008.demo.test,extra", "unexpected column 3 ('extra')", "unexpected column 3 ('extra')"),
    ("9,mailto:me@x.org", "non-HTTP(S) scheme 'mailto' refused", "non-HTTP(S) scheme 'mailto' refused"),
    ("10,https://x.org/", "is a URL where a bare domain belongs", "is a URL where a bare domain belongs"),
    ("0,zero.example", "rank 0 is not positive", "rank 0 is not positive"),
    ("x,foo.example", "rank 'x' is not a whole number", "rank 'x' is not a whole number"),
    ("1.5,half.example", "rank '1.5' is not a whole number", "rank '1.5' is not a whole number"),
    ("11,", "no domain after the rank", "no domain after the rank"),
    ("12,127.0.0.1", "is an IP address or has a numeric top-level domain", "is an IP address"),
    ("13,a b.example", "a space is not allowed in a host name", "a space is not allowed in a host name"),
    ("14,bad_label.example", "invalid label 'bad_label'", "invalid label 'bad_label'"),
    ("15,localhost", "'localhost' has no top-level domain", "'localhost' has no top-level domain"),
    ("16,-dash.example", "invalid label '-dash'", "invalid label '-dash'"),
    ("17,site-017.demo.test:8080", "':' is not allowed in a host name", "':' is not allowed in a host name"),
    ("18,a..example", "has an empty label", "has an empty label"),
    (
        "http://host:99999/",
        "malformed URL (Port out of range 0-65535)",
        "a URL where a `rank,domain` row belongs",
    ),
    ("http://", "URL has no host", "a URL where a `rank,domain` row belongs"),
    ("me@x.org", "looks like an e-mail address", "no rank: expected `rank,domain`"),
    ("https://user:pw@x.org/", "carries credentials", "a URL where a `rank,domain` row belongs"),
    ("example.com", "duplicate of line 1", "no rank: expected `rank,domain`"),
    ("19,Example.COM.", "duplicate of line 1", "duplicate of line 1"),
    ("20,dup-rank.example", "", ""),  # first use of rank 20: accepted
    ("20,other.example", "duplicate rank 20 (first on line", "duplicate rank 20 (first on line"),
]
GOOD_FIRST = "1,example.com"


def _table_lines() -> list[str]:
    return [GOOD_FIRST, *(line for line, _, _ in BAD_LINES)]


@pytest.mark.parametrize("kind", ["auto", "ranked"])
def test_every_bad_line_is_refused_with_its_line_number_and_reason(kind: str) -> None:
    parsed = parse_list_lines(_table_lines(), kind=kind)  # type: ignore[arg-type]
    by_line = {r.line: r for r in parsed.rejected}
    for number, (line, auto_reason, ranked_reason) in enumerate(BAD_LINES, start=2):
        expected = auto_reason if kind == "auto" else ranked_reason
        if not expected:
            assert number not in by_line, by_line.get(number)
            continue
        assert number in by_line, f"line {number} {line!r} was accepted"
        assert by_line[number].text == line
        assert expected in by_line[number].reason, (line, by_line[number].reason)
    assert [e.domain for e in parsed.entries] == ["example.com", "dup-rank.example"]


def test_csv_quotes_bom_crlf_and_blank_lines() -> None:
    lines = [
        "\ufeff1,example.com\r\n",
        "\r\n",
        '"2", "quoted.example"\r\n',
        "# a comment\n",
        "  3 , spaced.example \n",
    ]
    parsed = parse_list_lines(lines)
    assert parsed.rejected == []
    assert parsed.ranked == [(1, "example.com"), (2, "quoted.example"), (3, "spaced.example")]
    assert parsed.entries[0] == ListEntry(url="https://example.com/", rank=1, domain="example.com")


def test_a_header_row_names_the_columns_and_extra_columns_are_ignored() -> None:
    lines = ["GlobalRank,TldRank,Domain,TLD", "1,1,a.example,example", "2,2,b.example,example", "3,3"]
    parsed = parse_list_lines(lines, kind="ranked")
    assert parsed.ranked == [(1, "a.example"), (2, "b.example")]
    assert parsed.ignored_columns == ("TldRank", "TLD")
    assert [(r.line, r.reason) for r in parsed.rejected] == [
        (4, "2 columns: no column 3 (domain, as the header names it)")
    ]


def test_url_lists_keep_commas_in_urls_and_give_bare_domains_the_scheme() -> None:
    parsed = parse_list_lines(
        ["https://example.com/a,b?x=1", "example.org", "http://EXAMPLE.net:8080/p"], scheme="http"
    )
    assert [e.url for e in parsed.entries] == [
        canonicalize("https://example.com/a,b?x=1"),
        "http://example.org/",
        "http://example.net:8080/p",
    ]
    assert all(e.rank is None for e in parsed.entries)


def test_ranked_urls_are_canonical() -> None:
    for domain in ("example.com", "bücher.de", "xn--bcher-kva.de", "a-b.co.uk"):
        entry = parse_list_lines([f"1,{domain}"]).entries[0]
        assert entry.url == canonicalize(f"https://{domain}/")


def test_normalize_domain() -> None:
    assert normalize_domain(" Example.COM. ") == "example.com"
    assert normalize_domain("bücher.de") == "xn--bcher-kva.de"
    for bad in ("localhost", "-a.com", "a_b.com", "http://x.com/", "1.2.3.4", "", "a..com", "mailto:x@y.org"):
        with pytest.raises(InvalidURL):
            normalize_domain(bad)


def _write(path: Path, text: str) -> Path:
    path.write_text(text, encoding="utf-8")
    return path


def test_zip_gzip_and_plain_files_read_the_same(tmp_path: Path) -> None:
    body = "1,example.com\n2,example.org\n3,bad_label.example\n"
    plain = _write(tmp_path / "top.csv", body)
    gz = tmp_path / "top.csv.gz"
    gz.write_bytes(gzip.compress(body.encode()))
    zipped = tmp_path / "top-1m.csv.zip"
    with zipfile.ZipFile(zipped, "w") as archive:
        archive.writestr("top-1m.csv", body)
    results = [read_list_file(p, kind="ranked") for p in (plain, gz, zipped)]
    assert all(r.ranked == [(1, "example.com"), (2, "example.org")] for r in results)
    assert all([x.line for x in r.rejected] == [3] for r in results)


def test_unreadable_files_are_one_line_errors(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="not a text list"):
        read_list_file(_bytes(tmp_path / "x.bin", b"\x89PNG\r\n\x1a\n\x00\x00"))
    with pytest.raises(ConfigError, match="UTF-16"):
        read_list_file(_bytes(tmp_path / "u16.csv", "1,a.com\n".encode("utf-16")))
    with pytest.raises(ConfigError, match="cannot read"):
        read_list_file(_bytes(tmp_path / "broken.csv.gz", b"\x1f\x8b\x08\x00garbage"))
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w") as archive:
        archive.writestr("a.csv", "1,a.com\n")
        archive.writestr("b.csv", "1,b.com\n")
    with pytest.raises(ConfigError, match="several lists"):
        read_list_file(_bytes(tmp_path / "two.zip", buf.getvalue()))
    latin = read_list_file(_bytes(tmp_path / "latin.csv", b"1,a.com\n2,caf\xe9.example\n"))
    assert [(r.line, r.reason) for r in latin.rejected] == [(2, "not UTF-8 text (byte 0xe9 at column 6)")]


def _bytes(path: Path, data: bytes) -> Path:
    path.write_bytes(data)
    return path


def test_a_url_argument_is_a_url_not_a_path(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)
    targets = load_targets(
        ["https://example.com/robots.txt", "example.org/sitemap.txt", "site.example"], scheme="https"
    )
    assert [e.url for e in targets.entries] == [
        "https://example.com/robots.txt",
        "https://example.org/sitemap.txt",
        "https://site.example/",
    ]
    with pytest.raises(
        ConfigError, match=r"cannot crawl 'ftp://x.org/a': non-HTTP\(S\) scheme 'ftp' refused$"
    ):
        load_targets(["ftp://x.org/a"], scheme="https")
    with pytest.raises(ConfigError, match="non-HTTP"):
        load_targets(["mailto:me@x.org"], scheme="https")
    with pytest.raises(ConfigError, match="malformed URL"):
        load_targets(["http://[::1"], scheme="https")
    for missing in ("lists/top.csv", "./top.csv", "top-1m.csv.zip", "missing.txt"):
        with pytest.raises(ConfigError, match="list file not found"):
            load_targets([missing], scheme="https")


def test_targets_merge_files_and_urls_first_occurrence_wins(tmp_path: Path) -> None:
    one = _write(tmp_path / "one.csv", "1,a.example\n2,b.example\nnope;x\n")
    two = _write(tmp_path / "two.txt", "https://b.example/\nhttps://c.example/x\n")
    targets = load_targets([str(one), str(two), "a.example"], scheme="https")
    assert [e.url for e in targets.entries] == [
        "https://a.example/",
        "https://b.example/",
        "https://c.example/x",
    ]
    assert [(name, r.line) for name, r in targets.rejected] == [(str(one), 3)]
    with pytest.raises(ConfigError, match="nothing to crawl: all 1 lines were refused"):
        load_targets([str(_write(tmp_path / "bad.csv", "6;x.example\n"))], scheme="https")
