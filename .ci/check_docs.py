"""Fail when a generated documentation page is stale: docs/cli.md, docs/reference.md, docs/results.md,
docs/robustness.md, the README's headline table or docs/scaling.md's numbers no longer match what
benchmarks/make_docs.py writes from the CLI, the registries and benchmarks/results/ (or a page marked as
generated is no longer written).

Run inside the project's environment: python .ci/check_docs.py   (to update the pages: python benchmarks/make_docs.py)
"""

from __future__ import annotations

import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path[:0] = [str(ROOT), str(ROOT / "benchmarks")]  # this checkout's edgefn, and the generator's modules
import make_docs  # noqa: E402

sys.path.remove(str(ROOT / "benchmarks"))  # benchmark scripts (common, peers, web, ...) must not shadow modules


def main() -> int:
    """Print each stale page, exit 1 when there is any."""
    found = make_docs.problems(make_docs.expected_pages(), ROOT)
    for line in found:
        print(f"stale docs: {line}; run python benchmarks/make_docs.py and commit the pages", file=sys.stderr)
    if not found:
        print(f"the {len(make_docs.PAGES) + len(make_docs.MARKED)} generated pages match benchmarks/make_docs.py")
    return 1 if found else 0


if __name__ == "__main__":
    sys.exit(main())
