"""Is a body that claims to be HTML actually binary? A check of its first kilobyte.

Servers label images, PDFs, archives and fonts ``text/html`` often enough (error
handlers, misconfigured CDNs, download scripts) that keeping them as pages would fill the
corpus with garbage words. :func:`looks_binary` says yes when the first ``SNIFF_BYTES``
(after content decoding: a gzip *transfer* encoding is gone by then, a gzipped *file*
is not) hold

* a file signature of a common binary format (:data:`SIGNATURES`; MP4/HEIF/AVIF by their
  ``ftyp`` box at offset 4), or
* a NUL byte — unless the body is UTF-16/32 text (a byte-order mark, or a UTF-16/32
  charset in the Content-Type), which is full of NULs, or
* more than 5% control bytes (C0 controls other than tab, LF, FF, CR and the ESC of
  ISO-2022 encodings; DEL). Text has next to none; compressed or encrypted data has
  about 11% (29 of 256 byte values), and a NUL in the first KB with 98% probability.

One ``bytes.translate`` over 1 KB (the signatures are only compared when the first byte
can start one): a few microseconds per page.
"""

from __future__ import annotations

import codecs

__all__ = ["SIGNATURES", "SNIFF_BYTES", "looks_binary"]

SNIFF_BYTES = 1024
SIGNATURES: tuple[bytes, ...] = (
    b"\x89PNG\r\n\x1a\n",
    b"GIF87a",
    b"GIF89a",
    b"\xff\xd8\xff",  # JPEG
    b"%PDF-",
    b"PK\x03\x04",  # zip, docx/xlsx, jar, epub
    b"PK\x05\x06",  # empty zip
    b"\x1f\x8b",  # gzip
    b"BZh",  # bzip2
    b"\xfd7zXZ\x00",  # xz
    b"7z\xbc\xaf\x27\x1c",
    b"\x28\xb5\x2f\xfd",  # zstd
    b"Rar!\x1a\x07",
    b"\x7fELF",
    b"\xd0\xcf\x11\xe0\xa1\xb1\x1a\xe1",  # OLE2 (doc, xls, msi)
    b"\xca\xfe\xba\xbe",  # Java class, Mach-O fat binary
    b"RIFF",  # WebP, WAV, AVI
    b"OggS",
    b"fLaC",
    b"ID3",  # MP3
    b"\x1a\x45\xdf\xa3",  # Matroska / WebM
    b"wOFF",
    b"wOF2",
    b"OTTO",  # OpenType
    b"II*\x00",  # TIFF
    b"MM\x00*",
    b"\x00\x00\x01\x00",  # ICO
    b"\x00asm",  # WebAssembly
)
_UNICODE_BOMS = (codecs.BOM_UTF32_LE, codecs.BOM_UTF32_BE, codecs.BOM_UTF16_LE, codecs.BOM_UTF16_BE)
# Every byte except the C0 controls and DEL that text never contains: translate() deletes
# these, and what is left of the sample is its control bytes.
_TEXT = bytes(b for b in range(256) if b >= 0x20 and b != 0x7F) + b"\t\n\x0c\r\x1b"
_CONTROL_SHARE = 0.05
_FIRST_BYTES = frozenset(signature[0] for signature in SIGNATURES)


def looks_binary(head: bytes, charset: str | None = None) -> bool:
    """True if ``head`` (the start of a body) is binary data rather than text."""
    sample = head[:SNIFF_BYTES]
    if not sample:
        return False
    if (sample[0] in _FIRST_BYTES and sample.startswith(SIGNATURES)) or sample[4:8] == b"ftyp":
        return True
    if sample.startswith(_UNICODE_BOMS) or (charset is not None and ("16" in charset or "32" in charset)):
        return False  # UTF-16/32 text is full of NULs
    controls = sample.translate(None, _TEXT)  # what is left: the control bytes (usually none)
    return b"\x00" in controls or len(controls) > _CONTROL_SHARE * len(sample)
