"""Tests and seconds per tier from a pytest JUnit XML file (``make test`` writes reports/tests.xml).

    python scripts/tier_times.py [reports/tests.xml]

Each test's time is its setup, call and teardown (pytest's default), so a module's shared fixtures count once,
in the test that started them; the sum per tier is the tier's share of the run.
"""

from __future__ import annotations

import sys
import xml.etree.ElementTree as ET
from collections import Counter
from pathlib import Path


def main() -> int:
    path = Path(sys.argv[1] if len(sys.argv) > 1 else "reports/tests.xml")
    if not path.is_file():
        print(f"tier_times: no {path}; run `make test` first", file=sys.stderr)
        return 2
    count: Counter[str] = Counter()
    seconds: Counter[str] = Counter()
    outcomes: Counter[str] = Counter()
    for case in ET.parse(path).getroot().iter("testcase"):
        tier = (case.get("classname") or "").split(".")[1:2] or ["?"]
        count[tier[0]] += 1
        seconds[tier[0]] += float(case.get("time") or 0)
        outcome = next((child.tag for child in case if child.tag in ("failure", "error", "skipped")), "passed")
        outcomes[outcome] += 1
    for tier in ("unit", "component", "integration", "e2e"):
        print(f"{tier:12} {count[tier]:5} tests {seconds[tier]:8.1f} s")
    print(f"{'total':12} {sum(count.values()):5} tests {sum(seconds.values()):8.1f} s  "
          + ", ".join(f"{n} {o}" for o, n in sorted(outcomes.items())))
    return 0


if __name__ == "__main__":
    sys.exit(main())
