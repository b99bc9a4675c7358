"""The hostile corpus through the real stack: every case of ``cases.CASES`` is uploaded over HTTP to a real
API process and, when accepted, rendered by a real Celery worker; its outcome must be the table's, within the
case's time budget, leaving no process, temp file or stored object behind, with the loopback canary silent
and the secret file's marker nowhere. Then the worker must still render a normal photo."""

from __future__ import annotations

import json
import os
import secrets
import select
import socket
import time
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import httpx
import pytest

from tests.hostile import builders as b
from tests.hostile.cases import CASES, Case, Failed, Processed, Refused, Result, photo
from tests.hostile.conftest import Canary, HostileStack, Secret

pytestmark = [pytest.mark.e2e]
AUTH = {"Authorization": "Bearer alice-key"}
TOOLS = ("ffmpeg", "ffprobe")
TOOLS_BEFORE: set[int] = set()  # ffmpeg/ffprobe processes on the machine before the corpus ran


# --- the harness --------------------------------------------------------------------------------------------


def multipart(filename: str, content_type: str, data: bytes, recipe: str | None) -> tuple[bytes, str]:
    """By hand, so that the file name goes out byte for byte as the case wrote it (control characters too)."""
    boundary = secrets.token_hex(16)
    parts = []
    if recipe is not None:
        parts.append(f'--{boundary}\r\nContent-Disposition: form-data; name="recipe"\r\n\r\n'.encode()
                     + recipe.encode() + b"\r\n")
    parts.append(f'--{boundary}\r\nContent-Disposition: form-data; name="file"; filename="'.encode()
                 + filename.encode("utf-8", "surrogateescape") + f'"\r\nContent-Type: {content_type}\r\n\r\n'.encode()
                 + data + b"\r\n")
    return b"".join(parts) + f"--{boundary}--\r\n".encode(), f"multipart/form-data; boundary={boundary}"


def _json(response: httpx.Response) -> Any:
    try:
        return response.json()
    except ValueError:
        return response.text


def run_case(stack: HostileStack, case: Case, data: bytes) -> Result:
    recipe = case.recipe if case.recipe is None or isinstance(case.recipe, str) else json.dumps(case.recipe)
    body, content_type = multipart(case.filename, case.content_type, data, recipe)
    started = time.monotonic()
    r = httpx.post(f"{stack.base_url}/v1/media", content=body, headers={**AUTH, "Content-Type": content_type},
                   timeout=case.budget + 30)
    result = Result(r.status_code, _json(r), seconds=time.monotonic() - started)
    if r.status_code != 202:
        return result
    result.media_id = result.upload_body["id"]
    deadline = started + case.budget + 30  # past the budget: report how long it took, don't hang
    while time.monotonic() < deadline:
        final = httpx.get(f"{stack.base_url}/v1/media/{result.media_id}", headers=AUTH, timeout=10).json()
        if not result.statuses or result.statuses[-1] != final["status"]:
            result.statuses.append(final["status"])
        if final["status"] in ("ready", "failed"):
            result.final = final
            break
        time.sleep(0.1)
    result.seconds = time.monotonic() - started
    if result.final is None:
        result.error = f"not finished after {result.seconds:.0f}s: {result.statuses}"
        return result
    result.keys = stack.storage.list_keys(f"media/{result.media_id}/")
    for key in result.keys:
        if key.endswith("/original"):
            continue
        name = key.split("/", 3)[3]  # media/<id>/<version>/<name>
        result.objects[name] = b"".join(stack.storage.iter_bytes(key))
    return result


def tool_processes(*roots: Path) -> list[str]:
    """ffmpeg/ffprobe processes working in (or on a file in) one of ``roots``."""
    found = []
    for pid in filter(str.isdigit, os.listdir("/proc")):
        try:
            comm = Path(f"/proc/{pid}/comm").read_text().strip()
            if comm not in TOOLS:
                continue
            cmdline = Path(f"/proc/{pid}/cmdline").read_bytes().replace(b"\0", b" ").decode(errors="replace")
            cwd = os.readlink(f"/proc/{pid}/cwd")
        except OSError:
            continue
        if any(str(root) in cmdline or cwd.startswith(str(root)) for root in roots):
            found.append(f"{pid} {cwd}: {cmdline}")
    return found


