"""Awkward responses: declared/undeclared/wrong charsets, XHTML, non-HTML bodies, huge pages.

Every builder is deterministic and cheap enough to cache. ``CHARSET_MARKERS`` holds a
string that a correct decoding of each charset page contains, so a test can tell a
decoder that guessed right from one that produced mojibake.
"""

from __future__ import annotations

import json
import struct
import zlib
from html import escape
from typing import Final

from workers.demoweb.site import Origin, SiteProfile
from workers.demoweb.text import headline, paragraph, rng_for

__all__ = [
    "CHARSET_MARKERS",
    "CHARSET_VARIANTS",
    "charset_page",
    "huge_parts",
    "json_body",
    "pdf_body",
    "png_body",
    "stall_head",
    "xhtml_page",
]

_RU: Final = (
    "Городской совет обсудил новый проект реконструкции набережной.",
    "Исследователи представили результаты многолетнего наблюдения за ледниками.",
    "Жители района выступили против строительства новой дороги.",
    "Министерство объявило о снижении тарифов на общественный транспорт.",
    "Эксперты считают, что рынок восстановится к концу года.",
)
_JA: Final = (
    "市議会は新しい駅の建設計画を承認しました。",
    "研究チームは氷河の観測結果を発表しました。",
    "地元の住民は新しい道路の建設に反対しています。",
    "専門家は市場が年末までに回復すると考えています。",
    "新しい美術館の展示が来月から始まります。",
)
_FR: Final = (
    "Élodie a passé l'été à Besançon, où la fête du château a réuni des milliers de visiteurs.",
    "Le théâtre rénové ouvrira ses portes à la rentrée, après deux années de travaux coûteux.",
    "Les élèves du lycée ont présenté une expérience étonnante sur la qualité de l'eau.",
)
_LATIN: Final = (
    "Café Müller reopened on Straße 5 with crème brûlée, jalapeño tacos and smørrebrød.",
    "The naïve résumé of the señor from Zürich was written in “curly quotes” — twice.",
)

# variant -> (header Content-Type, body encoding, meta charset or None, lang, lines, marker)
_VARIANTS: Final[dict[str, tuple[str, str, str | None, str, tuple[str, ...], str]]] = {
    "windows-1251": ("text/html; charset=windows-1251", "cp1251", "windows-1251", "ru", _RU, "набережной"),
    "shift_jis": ("text/html; charset=Shift_JIS", "shift_jis", "Shift_JIS", "ja", _JA, "美術館"),
    "bogus": ("text/html; charset=x-bogus-42", "utf-8", None, "en", _LATIN, "Café Müller"),
    "invalid-utf8": ("text/html; charset=utf-8", "utf-8", "utf-8", "en", _LATIN, "smørrebrød"),
    # The header is right (windows-1252), the meta tag is wrong (utf-8): per the HTML spec the header wins.
    "meta-mismatch": ("text/html; charset=windows-1252", "cp1252", "utf-8", "fr", _FR, "Besançon"),
    "undeclared": ("text/html", "utf-8", None, "en", _LATIN, "crème brûlée"),
}
CHARSET_VARIANTS: Final = tuple(_VARIANTS)
CHARSET_MARKERS: Final = {name: spec[5] for name, spec in _VARIANTS.items()}
_INVALID_UTF8: Final = b" \xff\xfe broken \xc3\x28 bytes \xe2\x82 here "


def charset_page(origin: Origin, profile: SiteProfile, variant: str, n: int) -> tuple[bytes, str]:
    """(body, Content-Type header) of the charset test page ``variant`` number ``n``."""
    content_type, encoding, meta, lang, lines, _marker = _VARIANTS[variant]
    rng = rng_for(profile.host, "charset", variant, n)
    title = lines[0][:40]
    paras = [" ".join(rng.sample(lines, len(lines))) for _ in range(6)]
    paras += [paragraph(rng, profile.topic, "en") for _ in range(3)]
    meta_tag = f'<meta charset="{meta}">' if meta else ""
    html = (
        f'<!DOCTYPE html>\n<html lang="{lang}"><head>{meta_tag}<title>{escape(title)}</title>'
        f'<link rel="canonical" href="{origin.base}/charset/{variant}/{n}"></head><body>'
        f'<main class="content"><article><h1>{escape(title)}</h1>'
        + "".join(f"<p>{escape(p)}</p>" for p in paras)
        + "</article></main></body></html>"
    )
    body = html.encode(encoding)
    if variant == "invalid-utf8":
        cut = body.index(b"<p>") + 3
        body = body[:cut] + _INVALID_UTF8 + body[cut:]
    return body, content_type


