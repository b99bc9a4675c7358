"""prometheus_client's multiprocess mode for Celery's prefork workers.

Deliberately free of prometheus_client imports at module level: ``prepare_dir`` must run before the
first import of prometheus_client in the process (it picks its value class from the environment then).
"""

from __future__ import annotations

import os
import re
import shutil
import tempfile
from pathlib import Path

ENV = "PROMETHEUS_MULTIPROC_DIR"
_PID = re.compile(r"_(\d+)\.db$")


def prepare_dir() -> Path:
    """A fresh, empty directory for this worker start, set as PROMETHEUS_MULTIPROC_DIR for this process and
    the pool processes it forks. An operator's PROMETHEUS_MULTIPROC_DIR is taken as the parent (several
    workers on one host never share files, and a restart never counts yesterday's jobs)."""
    base = os.environ.get(ENV) or None
    if base:
        Path(base).mkdir(parents=True, exist_ok=True)
    fresh = Path(tempfile.mkdtemp(prefix=f"media-worker-{os.getpid()}-", dir=base))
    os.environ[ENV] = str(fresh)
    return fresh


def remove_dir(path: Path) -> None:
    shutil.rmtree(path, ignore_errors=True)


def pid_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def reap_dead(path: Path | None = None) -> list[int]:
    """Forget the live gauges of pool processes that are gone (killed, or replaced by Celery): their
    in-progress count must not linger. Counters and histograms of dead processes are kept: they are totals."""
    from prometheus_client import multiprocess

    folder = Path(path or os.environ.get(ENV, ""))
    if not folder.is_dir():
        return []
    dead = sorted({int(m.group(1)) for f in folder.glob("gauge_live*_*.db") if (m := _PID.search(f.name))
                   and not pid_alive(int(m.group(1)))})
    for pid in dead:
        multiprocess.mark_process_dead(pid, str(folder))  # type: ignore[no-untyped-call]
    return dead