def descendants(pid: int) -> list[int]:
    children: dict[int, list[int]] = {}
    for entry in filter(str.isdigit, os.listdir("/proc")):
        try:
            stat = Path(f"/proc/{entry}/stat").read_text()
        except OSError:
            continue
        ppid = int(stat.rsplit(")", 1)[1].split()[1])
        children.setdefault(ppid, []).append(int(entry))
    out, todo = [], [pid]
    while todo:
        for child in children.get(todo.pop(), []):
            out.append(child)
            todo.append(child)
    return out


def tool_descendants(pid: int) -> list[str]:
    found = []
    for child in descendants(pid):
        try:
            comm = Path(f"/proc/{child}/comm").read_text().strip()
        except OSError:
            continue
        if comm in TOOLS:
            found.append(f"{child} {comm}")
    return found


def pgrep_tools() -> set[int]:
    pids: set[int] = set()
    for entry in filter(str.isdigit, os.listdir("/proc")):
        try:
            if Path(f"/proc/{entry}/comm").read_text().strip() in TOOLS:
                pids.add(int(entry))
        except OSError:
            continue
    return pids


def rss_bytes(pid: int) -> int:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) * 1024
    return 0


# --- the run: refusals first (cheap), then everything accepted, two at a time (the worker runs two) ---------


@pytest.fixture(scope="module")
def corpus(hostile_stack: HostileStack, canary: Canary, secret: Secret,
           tmp_path_factory: pytest.TempPathFactory) -> Iterator[dict[str, Result]]:
    tools_before = pgrep_tools()
    root = tmp_path_factory.mktemp("hostile-build")
    payloads: dict[str, bytes] = {}
    started = time.monotonic()

    def build(case: Case) -> None:
        folder = root / case.name
        folder.mkdir()
        payloads[case.name] = case.build(b.Build(folder, canary.url, secret.path, secret.marker))

    with ThreadPoolExecutor(2) as pool:
        list(pool.map(build, CASES))
    built = time.monotonic() - started
    results: dict[str, Result] = {}
    refused = [c for c in CASES if not c.accepted]
    accepted = sorted((c for c in CASES if c.accepted), key=lambda c: -c.budget)  # videos first
    with ThreadPoolExecutor(2) as pool:
        for case, result in zip(refused, pool.map(lambda c: run_case(hostile_stack, c, payloads[c.name]), refused),
                                strict=True):
            results[case.name] = result
    with ThreadPoolExecutor(2) as pool:
        for case, result in zip(accepted, pool.map(lambda c: run_case(hostile_stack, c, payloads[c.name]),
                                                   accepted), strict=True):
            results[case.name] = result
    elapsed = time.monotonic() - started
    table = "\n".join(f"{c.name:36s} {c.group:9s} {_outcome(results[c.name]):44s} {results[c.name].seconds:6.2f}s"
                      f" (budget {c.budget:.0f}s)" for c in CASES)
    summary = (f"hostile corpus: {len(CASES)} cases, built in {built:.1f}s, run in {elapsed - built:.1f}s\n"
               f"{table}\n")
    (hostile_stack.logs / "corpus.txt").write_text(summary)
    print("\n" + summary)
    TOOLS_BEFORE.update(tools_before)
    yield results


def _outcome(r: Result) -> str:
    if r.upload_status != 202:
        code = r.upload_body.get("error", {}).get("code") if isinstance(r.upload_body, dict) else "?"
        return f"refused {r.upload_status} {code}"
    if r.final is None:
        return f"accepted, unfinished {r.statuses}"
    if r.final["status"] == "failed":
        return f"202, failed {r.final['error']['code']}"
    return f"202, {r.final['status']}"


# --- one test per row -----------------------------------------------------------------------------------------


