"""The one runner for every external tool: argv list, no stdin, timeout, own process group, exit code
checked, stderr tail kept in the error, progress lines streamed to a callback."""

from __future__ import annotations

import contextlib
import logging
import os
import signal
import subprocess
import threading
import time
from collections import deque
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path

from media_service import metrics
from media_service.errors import Cancelled, MediaError, ToolFailed, ToolTimeout

STDERR_TAIL = 6000
log = logging.getLogger("media_service.ffmpeg")


@dataclass(frozen=True)
class ToolResult:
    argv: tuple[str, ...]
    returncode: int
    stdout: bytes
    stderr: str


@dataclass(frozen=True)
class ResourceLimits:
    """Kernel limits for the child (setrlimit): a hostile file cannot eat the machine."""

    cpu_seconds: int | None = None
    memory_bytes: int | None = None
    file_bytes: int | None = None

    def apply(self) -> None:
        import resource

        if self.cpu_seconds:
            resource.setrlimit(resource.RLIMIT_CPU, (self.cpu_seconds, self.cpu_seconds + 5))
        if self.memory_bytes:
            resource.setrlimit(resource.RLIMIT_AS, (self.memory_bytes, self.memory_bytes))
        if self.file_bytes:
            resource.setrlimit(resource.RLIMIT_FSIZE, (self.file_bytes, self.file_bytes))


def _load_prctl() -> Callable[..., int] | None:
    """prctl(2), looked up once in the parent: the child may not load libraries between fork and exec."""
    try:
        import ctypes

        prctl: Callable[..., int] = ctypes.CDLL(None, use_errno=True).prctl
        return prctl
    except (OSError, AttributeError):  # not Linux
        return None


_PRCTL = _load_prctl()
_PR_SET_PDEATHSIG = 1


def _child_setup(limits: ResourceLimits | None, parent: int) -> Callable[[], None]:
    """Runs in the child between fork and exec. The tool gets SIGKILL if the thread that started it dies
    (a pool process killed by Celery's hard time limit, the OOM killer, ``kill -9``): it never runs on as an
    orphan in its own session, which nothing else would kill."""

    def setup() -> None:
        if _PRCTL is not None:
            _PRCTL(_PR_SET_PDEATHSIG, signal.SIGKILL)
            if os.getppid() != parent:  # the parent died before the line above
                os._exit(1)
        if limits is not None:
            limits.apply()

    return setup


def _kill_group(proc: subprocess.Popen[bytes]) -> None:
    with contextlib.suppress(ProcessLookupError):
        os.killpg(proc.pid, signal.SIGKILL)


Classifier = Callable[[int, str], MediaError]


def run_tool(argv: Sequence[str], *, timeout: float, cwd: Path | None = None, check: bool = True,
             on_line: Callable[[str], None] | None = None, limits: ResourceLimits | None = None,
             classify: Classifier | None = None, stderr_lines: int = 200,
             should_stop: Callable[[], bool] | None = None) -> ToolResult:
    """Run ``argv``. With ``on_line``, stdout is read line by line as it comes (ffmpeg's ``-progress
    pipe:1``) and not kept. ``classify`` turns a failed exit into the right MediaError. ``stderr_lines``:
    how many of stderr's last lines the result keeps (a measurement logged per frame needs them all).
    ``should_stop``: polled twice a second; when it says so the tool is killed and Cancelled raised."""
    if not argv or not all(isinstance(a, str) for a in argv):
        raise ValueError("argv must be a non-empty list of strings")
    preexec = _child_setup(limits, os.getpid())
    proc = subprocess.Popen(list(argv), stdin=subprocess.DEVNULL, stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, cwd=cwd, start_new_session=True, preexec_fn=preexec)
    stderr_tail: deque[bytes] = deque(maxlen=stderr_lines)
    stdout_chunks: list[bytes] = []

    def read_stderr() -> None:
        assert proc.stderr is not None
        for line in proc.stderr:
            stderr_tail.append(line)

    def read_stdout() -> None:
        assert proc.stdout is not None
        for line in proc.stdout:
            if on_line is None:
                stdout_chunks.append(line)
            else:
                with contextlib.suppress(Exception):  # a failing callback must not hang the pipe
                    on_line(line.decode("utf-8", "replace").rstrip("\n"))

    readers = [threading.Thread(target=read_stderr, daemon=True), threading.Thread(target=read_stdout, daemon=True)]
    for t in readers:
        t.start()
    deadline = time.monotonic() + timeout
    try:
        while True:
            try:
                proc.wait(timeout=max(0.0, min(0.5, deadline - time.monotonic())))
                break
            except subprocess.TimeoutExpired:
                if should_stop is not None and should_stop():
                    _kill_group(proc)
                    proc.wait()
                    raise Cancelled(detail=f"{argv[0]} stopped: the job was cancelled") from None
                if time.monotonic() >= deadline:
                    _kill_group(proc)
                    proc.wait()
                    metrics.tool_error(argv[0], ToolTimeout.code)
                    log.warning("%s killed after %.0fs (tool_timeout)", argv[0], timeout)
                    raise ToolTimeout(detail=f"{argv[0]} ran longer than {timeout:.0f}s") from None
    except BaseException:
        _kill_group(proc)
        proc.wait()
        raise
    finally:
        for t in readers:
            t.join(timeout=5)
    stderr = b"".join(stderr_tail).decode("utf-8", "replace")
    if stderr_lines <= 200:
        stderr = stderr[-STDERR_TAIL:]
    result = ToolResult(tuple(argv), proc.returncode, b"".join(stdout_chunks), stderr)
    if check and proc.returncode != 0:
        error = (classify(proc.returncode, stderr) if classify is not None
                 else ToolFailed(detail=f"{argv[0]} exited {proc.returncode}: {stderr}"))
        metrics.tool_error(argv[0], error.code)
        log.warning("%s exited %d (%s)", argv[0], proc.returncode, error.code)
        raise error
    return result