def xhtml_page(origin: Origin, profile: SiteProfile, n: int) -> bytes:
    """A well-formed XHTML article served as application/xhtml+xml."""
    rng = rng_for(profile.host, "xhtml", n)
    title = headline(rng, profile.topic)
    paras = "".join(f"<p>{escape(paragraph(rng, profile.topic, 'en'))}</p>" for _ in range(8))
    return (
        '<?xml version="1.0" encoding="UTF-8"?>\n<!DOCTYPE html>\n'
        '<html xmlns="http://www.w3.org/1999/xhtml" lang="en" xml:lang="en"><head>'
        f"<title>{escape(title)}</title>"
        f'<link rel="canonical" href="{origin.base}/xhtml/{n}"/></head><body>'
        f"<article><h1>{escape(title)}</h1>{paras}</article></body></html>"
    ).encode()


def pdf_body(n: int) -> bytes:
    """A small valid one-page PDF."""
    text = f"StreamCrawl demo document {n}".encode()
    stream = b"BT /F1 18 Tf 72 720 Td (" + text + b") Tj ET"
    objects = [
        b"<< /Type /Catalog /Pages 2 0 R >>",
        b"<< /Type /Pages /Kids [3 0 R] /Count 1 >>",
        b"<< /Type /Page /Parent 2 0 R /MediaBox [0 0 612 792] /Contents 4 0 R "
        b"/Resources << /Font << /F1 5 0 R >> >> >>",
        b"<< /Length " + str(len(stream)).encode() + b" >>\nstream\n" + stream + b"\nendstream",
        b"<< /Type /Font /Subtype /Type1 /BaseFont /Helvetica >>",
    ]
    out = bytearray(b"%PDF-1.4\n%\xe2\xe3\xcf\xd3\n")
    offsets = []
    for i, obj in enumerate(objects, start=1):
        offsets.append(len(out))
        out += f"{i} 0 obj\n".encode() + obj + b"\nendobj\n"
    xref = len(out)
    out += f"xref\n0 {len(objects) + 1}\n0000000000 65535 f \n".encode()
    out += b"".join(f"{off:010d} 00000 n \n".encode() for off in offsets)
    out += f"trailer\n<< /Size {len(objects) + 1} /Root 1 0 R >>\nstartxref\n{xref}\n%%EOF\n".encode()
    return bytes(out)


def png_body(n: int, *, size: int = 32) -> bytes:
    """A valid RGB PNG of one colour derived from ``n``."""
    rgb = bytes(((n * 37) % 256, (n * 91) % 256, (n * 53) % 256))
    raw = b"".join(b"\x00" + rgb * size for _ in range(size))

    def chunk(kind: bytes, data: bytes) -> bytes:
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))

    header = struct.pack(">IIBBBBB", size, size, 8, 2, 0, 0, 0)
    return (
        b"\x89PNG\r\n\x1a\n"
        + chunk(b"IHDR", header)
        + chunk(b"IDAT", zlib.compress(raw))
        + chunk(b"IEND", b"")
    )


def json_body(profile: SiteProfile, n: int) -> bytes:
    rng = rng_for(profile.host, "json", n)
    items = [{"id": i, "title": headline(rng, profile.topic)} for i in range(rng.randint(3, 10))]
    return json.dumps({"site": profile.name, "page": n, "items": items}).encode()


def huge_parts(origin: Origin, profile: SiteProfile, n: int, total: int) -> tuple[bytes, bytes, int, bytes]:
    """(head, chunk, repeats, tail) of a page of at least ``total`` bytes; the chunk is ~64 KB."""
    rng = rng_for(profile.host, "huge", n)
    title = "Complete archive: " + headline(rng, profile.topic)
    head = (
        f'<!DOCTYPE html>\n<html lang="en"><head><meta charset="utf-8"><title>{escape(title)}</title>'
        f'<link rel="canonical" href="{origin.base}/huge/{n}"></head><body>'
        f'<main class="content"><article><h1>{escape(title)}</h1>'
    ).encode()
    parts: list[str] = []
    size = 0
    while size < 64 * 1024:
        p = f"<p>{escape(paragraph(rng, profile.topic, 'en'))}</p>\n"
        parts.append(p)
        size += len(p.encode())
    chunk = "".join(parts).encode()
    tail = b"</article></main></body></html>"
    repeats = max(1, -(-(total - len(head) - len(tail)) // len(chunk)))
    return head, chunk, repeats, tail


def stall_head(origin: Origin, n: int) -> bytes:
    return (
        '<!DOCTYPE html>\n<html lang="en"><head><meta charset="utf-8"><title>Still loading</title>'
        f'<link rel="canonical" href="{origin.base}/stall/{n}"></head><body><main class="content">'
        "<p>This response never finishes: the server trickles one byte at a time.</p>"
    ).encode()