@pytest.mark.parametrize("case", CASES, ids=[c.name for c in CASES])
def test_case(corpus: dict[str, Result], case: Case, hostile_stack: HostileStack) -> None:
    r = corpus[case.name]
    expected = case.expected
    assert r.error is None, r.error
    if isinstance(expected, Refused):
        assert r.upload_status == expected.status, (r.upload_status, r.upload_body)
        assert isinstance(r.upload_body, dict), r.upload_body
        error = r.upload_body["error"]
        assert error["code"] == expected.code, error
        assert error["message"], error
        if expected.field is not None:
            assert error.get("field") == expected.field, error
        assert "/etc/passwd" not in json.dumps(r.upload_body), r.upload_body  # never echoed back
    else:
        assert r.upload_status == 202, r.upload_body
        assert r.final is not None
        if isinstance(expected, Failed):
            assert r.final["status"] == "failed", r.final
            assert r.final["error"]["code"] == expected.code, r.final["error"]
            assert r.final["error"]["message"], r.final["error"]
            assert r.final["renditions"] == [], r.final["renditions"]
            # A failed job leaves only the original behind (deleted with the media).
            assert [k.rsplit("/", 1)[1] for k in r.keys] == ["original"], r.keys
        else:
            assert isinstance(expected, Processed)
            assert r.final["status"] == "ready", r.final
            expected.check(r)
        # Its private work dir is gone, and no tool still works on it.
        assert not list(hostile_stack.tmp.glob(f"media-{r.media_id}-*"))
        assert not tool_processes(*hostile_stack.tmp.glob(f"media-{r.media_id}-*"))
    assert r.seconds <= case.budget, f"{case.name} took {r.seconds:.1f}s, budget {case.budget:.0f}s"


# --- what holds across the whole corpus -------------------------------------------------------------------------


def test_canary_never_contacted(corpus: dict[str, Result], canary: Canary) -> None:
    assert canary.hits == []


def test_secret_appears_nowhere(corpus: dict[str, Result], secret: Secret, hostile_stack: HostileStack) -> None:
    """No response, record, error, rendition or log line holds the secret file's content or path. (The
    privacy cases carry the marker in their own metadata: their renditions must not.)"""
    marker, path = secret.marker.encode(), str(secret.path).encode()
    for name, r in corpus.items():
        seen = json.dumps([r.upload_body, r.final]).encode()
        assert marker not in seen and path not in seen, name
        for obj, data in r.objects.items():
            assert marker not in data and path not in data, (name, obj)
    for log in (hostile_stack.api.tail(), hostile_stack.worker.tail()):
        assert secret.marker not in log


def test_refused_uploads_store_nothing(corpus: dict[str, Result], hostile_stack: HostileStack) -> None:
    accepted = {r.media_id for r in corpus.values() if r.media_id}
    stored = {k.split("/")[1] for k in hostile_stack.storage.list_keys("media/")}
    assert stored <= accepted, stored - accepted


def test_nothing_left_behind(corpus: dict[str, Result], hostile_stack: HostileStack) -> None:
    """No temp file, no upload copy, no work dir, no ffmpeg or ffprobe left running."""
    deadline = time.monotonic() + 5
    while time.monotonic() < deadline and (hostile_stack.tmp_leftovers() or tool_processes(hostile_stack.tmp)):
        time.sleep(0.2)
    assert hostile_stack.tmp_leftovers() == []
    assert tool_processes(hostile_stack.tmp, hostile_stack.data) == []
    assert tool_descendants(hostile_stack.worker.proc.pid) == []
    assert tool_descendants(hostile_stack.api.proc.pid) == []
    # Any tool process that appeared since and is still alive must be someone else's (another test run).
    ours = set(descendants(hostile_stack.worker.proc.pid)) | set(descendants(hostile_stack.api.proc.pid))
    assert (pgrep_tools() - TOOLS_BEFORE) & ours == set()
    assert hostile_stack.worker.alive() and hostile_stack.api.alive()


