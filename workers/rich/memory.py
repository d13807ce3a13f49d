"""Memory of a process tree: what the renderer's RSS limit and the bench measure.

Chromium is a dozen processes sharing most of their pages (the binary, fonts, shared
memory between browser and renderers), so summing their RSS counts those pages once per
process (measured: 2.1 GB summed RSS for 0.9 GB of PSS). PSS splits each shared page
among its sharers, so its sum is the tree's real footprint; that is what we limit.
"""

from __future__ import annotations

import contextlib
from dataclasses import dataclass

import psutil

__all__ = ["TreeMemory", "tree_memory"]


@dataclass(frozen=True, slots=True)
class TreeMemory:
    """Memory of a process and all its descendants."""

    rss_bytes: int
    """Sum of RSS: counts pages shared between the processes once per process."""
    pss_bytes: int
    """Sum of PSS: each shared page split among its sharers, i.e. the tree's real footprint."""
    processes: int


def tree_memory(pid: int) -> TreeMemory:
    """RSS and PSS of ``pid`` and its descendants (reads /proc/<pid>/smaps_rollup; ~10 ms a process).

    Blocking: call it through ``asyncio.to_thread``. A vanished process counts as zero; where
    smaps is not readable, RSS stands in for PSS.
    """
    rss = pss = count = 0
    try:
        root = psutil.Process(pid)
        procs = [root, *root.children(recursive=True)]
    except psutil.Error:
        return TreeMemory(0, 0, 0)
    for proc in procs:
        try:
            full = proc.memory_full_info()
        except psutil.AccessDenied:
            with contextlib.suppress(psutil.Error):
                value = proc.memory_info().rss
                rss, pss, count = rss + value, pss + value, count + 1
            continue
        except psutil.Error:
            continue
        rss += full.rss
        pss += getattr(full, "pss", full.rss)
        count += 1
    return TreeMemory(rss, pss, count)
