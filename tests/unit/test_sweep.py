"""Work folders of job processes that were killed (their cleanup never ran) are removed by the next job."""

from __future__ import annotations

import os
import subprocess
from pathlib import Path

from media_service.jobs import sweep_stale_workdirs


def test_only_dead_processes_folders_go(tmp_path: Path) -> None:
    dead = subprocess.Popen(["true"])
    dead.wait()
    (tmp_path / f"media-abc123-p{dead.pid}-x1").mkdir()
    (tmp_path / f"media-abc123-p{dead.pid}-x1" / "source").write_bytes(b"x" * 100)
    (tmp_path / f"media-def456-p{os.getpid()}-x2").mkdir()  # a live job
    (tmp_path / "something-else").mkdir()
    assert sweep_stale_workdirs(tmp_path) == 1
    assert sorted(p.name for p in tmp_path.iterdir()) == [f"media-def456-p{os.getpid()}-x2", "something-else"]
