"""Text normalisation, tokens, word count and the content hash."""

from __future__ import annotations

import hashlib
import re
import unicodedata
from typing import Final

__all__ = ["normalise", "text_hash", "tokens"]

_CJK: Final = "\u3040-\u30ff\u3400-\u4dbf\u4e00-\u9fff\uac00-\ud7af\uf900-\ufaff"
# Words are runs of letters/digits; CJK, kana and hangul characters are one token each
# (those scripts do not put spaces between words).
_TOKEN: Final = re.compile(rf"[{_CJK}]|(?:(?![{_CJK}])[^\W_])+")
_HAS_CJK: Final = re.compile(rf"[{_CJK}]")
_ALL_CJK: Final = re.compile(rf"[{_CJK}]+")
_WORD: Final = re.compile(r"[^\W_]+")


def normalise(text: str) -> str:
    """NFC, case-folded, whitespace (NBSP included) collapsed to single spaces, stripped.

    NFC, not NFKC: NFKC rewrites every page with a no-break space (most of them) and
    measured ~1.4 ms on such a page; compatibility forms are rare in body text."""
    if not unicodedata.is_normalized("NFC", text):
        text = unicodedata.normalize("NFC", text)
    return " ".join(text.casefold().split())


def tokens(normalised: str) -> list[str]:
    """Word tokens of already :func:`normalise`-d text: whitespace-separated words
    (like ``wc -w``), except that text with CJK/kana/hangul is split into letter/digit
    runs with every CJK character a token of its own (those scripts have no spaces).
    Splitting on whitespace is 7x cheaper than a regex on the common path."""
    if normalised.isascii() or not _HAS_CJK.search(normalised):
        return normalised.split()
    out: list[str] = []
    for run in _WORD.findall(normalised):
        if run.isascii() or not _HAS_CJK.search(run):
            out.append(run)
        elif _ALL_CJK.fullmatch(run):
            out.extend(run)  # one token per character
        else:
            out.extend(_TOKEN.findall(run))
    return out


def text_hash(normalised: str) -> str:
    """blake2b-128 hex digest of normalised text."""
    return hashlib.blake2b(normalised.encode("utf-8", "surrogatepass"), digest_size=16).hexdigest()
