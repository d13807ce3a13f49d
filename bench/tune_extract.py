"""Score the fast extractor on the tuning sets only (CleanEval and readability), with the
worst pages listed: the loop for changing workers/extract/* without looking at Dragnet.

    .venv/bin/python -m bench.tune_extract [--set cleaneval|readability|both] [--worst 15]
        [--by precision|recall|f1] [--show ID] [--save F.json] [--compare F.json]

Prints per set the mean precision, recall and F1 (bench/extraction_sets.py ``prf``, the
benchmark's own definition) and pages per CPU second of ``extract()``; then the pages with
the lowest score on ``--by``. ``--show ID`` prints one page's extracted text beside its
gold text's first lines (what was kept that should not have been). ``--save`` writes every
page's scores to a file; ``--compare`` lists the pages whose F1 moved since such a file
(by more than 0.002), so a change is judged page by page, not only by its mean.

The unseen set (``bench.quality.UNSEEN``) is refused on purpose: bench/run.py is the only
place it is measured.
"""

from __future__ import annotations

import argparse
import json
import statistics
import time
from collections import Counter
from pathlib import Path

from bench.extraction_sets import prf
from bench.quality import TUNED_ON, ReadabilityCase, load_gold_set, load_readability, tokens
from workers.extract import extract

__all__ = ["main", "score_set"]

_SETS = (TUNED_ON, "readability")


def _cases(name: str) -> list[ReadabilityCase]:
    return load_readability() if name == "readability" else load_gold_set(name)


def score_set(
    cases: list[ReadabilityCase],
) -> tuple[list[tuple[str, float, float, float]], list[str], float]:
    """(per page (name, P, R, F1), our texts, pages per CPU second)."""
    texts = []
    started = time.process_time()
    for case in cases:
        texts.append(extract(case.source, url="http://fakehost/page/", charset=case.charset).text)
    cpu = time.process_time() - started
    rows = [(c.name, *prf(t, c.expected_text)) for c, t in zip(cases, texts, strict=True)]
    return rows, texts, len(cases) / cpu if cpu else 0.0


def _show(case: ReadabilityCase, text: str) -> None:
    gold = Counter(tokens(case.expected_text))
    print(f"=== {case.name}: {prf(text, case.expected_text)}")
    for line in text.split("\n"):
        words = tokens(line)
        if not words:
            continue
        hit = sum((Counter(words) & gold).values()) / len(words)
        print(f"{'  ' if hit > 0.5 else '!!'} {line[:160]}")
    print("--- gold (start):")
    print(case.expected_text[:1500])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--set", choices=[*_SETS, "both"], default="both")
    parser.add_argument("--worst", type=int, default=15)
    parser.add_argument("--by", choices=["precision", "recall", "f1"], default="precision")
    parser.add_argument("--show", default=None, help="print one page's text (needs --set)")
    parser.add_argument("--save", default=None, help="write per-page scores to this JSON file")
    parser.add_argument("--compare", default=None, help="list the pages that changed since --save")
    args = parser.parse_args()
    names = _SETS if args.set == "both" else (args.set,)
    column = {"precision": 1, "recall": 2, "f1": 3}[args.by]
    saved: dict[str, dict[str, tuple[float, float, float]]] = {}
    for name in names:
        cases = _cases(name)
        if args.show is not None:
            for case in cases:
                if case.name == args.show:
                    _show(case, extract(case.source, url="http://fakehost/page/", charset=case.charset).text)
            continue
        rows, _, rate = score_set(cases)
        p, r, f = (
            statistics.mean(row[1] for row in rows),
            statistics.mean(row[2] for row in rows),
            statistics.mean(row[3] for row in rows),
        )
        print(f"{name}: {len(rows)} pages  P {p:.4f}  R {r:.4f}  F1 {f:.4f}  {rate:.0f} pages/CPU s")
        for row in sorted(rows, key=lambda x: x[column])[: args.worst]:
            print(f"  {row[0]:<40} P {row[1]:.3f}  R {row[2]:.3f}  F1 {row[3]:.3f}")
        saved[name] = {row[0]: row[1:] for row in rows}
        if args.compare:
            _changes(json.loads(Path(args.compare).read_text()).get(name, {}), saved[name])
    if args.save:
        Path(args.save).write_text(json.dumps(saved))


def _changes(before: dict[str, list[float]], after: dict[str, tuple[float, float, float]]) -> None:
    moved = [(after[k][2] - v[2], k, v, after[k]) for k, v in before.items() if k in after]
    moved = [m for m in moved if abs(m[0]) > 0.002]
    for delta, key, old, new in sorted(moved):
        print(f"  {delta:+.3f} {key:<36} P {old[0]:.3f}->{new[0]:.3f}  R {old[1]:.3f}->{new[1]:.3f}")


if __name__ == "__main__":
    main()
