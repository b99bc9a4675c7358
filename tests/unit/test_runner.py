import time
from pathlib import Path

import pytest

from media_service.errors import ToolFailed, ToolTimeout
from media_service.ffmpeg import run_tool


def test_runs_and_captures() -> None:
    result = run_tool(["sh", "-c", "printf out; printf err >&2"], timeout=5)
    assert result.stdout == b"out" and result.stderr == "err" and result.returncode == 0


def test_failure_keeps_stderr_tail_out_of_the_public_message() -> None:
    with pytest.raises(ToolFailed) as info:
        run_tool(["sh", "-c", "echo /secret/path >&2; exit 3"], timeout=5)
    assert "/secret/path" in (info.value.detail or "")
    assert "/secret/path" not in info.value.message


def test_timeout_kills_the_whole_group() -> None:
    started = time.monotonic()
    with pytest.raises(ToolTimeout):
        run_tool(["sh", "-c", "sleep 30 & echo $! > /tmp/runner-child.pid; wait"], timeout=1)
    assert time.monotonic() - started < 5
    pid = int(Path("/tmp/runner-child.pid").read_text())
    assert _gone_or_zombie(pid)


def _gone_or_zombie(pid: int) -> bool:
    deadline = time.monotonic() + 3
    while time.monotonic() < deadline:
        try:
            with open(f"/proc/{pid}/stat") as f:
                state = f.read().rsplit(")", 1)[1].split()[0]
        except FileNotFoundError:
            return True
        if state in ("Z", "X"):
            return True
        time.sleep(0.05)
    return False


def test_argv_must_be_a_list_of_strings() -> None:
    with pytest.raises(ValueError):
        run_tool([], timeout=1)


def test_no_stdin() -> None:
    assert run_tool(["cat"], timeout=5).stdout == b""


def test_should_stop_kills_the_tool_and_cancels() -> None:
    import time as _time

    from media_service.errors import Cancelled

    started = _time.monotonic()
    stop_at = started + 0.6
    with pytest.raises(Cancelled):
        run_tool(["sleep", "30"], timeout=60, should_stop=lambda: _time.monotonic() > stop_at)
    assert _time.monotonic() - started < 3
