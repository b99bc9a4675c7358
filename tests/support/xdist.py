"""Isolation when the suite runs on several pytest-xdist workers: each worker gets its own Redis database
for the stacks that flush theirs (the e2e and hostile stacks); everything else already uses fresh names,
free ports and temporary folders."""

from __future__ import annotations

import os


def worker_index() -> int:
    worker = os.environ.get("PYTEST_XDIST_WORKER", "gw0")
    return int(worker[2:]) if worker.startswith("gw") and worker[2:].isdigit() else 0


def redis_db(base: int) -> int:
    """``base`` for the first worker, then base+2, base+4… (the e2e stacks use odd bases, hostile even)."""
    return base + 2 * worker_index()