def test_worker_still_renders_a_normal_photo(corpus: dict[str, Result], hostile_stack: HostileStack,
                                             tmp_path: Path, canary: Canary, secret: Secret) -> None:
    case = Case("after_the_corpus", "health", b.plain_photo, "IMG_1000.JPG", "image/jpeg",
                Processed(photo(400, 300, "jpeg")), 30.0,
                recipe={"aspect": "1:1", "filter": {"id": "starter/warm", "intensity": 0.8},
                        "stickers": [{"id": "starter/heart", "x": 0.5, "y": 0.5, "scale": 0.3}]})
    r = run_case(hostile_stack, case, case.build(b.Build(tmp_path, canary.url, secret.path, secret.marker)))
    assert r.final is not None and r.final["status"] == "ready", (r.final, r.error)
    assert r.names() == {"w300.webp", "w300.jpg"}
    assert r.seconds < 30


# --- the request body: a 2 GB upload is refused while it streams, never buffered ----------------------------------


def _send_streaming_body(stack: HostileStack, total: int, *, declare: bool) -> tuple[int, bytes, int]:
    """POST ``total`` bytes of multipart body on a raw socket, reading as we go; returns (bytes sent,
    response, peak RSS of the API process)."""
    host, port = stack.base_url.removeprefix("http://").split(":")
    boundary = secrets.token_hex(8)
    head = (f'--{boundary}\r\nContent-Disposition: form-data; name="file"; filename="big.mp4"\r\n'
            f"Content-Type: video/mp4\r\n\r\n").encode()
    framing = [f"POST /v1/media HTTP/1.1\r\nHost: {host}:{port}\r\nAuthorization: Bearer alice-key\r\n",
               f"Content-Type: multipart/form-data; boundary={boundary}\r\n"]
    framing.append(f"Content-Length: {total}\r\n\r\n" if declare else "Transfer-Encoding: chunked\r\n\r\n")
    sock = socket.create_connection((host, int(port)), timeout=30)
    sent, response, peak = 0, b"", 0
    block = b"\0" * (1 << 20)
    try:
        sock.sendall("".join(framing).encode())
        first = head
        while sent < total:
            readable, writable, _ = select.select([sock], [sock], [], 10)
            if readable:
                break
            if not writable:
                continue
            payload = first + block
            first = b""
            frame = payload if declare else f"{len(payload):x}\r\n".encode() + payload + b"\r\n"
            try:
                sock.sendall(frame)
            except (BrokenPipeError, ConnectionResetError):
                break
            sent += len(payload)
            if sent % (16 << 20) < len(payload):
                peak = max(peak, rss_bytes(stack.api.proc.pid))
        sock.settimeout(10)
        try:
            while b"\r\n\r\n" not in response or not response.rstrip().endswith(b"}"):
                chunk = sock.recv(65536)
                if not chunk:
                    break
                response += chunk
        except (TimeoutError, ConnectionResetError):
            pass
    finally:
        sock.close()
    return sent, response, max(peak, rss_bytes(stack.api.proc.pid))


@pytest.mark.parametrize("declare", [False, True], ids=["chunked", "content_length"])
def test_2gb_body_refused_without_buffering(hostile_stack: HostileStack, declare: bool) -> None:
    baseline = rss_bytes(hostile_stack.api.proc.pid)
    started = time.monotonic()
    sent, response, peak = _send_streaming_body(hostile_stack, 2 << 30, declare=declare)
    assert response.startswith(b"HTTP/1.1 413"), (sent, response[:300])
    assert b'"file_too_large"' in response
    limit = 50 << 20
    assert sent < limit + (64 << 20), f"the API read {sent >> 20} MB before refusing"
    if declare:  # answered from the headers: what was sent is what the socket took before the answer came
        assert sent <= 16 << 20, "a declared length over the cap is refused before the body is read"
    assert peak - baseline < 64 << 20, f"API RSS grew by {(peak - baseline) >> 20} MB"
    assert time.monotonic() - started < 30
    # The spooled part went to a temp file that is gone.
    deadline = time.monotonic() + 5
    while hostile_stack.tmp_leftovers() and time.monotonic() < deadline:
        time.sleep(0.1)
    assert hostile_stack.tmp_leftovers() == []
    # The API still answers.
    assert httpx.get(f"{hostile_stack.base_url}/healthz", timeout=5).status_code == 200
