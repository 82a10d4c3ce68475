"""Bad input to an entry point of the evaluation: one line on stderr naming the problem, exit code 2."""

from __future__ import annotations

import sys


def fail(message: str, prog: str | None = None) -> None:
    """Print `[prog: ]error: message` on stderr and exit with code 2 (nothing else is printed)."""
    prefix = f"{prog}: " if prog else ""
    print(f"{prefix}error: {message}", file=sys.stderr)
    raise SystemExit(2)
