"""The one runner for every external tool: argv list, no stdin, timeout, own process group, exit code
checked, stderr tail kept in the error."""

from __future__ import annotations

import contextlib
import os
import signal
import subprocess
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

from media_service.errors import ToolFailed, ToolTimeout

STDERR_TAIL = 4000


@dataclass(frozen=True)
class ToolResult:
    argv: tuple[str, ...]
    returncode: int
    stdout: bytes
    stderr: str


def _kill_group(proc: subprocess.Popen[bytes]) -> None:
    with contextlib.suppress(ProcessLookupError):
        os.killpg(proc.pid, signal.SIGKILL)


def run_tool(argv: Sequence[str], *, timeout: float, cwd: Path | None = None,
             check: bool = True) -> ToolResult:
    if not argv or not all(isinstance(a, str) for a in argv):
        raise ValueError("argv must be a non-empty list of strings")
    proc = subprocess.Popen(list(argv), stdin=subprocess.DEVNULL, stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, cwd=cwd, start_new_session=True)
    try:
        stdout, stderr_bytes = proc.communicate(timeout=timeout)
    except subprocess.TimeoutExpired:
        _kill_group(proc)
        proc.communicate()
        raise ToolTimeout(detail=f"{argv[0]} ran longer than {timeout:.0f}s") from None
    except BaseException:
        _kill_group(proc)
        proc.wait()
        raise
    stderr = stderr_bytes.decode("utf-8", "replace")[-STDERR_TAIL:]
    result = ToolResult(tuple(argv), proc.returncode, stdout, stderr)
    if check and proc.returncode != 0:
        raise ToolFailed(detail=f"{argv[0]} exited {proc.returncode}: {stderr}")
    return result
