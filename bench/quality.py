"""Extraction quality against the readability test set: main-text token F1 and title match.

Ground truth: ``readability/test/test-pages/<name>/expected.html`` (Readability.js's main
content) and ``expected-metadata.json`` (its title, lang, publishedTime ...).

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
    "ReadabilityCase",
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


@dataclass(frozen=True, slots=True)
class ReadabilityCase:
    name: str
    source: bytes
    expected_text: str
    metadata: dict[str, object]

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


def load_readability(data_dir: Path | None = None) -> list[ReadabilityCase]:
    """Every readability test page with its ground truth; [] when the data is missing."""
    root = data_dir or locate_data_dir()
    if root is None or not (root / "readability" / "test" / "test-pages").is_dir():
        return []
    return list(_iter_cases(root))
