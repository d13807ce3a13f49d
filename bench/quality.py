"""Extraction quality against real pages with ground truth: main-text token F1 and title match.

Three sets, all read from the shared data directory (never committed here):

- **readability**: ``readability/test/test-pages/<name>/expected.html`` (Readability.js's main
  content) and ``expected-metadata.json`` (its title, lang, publishedTime ...). The fast
  extractor was written against these pages (first build).
- **dragnet** (1,381 news and blog articles, 2012-13) and **cleaneval** (681 pages of every
  kind, 2007): ``extraction/<set>/input/<id>.html`` with a human gold text
  ``GoldStandard/<id>.txt``. See :func:`load_gold_set` for how each is read.

**The split (committed before any tuning):** the fast extractor is tuned on
``TUNED_ON = "cleaneval"`` only; ``dragnet`` is reported as the **unseen** set and no rule,
threshold or weight may be chosen by looking at its pages or scores. CleanEval is the
tuning set because its pages are the more varied (blogs, forums, front pages, lists as
well as articles): rules that help there are general ones; Dragnet's articles are what
a crawl of news and blog sites stores, so the unseen number is the one users care about.

**Main-text F1** is bag-of-words token F1: both texts are NFKC-normalised and lower-cased,
tokens are runs of letters/digits (``\\w`` without ``_``) except that every CJK/kana/hangul
character is a token of its own (those scripts do not separate words with spaces). With
``overlap`` = the multiset intersection of the two token bags, precision = overlap/ours,
recall = overlap/expected, F1 = 2PR/(P+R); two empty texts score 1.0, one empty text 0.0.
The expected text is the visible text of expected.html (selectolax ``text(separator=" ")``).

**Title match** is reported two ways:

- *strict*: NFKC, case-folded, whitespace-collapsed, quote-normalised equality;
- *lenient*: strict, or equality after removing a site-name part from either side: the
  title is split on the separators `` | ``, `` - ``, `` – ``, `` — ``, `` :: ``, `` · ``,
  `` / ``, `` » `` and the longest part (or the first two parts joined back) is kept.
  Containment in general is NOT accepted, so a title that is a whole page heading plus
  extra words does not count.
"""

from __future__ import annotations

import json
import re
import unicodedata
from collections import Counter
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

from selectolax.lexbor import LexborHTMLParser

from workers.demoweb.data import locate_data_dir

__all__ = [
    "GOLD_SETS",
    "TUNED_ON",
    "UNSEEN",
    "ReadabilityCase",
    "load_gold_set",
    "load_readability",
    "text_f1",
    "title_match",
    "tokens",
    "visible_text",
]

_CJK = "\u3040-\u30ff\u3400-\u4dbf\u4e00-\u9fff\uac00-\ud7af\uf900-\ufaff"
_TOKEN = re.compile(rf"[{_CJK}]|(?:(?![{_CJK}])[^\W_])+")
_SPACE = re.compile(r"\s+")
_SEPARATORS = re.compile(r"\s+(?:\||-|–|—|::|·|/|»)\s+")
_QUOTES = str.maketrans({"\u2018": "'", "\u2019": "'", "\u201c": '"', "\u201d": '"', "\u00a0": " "})


TUNED_ON = "cleaneval"
"""The only gold set the extractor's rules may be tuned on."""
UNSEEN = "dragnet"
"""The gold set reported as unseen: never look at it while tuning."""
GOLD_SETS = {"dragnet": "dragnet_data", "cleaneval": "cleaneval-final"}
"""Gold set name -> folder under ``<data>/extraction/``."""


@dataclass(frozen=True, slots=True)
class ReadabilityCase:
    """One page with its ground truth (any of the sets, despite the historical name)."""

    name: str
    source: bytes
    expected_text: str
    metadata: dict[str, object]
    charset: str | None = None
    """The set's own declaration of the page's encoding, when it has one (a transport hint)."""

    @property
    def expected_title(self) -> str:
        title = self.metadata.get("title")
        return title if isinstance(title, str) else ""


def tokens(text: str) -> list[str]:
    return _TOKEN.findall(unicodedata.normalize("NFKC", text).lower())


def text_f1(ours: str, expected: str) -> float:
    a, b = Counter(tokens(ours)), Counter(tokens(expected))
    if not a and not b:
        return 1.0
    overlap = sum((a & b).values())
    if not overlap:
        return 0.0
    precision = overlap / sum(a.values())
    recall = overlap / sum(b.values())
    return 2 * precision * recall / (precision + recall)


def _norm_title(title: str) -> str:
    return _SPACE.sub(" ", unicodedata.normalize("NFKC", title).translate(_QUOTES)).strip().casefold()


def _title_variants(title: str) -> set[str]:
    norm = _norm_title(title)
    parts = [p for p in _SEPARATORS.split(norm) if p]
    variants = {norm}
    if len(parts) > 1:
        variants.add(max(parts, key=len))
        variants.add(" - ".join(parts[:2]))
        variants.update(parts[:1] + parts[-1:])
    return variants


