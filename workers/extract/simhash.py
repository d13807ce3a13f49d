"""64-bit SimHash (Charikar) of a text's word tokens, for near-duplicate detection.

Features are the distinct tokens, weighted by their count; each feature's hash is
xxHash64 (seed 0) of its UTF-8 bytes (as a little-endian integer): stable across processes and machines, unlike
``hash()``, and 5x cheaper per call than hashlib's blake2b (measured 0.05 vs 0.27 ms a page).
Bit ``i`` of the result is 1 when the weighted votes of the features with bit ``i`` set
outweigh the others. The bit tally is done with numpy: a Python loop over 64 bits per
feature costs milliseconds per page.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterable

import numpy as np
from xxhash import xxh64_intdigest

__all__ = ["hamming", "simhash"]


def simhash(tokens: Iterable[str]) -> int:
    """Unsigned 64-bit SimHash of ``tokens`` (0 for no tokens). Tokens must be encodable
    as UTF-8 (no lone surrogates: extract() guarantees that)."""
    counts = Counter(tokens)
    if not counts:
        return 0
    hashes = np.fromiter(map(xxh64_intdigest, counts), dtype=np.uint64, count=len(counts))
    bits = np.unpackbits(hashes.view(np.uint8).reshape(-1, 8), axis=1, bitorder="little")
    weights = np.fromiter(counts.values(), dtype=np.int64, count=len(counts))
    votes = weights @ bits.astype(np.int64)  # per bit: total weight of features with it set
    packed = np.packbits(2 * votes > int(weights.sum()), bitorder="little")
    return int.from_bytes(packed.tobytes(), "little")


def hamming(a: int, b: int) -> int:
    """Number of differing bits between two SimHashes."""
    return (a ^ b).bit_count()
