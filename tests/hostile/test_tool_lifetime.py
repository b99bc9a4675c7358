"""A tool outlives nothing: when the process that started it dies outright, the tool dies too."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path


def _wait_for(predicate: Callable[[], object], timeout: float = 3.0) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if predicate():
            return True
        time.sleep(0.05)
    return False


def test_runner_tool_dies_with_its_parent(tmp_path: Path) -> None:
    """A pool process killed outright (Celery's hard time limit, the OOM killer) takes its ffmpeg with it,
    although the tool runs in its own session."""
    pid_file = tmp_path / "child.pid"
    script = ("import sys; from media_service.ffmpeg.runner import run_tool\n"
              f"run_tool(['sh', '-c', 'echo $$ > {pid_file}; exec sleep 60'], timeout=120)\n")
    parent = subprocess.Popen([sys.executable, "-c", script], cwd=Path(__file__).parents[2])
    try:
        assert _wait_for(lambda: pid_file.exists() and pid_file.read_text().strip(), 20)
        child = int(pid_file.read_text())
        os.kill(parent.pid, signal.SIGKILL)
        parent.wait()
        assert _wait_for(lambda: _gone(child)), "the tool outlived its parent"
    finally:
        if parent.poll() is None:
            parent.kill()


def _gone(pid: int) -> bool:
    try:
        state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except FileNotFoundError:
        return True
    return state in ("Z", "X")
