#!/usr/bin/env python3
"""Engine check: runs a SQL script on a modern ClickHouse engine (chdb-core, in-process).

Reads the script on stdin. Statements are separated by lines holding only `;`
(so statements may contain `;` inside strings and span lines). All statements run
in ONE chdb session backed by a temporary persistent path (or --path DIR, kept).
Each statement's result rows (SELECTs; DDL/INSERT print nothing) go to stdout as
JSON lines, in order. On the first failing statement: prints the statement number,
the statement and the engine's error to stderr and exits 1.

Usage: $MARKETPRISM_TEST_PYTHON tests/engine/chdb_exec.py [--path DIR] [--marker] < script.sql
  --marker  print `{"__statement__": N}` before the rows of statement N (1-based),
            so a caller can split the output of several SELECTs.

This is an engine check, not a server check: no HTTP, no clickhouse binary.
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile


def split_statements(script: str) -> list[str]:
    """Splits on lines that hold only `;`; drops blank statements."""
    statements: list[str] = []
    current: list[str] = []
    for line in script.splitlines():
        if line.strip() == ";":
            statements.append("\n".join(current))
            current = []
        else:
            current.append(line)
    statements.append("\n".join(current))
    return [s.strip() for s in statements if s.strip()]


def run(statements: list[str], path: str, marker: bool) -> int:
    from chdb import session  # imported late: a usage error should not pay 0.5 s of engine load

    sess = session.Session(path)
    try:
        for number, statement in enumerate(statements, start=1):
            try:
                result = sess.query(statement, "JSONEachRow")
            except Exception as error:  # chdb raises its own ChdbError; report any failure the same way
                print(f"chdb_exec: statement {number} failed:\n{statement}\n---\n{error}", file=sys.stderr)
                return 1
            if marker:
                print(json.dumps({"__statement__": number}))
            text = str(result)
            if text.strip():
                sys.stdout.write(text if text.endswith("\n") else text + "\n")
        sys.stdout.flush()
        return 0
    finally:
        sess.close()


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--path", help="persistent engine directory to use and keep (default: a temp dir)")
    parser.add_argument("--marker", action="store_true", help="print a marker line before each statement's rows")
    args = parser.parse_args()
    statements = split_statements(sys.stdin.read())
    if not statements:
        print("chdb_exec: no statements on stdin", file=sys.stderr)
        return 2
    if args.path:
        return run(statements, args.path, args.marker)
    with tempfile.TemporaryDirectory(prefix="marketprism-chdb-") as path:
        return run(statements, path, args.marker)


if __name__ == "__main__":
    sys.exit(main())
