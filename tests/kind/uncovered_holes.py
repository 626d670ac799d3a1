#!/usr/bin/env python3
"""Trade-id holes not covered by a recorded gap. Args: holes TSV (sql/trade_holes.sql), gaps TSV (sql/trade_gaps.sql).

A hole between ids a and b (times ta, tb) is covered by a gap row of the same symbol whose [start, end] overlaps
[ta, tb]. Prints each uncovered hole; exits 1 if there is any (stdlib only: runs on the CI runner's python3).
"""

from __future__ import annotations

import sys


def rows(tsv: str) -> list[list[str]]:
    return [line.split("\t") for line in tsv.splitlines() if line.strip()]


def uncovered(holes: list[list[str]], gaps: list[list[str]]) -> list[list[str]]:
    return [
        hole for hole in holes
        if not any(gap[0] == hole[0] and int(gap[1]) <= int(hole[4]) and int(gap[2]) >= int(hole[3]) for gap in gaps)
    ]


def main(argv: list[str]) -> int:
    missing = uncovered(rows(argv[1]), rows(argv[2]))
    for symbol, before, after, t_before, t_after in missing:
        print(f"  {symbol}: ids {before} -> {after} skipped between {t_before} and {t_after} ms, no gap row",
              file=sys.stderr)
    return 1 if missing else 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