def title_match(ours: str | None, expected: str) -> tuple[bool, bool]:
    """(strict, lenient) match of our title against the expected one."""
    if not ours:
        return (not expected, not expected)
    strict = _norm_title(ours) == _norm_title(expected)
    if strict:
        return True, True
    exp_norm, our_norm = _norm_title(expected), _norm_title(ours)
    lenient = exp_norm in _title_variants(ours) or our_norm in _title_variants(expected)
    return False, lenient


def visible_text(html: bytes | str) -> str:
    tree = LexborHTMLParser(html)
    tree.strip_tags(["script", "style", "noscript", "template"])
    node = tree.body or tree.root
    return node.text(separator=" ") if node is not None else ""


def _iter_cases(root: Path) -> Iterator[ReadabilityCase]:
    for folder in sorted((root / "readability" / "test" / "test-pages").iterdir()):
        source = folder / "source.html"
        expected = folder / "expected.html"
        if not source.is_file() or not expected.is_file():
            continue
        meta_path = folder / "expected-metadata.json"
        metadata = json.loads(meta_path.read_text()) if meta_path.is_file() else {}
        yield ReadabilityCase(
            name=folder.name,
            source=source.read_bytes(),
            expected_text=visible_text(expected.read_bytes()),
            metadata=metadata,
        )


_COMMENTS = re.compile(rb"^[^\n]{0,20}COMMENTS[ \t]*$", re.MULTILINE)
_GOLD_MARK = re.compile(r"^\s*<(?:p|h|l)>", re.MULTILINE)
_WRAPPER = re.compile(rb"\A\s*<text\b([^>]*)>")
_WRAPPER_END = re.compile(rb"</text>\s*\Z")
_ATTR = re.compile(rb'(\w+)="([^"]*)"')


def _dragnet_gold(raw: bytes) -> str:
    """The article part of a Dragnet gold file: the comments after its separator
    line (``!@#$%^&*()  COMMENTS``) are not main text."""
    match = _COMMENTS.search(raw)
    body = raw[: match.start()] if match else raw
    return body.decode("utf-8", "replace")


def _cleaneval_gold(raw: bytes) -> str:
    """A CleanEval gold file without its ``URL:`` line and its ``<p>``/``<h>``/``<l>`` block marks."""
    text = raw.decode("utf-8-sig", "replace")
    if text.startswith("URL:"):
        text = text.split("\n", 1)[1] if "\n" in text else ""
    return _GOLD_MARK.sub(" ", text)


def _cleaneval_input(raw: bytes) -> tuple[bytes, str | None, str | None]:
    """(page, charset, title) of a CleanEval input: the set wraps each crawled page in
    ``<text id=URL title=… encoding=…>`` … ``</text>``; the wrapper is the set's, not the
    page's, so it is removed and its encoding kept as the transport's charset hint."""
    match = _WRAPPER.match(raw)
    if match is None:
        return raw, None, None
    attrs = {k.decode(): v.decode("latin-1") for k, v in _ATTR.findall(match.group(1))}
    body = _WRAPPER_END.sub(b"", raw[match.end() :])
    encoding = attrs.get("encoding", "")
    charset = None if encoding in ("", "unset") or encoding.startswith("unknown") else encoding
    return body, charset, attrs.get("title")


def load_gold_set(name: str, data_dir: Path | None = None) -> list[ReadabilityCase]:
    """Every page of gold set ``name`` (``dragnet`` or ``cleaneval``) that has a gold text,
    sorted by id; [] when the data is missing. ``expected_text`` is the gold text (Dragnet:
    the article without its comments; CleanEval: without the URL line and block marks)."""
    root = data_dir or locate_data_dir()
    folder = root / "extraction" / GOLD_SETS[name] if root is not None else None
    if folder is None or not (folder / "GoldStandard").is_dir():
        return []
    cases = []
    for gold in sorted((folder / "GoldStandard").glob("*.txt"), key=lambda p: (len(p.stem), p.stem)):
        page = folder / "input" / f"{gold.stem}.html"
        if not page.is_file():
            continue
        raw, charset, title = page.read_bytes(), None, None
        if name == "cleaneval":
            raw, charset, title = _cleaneval_input(raw)
            expected = _cleaneval_gold(gold.read_bytes())
        else:
            expected = _dragnet_gold(gold.read_bytes())
        metadata: dict[str, object] = {"title": title} if title else {}
        cases.append(ReadabilityCase(gold.stem, raw, expected, metadata, charset))
    return cases


def load_readability(data_dir: Path | None = None) -> list[ReadabilityCase]:
    """Every readability test page with its ground truth; [] when the data is missing."""
    root = data_dir or locate_data_dir()
    if root is None or not (root / "readability" / "test" / "test-pages").is_dir():
        return []
    return list(_iter_cases(root))
