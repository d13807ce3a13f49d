"""Cut the trail after the article: a short block that announces more links ("Related
stories:", "You may also like", "Share this:", "More from …") ends the main text.

News and blog templates put related-article teasers, share bars and "more from" lists
after the article, often as ordinary paragraphs (a headline, a sentence of teaser, a
source and date: long enough and link-light enough to pass the block tests). What gives
them away is the announcement that opens them. So, on the written blocks (the Markdown
writer's segments, markers still in): a block of at most ``MARKER_CHARS`` characters
whose whole text is such an announcement, met after at least ``MIN_BEFORE`` of the
content's characters, is dropped with every block after it up to the next heading that
is not itself an announcement, or the next block of ``RESUME_CHARS`` without a link
(content resumes: the next post of a blog's front page; teasers hold their headline link).
Calibrated on the tuning sets (bench/tune_extract.py); comments are not cut (CleanEval's
gold keeps them). Costs ~0.6% of extract() (a regex on blocks of at most MARKER_CHARS).
"""

from __future__ import annotations

import re
from typing import Final

__all__ = ["MARKER_CHARS", "MIN_BEFORE", "RESUME_CHARS", "cut_trailers"]

MARKER_CHARS: Final = 40
MIN_BEFORE: Final = 0.25
RESUME_CHARS: Final = 200
_MARKER: Final = re.compile(
    r"(?:related|similar|recommended|more|latest|popular|top|trending|recent)\s+"
    r"(?:stories|articles|posts|news|links|reading|content|videos|entries|headlines)"
    r"|(?:you|we\s+think\s+you)\s+(?:may|might|will|could)\s+(?:also\s+)?(?:like|enjoy|be\s+interested\s+in)"
    r"|also\s+(?:on|in|from|read|see)\b.*|read\s+(?:also|next)|more\s+from\b.*|more\s+on\s+this\s+story"
    r"|share\s+(?:this|the\s+article|this\s+(?:article|story|post))|most\s+(?:read|popular|viewed|emailed|shared)"
    r"|(?:ähnliche|verwandte)\s+artikel|mehr\s+zum\s+thema|articles?\s+(?:similaires|liés)|à\s+lire\s+aussi"
    r"|(?:artículos|noticias)\s+relacionad[ao]s|related",
    re.I,
)
_HEADING: Final = re.compile(r"\A\x04#{1,6} \x05")
_MARKUP: Final = re.compile(r"\x04[^\x04\x05\x06]*[\x05\x06]|[\x01-\x06]")
_TRIM: Final = " \t:.!?…»>|-–—*()[]"


def _text(segment: str) -> str:
    return _MARKUP.sub("", segment).strip(_TRIM) if "\x04" in segment else segment.strip(_TRIM)


def cut_trailers(segments: list[str], sizes: list[int]) -> list[int]:
    """Indexes of the ``segments`` outside announced trails (``sizes``: each one's text length)."""
    total = sum(sizes)
    if not total:
        return list(range(len(segments)))
    out: list[int] = []
    before = 0
    cutting = False
    for index, (segment, size) in enumerate(zip(segments, sizes, strict=True)):
        marker = 0 < size <= MARKER_CHARS and _MARKER.fullmatch(_text(segment)) is not None
        if marker and before >= MIN_BEFORE * total:
            cutting = True
            continue
        if (
            cutting
            and not marker
            and (_HEADING.match(segment) is not None or (size >= RESUME_CHARS and "\x04[" not in segment))
        ):
            cutting = False
        if not cutting:
            out.append(index)
        before += size
    return out
