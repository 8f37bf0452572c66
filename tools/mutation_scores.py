"""Per-module mutation scores from mutmut's results, net of the listed equivalent mutants.

Run after ``mutmut run`` (``make mutation`` does both). A mutant counts as
killed when a test failed (or timed out) on it; the equivalent mutants named
in ``tests/mutation_equivalents.md`` (one backquoted mutant name per line
item) are left out of the denominator. Exits non-zero when a module's score
is below 90%, or when a listed equivalent mutant no longer exists.
"""

import json
import re
import sys
from collections import Counter
from pathlib import Path

from mutmut.stats import status_by_exit_code

TARGET = 0.90
KILLED = {"killed", "timeout", "segfault", "caught by type check"}


def main():
    listed = set(
        re.findall(r"`(sklearn_vae\.\S+__mutmut_\d+)`", _read("tests/mutation_equivalents.md"))
    )
    rows, found = [], set()
    for meta in sorted(Path("mutants").rglob("*.py.meta")):
        module = meta.name.removesuffix(".meta")
        counts = Counter()
        survivors = []
        for name, code in json.loads(meta.read_text())["exit_code_by_key"].items():
            status = status_by_exit_code[code]
            if name in listed:
                found.add(name)
                counts["equivalent"] += 1
                if status in KILLED:
                    print(f"listed as equivalent but killed: {name}")
            elif status in KILLED:
                counts["killed"] += 1
            else:
                counts[status] += 1
                survivors.append(f"  {status}: {name}")
        total = sum(counts.values())
        scored = total - counts["equivalent"]
        score = counts["killed"] / scored if scored else 1.0
        rows.append((module, counts["killed"], scored, counts["equivalent"], total, score))
        print("\n".join(survivors))
    print(f"\n{'module':<16} {'killed':>7} {'non-equiv':>9} {'equiv':>6} {'total':>6} {'score':>7}")
    for module, killed, scored, equivalent, total, score in rows:
        print(f"{module:<16} {killed:>7} {scored:>9} {equivalent:>6} {total:>6} {score:>7.1%}")
    stale = listed - found
    for name in sorted(stale):
        print(f"listed as equivalent but not generated (update the list): {name}")
    return 1 if stale or any(row[-1] < TARGET for row in rows) else 0


def _read(path):
    return Path(path).read_text() if Path(path).exists() else ""


if __name__ == "__main__":
    sys.exit(main())
