"""The storage contract, run against every backend (``storage`` fixture: local disk and S3 via moto).

Backend-specific behaviour (signed local URLs, S3 prefixes and error mapping) is tested at the end.
"""

from __future__ import annotations

import hashlib
import io
import os
import random
import socket
import threading
import time
import urllib.error
import urllib.request
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import BinaryIO
from urllib.parse import parse_qs, urlsplit

import pytest
from botocore.stub import Stubber

from media_service.errors import StorageObjectMissing, StorageUnavailable
from media_service.storage import LocalStorage, S3Storage, Storage, StoredObject, open_storage, signing
from media_service.storage.s3 import make_client

from .conftest import PUBLIC_BASE_URL, S3_PREFIX, SIGNING_SECRET

KEY = "media/m-1f3a/v1-ab12/w1080.webp"


def payload(size: int, seed: int = 0) -> bytes:
    return random.Random(seed).randbytes(size)


def sha(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


class OneWayStream(io.RawIOBase):
    """A readable, non-seekable stream (like a request body), optionally failing after some bytes."""

    def __init__(self, data: bytes, *, fail_after: int | None = None) -> None:
        self._data = data
        self._pos = 0
        self._fail_after = fail_after

    def readable(self) -> bool:
        return True

    def readinto(self, buffer: memoryview) -> int:  # type: ignore[override]
        if self._fail_after is not None and self._pos >= self._fail_after:
            raise ConnectionResetError("client went away")
        end = len(self._data) if self._fail_after is None else self._fail_after
        chunk = self._data[self._pos : min(end, self._pos + len(buffer))]
        buffer[: len(chunk)] = chunk
        self._pos += len(chunk)
        return len(chunk)


def one_way(data: bytes, *, fail_after: int | None = None) -> BinaryIO:
    return io.BufferedReader(OneWayStream(data, fail_after=fail_after))


def put_bytes(storage: Storage, key: str, data: bytes, content_type: str = "image/webp") -> StoredObject:
    return storage.put_stream(key, io.BytesIO(data), content_type)


def read_all(storage: Storage, key: str) -> bytes:
    return b"".join(storage.iter_bytes(key))


# --- round trips ------------------------------------------------------------------------------------------


def test_put_file_round_trip(storage: Storage, tmp_path: Path) -> None:
    data = payload(100_000)
    source = tmp_path / "source.webp"
    source.write_bytes(data)

    stored = storage.put_file(KEY, source, "image/webp")

    assert stored == StoredObject(key=KEY, size=len(data), content_type="image/webp", sha256=sha(data))
    assert storage.stat(KEY) == stored
    dest = tmp_path / "downloads" / "copy.webp"
    dest.parent.mkdir()
    storage.get_to_file(KEY, dest)
    assert dest.read_bytes() == data
    assert read_all(storage, KEY) == data
    assert sorted(os.listdir(dest.parent)) == ["copy.webp"]  # no temp files left behind


def test_put_stream_round_trip_from_non_seekable_stream(storage: Storage) -> None:
    data = payload(3 * 1024 * 1024 + 17, seed=1)  # bigger than any in-memory spool

    stored = storage.put_stream("media/m2/original", one_way(data), "video/mp4")

    assert stored == StoredObject(
        key="media/m2/original", size=len(data), content_type="video/mp4", sha256=sha(data)
    )
    assert storage.stat("media/m2/original") == stored
    assert read_all(storage, "media/m2/original") == data


def test_put_replaces_bytes_and_content_type(storage: Storage) -> None:
    put_bytes(storage, KEY, b"first version, longer", "image/png")
    second = put_bytes(storage, KEY, b"second", "image/webp")

    assert storage.stat(KEY) == second == StoredObject(KEY, 6, "image/webp", sha(b"second"))
    assert read_all(storage, KEY) == b"second"
    assert storage.list_keys("media/") == [KEY]


def test_empty_object(storage: Storage, tmp_path: Path) -> None:
    stored = put_bytes(storage, "media/empty/file", b"", "application/octet-stream")

    assert stored.size == 0
    assert stored.sha256 == sha(b"")
    assert storage.stat("media/empty/file") == stored
    assert read_all(storage, "media/empty/file") == b""
    storage.get_to_file("media/empty/file", tmp_path / "empty")
    assert (tmp_path / "empty").read_bytes() == b""


def test_iter_bytes_respects_chunk_size(storage: Storage) -> None:
    data = payload(10_500, seed=2)
    put_bytes(storage, KEY, data)

    chunks = list(storage.iter_bytes(KEY, chunk_size=1000))

    assert b"".join(chunks) == data
    assert all(0 < len(chunk) <= 1000 for chunk in chunks)


@pytest.mark.parametrize("method", ["put_file", "put_stream"])
def test_large_object_round_trip(storage: Storage, tmp_path: Path, method: str) -> None:
    data = payload(9 * 1024 * 1024 + 7, seed=3)  # above the multipart threshold: two parts on S3
    source = tmp_path / "big.mp4"
    source.write_bytes(data)

    if method == "put_file":
        stored = storage.put_file("media/big/original.mp4", source, "video/mp4")
    else:
        with source.open("rb") as stream:
            stored = storage.put_stream("media/big/original.mp4", stream, "video/mp4")

    assert stored == StoredObject("media/big/original.mp4", len(data), "video/mp4", sha(data))
    assert storage.stat("media/big/original.mp4") == stored
    dest = tmp_path / "big-copy.mp4"
    storage.get_to_file("media/big/original.mp4", dest)
    assert dest.stat().st_size == len(data)
    assert sha(dest.read_bytes()) == sha(data)
    assert hashlib.sha256(b"".join(storage.iter_bytes("media/big/original.mp4"))).hexdigest() == sha(data)
    if isinstance(storage, S3Storage):
        head = storage.client.head_object(
            Bucket=storage.bucket, Key=storage.prefix + "media/big/original.mp4"
        )
        assert head["ETag"].strip('"').endswith("-2"), "expected a two-part multipart upload"


# --- missing objects --------------------------------------------------------------------------------------


def test_stat_of_missing_is_none(storage: Storage) -> None:
    assert storage.stat("media/nope/nothing.webp") is None
    put_bytes(storage, "media/dir/inner/file", b"x")
    assert storage.stat("media/dir/inner") is None  # a prefix is not an object


def test_get_to_file_of_missing_raises(storage: Storage, tmp_path: Path) -> None:
    dest = tmp_path / "dest.webp"

    with pytest.raises(StorageObjectMissing):
        storage.get_to_file("media/nope/nothing.webp", dest)

    assert not dest.exists()
    assert os.listdir(tmp_path) == []


def test_iter_bytes_of_missing_raises_before_iterating(storage: Storage) -> None:
    # Raising at the call (not at the first next()) lets the HTTP layer answer 404 before streaming.
    with pytest.raises(StorageObjectMissing):
        storage.iter_bytes("media/nope/nothing.webp")


def test_delete_is_idempotent(storage: Storage) -> None:
    put_bytes(storage, KEY, b"bytes")

    storage.delete(KEY)
    storage.delete(KEY)
    storage.delete("media/never/existed")

    assert storage.stat(KEY) is None
    assert storage.list_keys("") == []


# --- prefixes ---------------------------------------------------------------------------------------------

PREFIX_LAYOUT = [
    "media/ab/original.jpg",
    "media/ab/v1-0001/w1080.webp",
    "media/ab/v1-0001/w320.webp",
    "media/abc/original.jpg",
    "media/ab.json",
    "media/a/b.webp",
    "other/ab/original.jpg",
]


def put_layout(storage: Storage) -> None:
    for index, key in enumerate(PREFIX_LAYOUT):
        put_bytes(storage, key, f"object {index}".encode())


def test_delete_prefix_deletes_only_that_prefix(storage: Storage) -> None:
    put_layout(storage)

    deleted = storage.delete_prefix("media/ab/")

    assert deleted == 3
    assert storage.list_keys("") == sorted(
        ["media/abc/original.jpg", "media/ab.json", "media/a/b.webp", "other/ab/original.jpg"]
    )
    assert read_all(storage, "media/abc/original.jpg") == b"object 3"
    assert storage.delete_prefix("media/ab/") == 0


def test_delete_prefix_is_a_plain_string_prefix(storage: Storage) -> None:
    put_layout(storage)

    # Without a trailing slash, "media/ab" also matches media/abc/… and media/ab.json.
    assert storage.delete_prefix("media/ab") == 5
    assert storage.list_keys("") == ["media/a/b.webp", "other/ab/original.jpg"]


def test_delete_prefix_refuses_the_empty_prefix(storage: Storage) -> None:
    put_bytes(storage, KEY, b"keep me")

    with pytest.raises(ValueError):
        storage.delete_prefix("")

    assert storage.list_keys("") == [KEY]


def test_list_keys(storage: Storage) -> None:
    put_layout(storage)

    assert storage.list_keys("") == sorted(PREFIX_LAYOUT)
    assert storage.list_keys("media/ab/") == [
        "media/ab/original.jpg",
        "media/ab/v1-0001/w1080.webp",
        "media/ab/v1-0001/w320.webp",
    ]
    assert storage.list_keys("media/ab") == sorted(k for k in PREFIX_LAYOUT if k.startswith("media/ab"))
    assert storage.list_keys("media/ab/v1-0001/w1") == ["media/ab/v1-0001/w1080.webp"]
    assert storage.list_keys("media/zz/") == []
    assert storage.list_keys("nothing") == []


# --- hostile keys -----------------------------------------------------------------------------------------

HOSTILE_KEYS = [
    "../x",
    "/abs",
    "/etc/passwd",
    "a//b",
    "a/../b",
    "a\\b",
    "..",
    ".",
    "a/./b",
    "a/",
    "",
    "a b",
    "a\nb",
    "caf\u00e9",
    "media/.hidden",
]


def _operations(tmp_path: Path) -> dict[str, Callable[[Storage, str], object]]:
    source = tmp_path / "source"
    source.write_bytes(b"attack")
    return {
        "put_file": lambda s, k: s.put_file(k, source, "text/plain"),
        "put_stream": lambda s, k: s.put_stream(k, io.BytesIO(b"attack"), "text/plain"),
        "get_to_file": lambda s, k: s.get_to_file(k, tmp_path / "out"),
        "iter_bytes": lambda s, k: list(s.iter_bytes(k)),
        "stat": lambda s, k: s.stat(k),
        "delete": lambda s, k: s.delete(k),
        "url": lambda s, k: s.url(k, expires_in=60),
    }


@pytest.mark.parametrize("key", HOSTILE_KEYS)
def test_hostile_keys_are_refused(storage: Storage, tmp_path: Path, key: str) -> None:
    for name, operation in _operations(tmp_path).items():
        with pytest.raises(ValueError):
            operation(storage, key)
            pytest.fail(f"{name}({key!r}) was accepted")

    assert storage.list_keys("") == []
    assert sorted(os.listdir(tmp_path)) == ["source"] + (["store"] if (tmp_path / "store").exists() else [])


@pytest.mark.parametrize("prefix", ["../", "/abs/", "a//", "a/../b/", "a\\b/", "./"])
def test_hostile_prefixes_are_refused(storage: Storage, prefix: str) -> None:
    with pytest.raises(ValueError):
        storage.list_keys(prefix)
    with pytest.raises(ValueError):
        storage.delete_prefix(prefix)


# --- atomicity --------------------------------------------------------------------------------------------


def test_failed_put_keeps_the_previous_object(storage: Storage) -> None:
    old = put_bytes(storage, KEY, b"the old version")

    with pytest.raises(ConnectionResetError):
        storage.put_stream(KEY, one_way(payload(2 * 1024 * 1024), fail_after=1024 * 1024), "image/webp")

    assert storage.stat(KEY) == old
    assert read_all(storage, KEY) == b"the old version"
    assert storage.list_keys("") == [KEY]


def test_readers_never_see_a_partial_object(storage: Storage) -> None:
    versions = [payload(256 * 1024, seed=10), payload(256 * 1024, seed=11)]
    put_bytes(storage, KEY, versions[0])
    seen: list[bytes] = []
    done = threading.Event()

    def read_repeatedly() -> None:
        while not done.is_set():
            seen.append(read_all(storage, KEY))

    reader = threading.Thread(target=read_repeatedly)
    reader.start()
    try:
        for round_ in range(12):
            put_bytes(storage, KEY, versions[round_ % 2])
    finally:
        done.set()
        reader.join(timeout=30)

    assert seen
    assert all(data in versions for data in seen)


# --- URLs -------------------------------------------------------------------------------------------------


def test_url_grants_a_download(storage: Storage) -> None:
    data = payload(50_000, seed=4)
    put_bytes(storage, KEY, data, "image/webp")

    before = int(time.time())
    url = storage.url(KEY, expires_in=300, content_type="image/webp")

    if isinstance(storage, LocalStorage):
        parts = urlsplit(url)
        assert f"{parts.scheme}://{parts.netloc}" == PUBLIC_BASE_URL
        assert parts.path == f"/v1/files/{KEY}"
        query = {name: values[0] for name, values in parse_qs(parts.query, strict_parsing=True).items()}
        assert set(query) == {"expires", "sig"}
        expires, sig = int(query["expires"]), query["sig"]
        assert before + 300 <= expires <= int(time.time()) + 300
        assert signing.verify(SIGNING_SECRET, KEY, expires, sig)
        assert not signing.verify(SIGNING_SECRET, "media/m-1f3a/v1-ab12/w320.webp", expires, sig)
        assert not signing.verify(SIGNING_SECRET, KEY, expires + 1, sig)
        assert not signing.verify(SIGNING_SECRET, KEY, expires, sig[:-1] + ("0" if sig[-1] != "0" else "1"))
        assert not signing.verify(b"another secret", KEY, expires, sig)
        assert not signing.verify(SIGNING_SECRET, KEY, expires, sig, now=expires + 1)
        assert signing.verify(SIGNING_SECRET, KEY, expires, sig, now=expires)
    else:
        with urllib.request.urlopen(url, timeout=10) as response:
            assert response.status == 200
            assert response.headers["Content-Type"] == "image/webp"
            assert response.read() == data
        # The URL grants exactly this object.
        other = url.replace("w1080.webp", "w320.webp")
        with pytest.raises(urllib.error.HTTPError):
            urllib.request.urlopen(other, timeout=10)


@pytest.mark.parametrize("expires_in", [0, -5, 8 * 24 * 3600])
def test_url_refuses_silly_lifetimes(storage: Storage, expires_in: int) -> None:
    with pytest.raises(ValueError):
        storage.url(KEY, expires_in=expires_in)


# --- health -----------------------------------------------------------------------------------------------


def test_check_passes_and_leaves_nothing_behind(storage: Storage) -> None:
    storage.check()
    storage.check()

    assert storage.list_keys("") == []


# --- local backend ----------------------------------------------------------------------------------------


def test_local_keeps_metadata_hidden_and_writes_files_where_expected(local_storage: LocalStorage) -> None:
    put_bytes(local_storage, KEY, b"webp bytes", "image/webp")

    directory = local_storage.root / "media/m-1f3a/v1-ab12"
    assert (directory / "w1080.webp").read_bytes() == b"webp bytes"
    assert sorted(os.listdir(directory)) == [".w1080.webp.meta.json", "w1080.webp"]
    assert local_storage.list_keys("") == [KEY]


def test_local_stat_without_sidecar_guesses_the_content_type(local_storage: LocalStorage) -> None:
    put_bytes(local_storage, KEY, b"webp bytes", "image/webp")
    (local_storage.root / "media/m-1f3a/v1-ab12/.w1080.webp.meta.json").unlink()

    assert local_storage.stat(KEY) == StoredObject(KEY, 10, "image/webp", None)


def test_local_stat_ignores_a_stale_sidecar(local_storage: LocalStorage) -> None:
    put_bytes(local_storage, KEY, b"webp bytes", "image/webp")
    (local_storage.root / KEY).write_bytes(b"replaced behind our back")

    stat = local_storage.stat(KEY)
    assert stat is not None
    assert stat.size == 24
    assert stat.sha256 is None


def test_local_delete_prefix_removes_empty_directories(local_storage: LocalStorage) -> None:
    put_layout(local_storage)

    local_storage.delete_prefix("media/ab/")
    local_storage.delete("other/ab/original.jpg")

    assert not (local_storage.root / "media/ab").exists()
    assert not (local_storage.root / "other").exists()
    assert (local_storage.root / "media/abc/original.jpg").exists()


def test_local_refuses_symlinks_out_of_the_root(local_storage: LocalStorage, tmp_path: Path) -> None:
    outside = tmp_path / "outside"
    outside.mkdir()
    local_storage.root.mkdir(parents=True)
    (local_storage.root / "media").symlink_to(outside)

    with pytest.raises(ValueError):
        put_bytes(local_storage, "media/x", b"escape")
    with pytest.raises(ValueError):
        local_storage.list_keys("media/")
    assert os.listdir(outside) == []


def test_local_key_cannot_also_be_a_prefix(local_storage: LocalStorage) -> None:
    put_bytes(local_storage, "media/a/b", b"x")

    with pytest.raises(ValueError):
        put_bytes(local_storage, "media/a", b"y")
    with pytest.raises(ValueError):
        put_bytes(local_storage, "media/a/b/c", b"z")
    assert read_all(local_storage, "media/a/b") == b"x"


def test_local_check_fails_when_root_is_not_writable(tmp_path: Path) -> None:
    blocker = tmp_path / "a-file"
    blocker.write_bytes(b"")
    storage = LocalStorage(blocker / "store", public_base_url=PUBLIC_BASE_URL, signing_secret=SIGNING_SECRET)

    with pytest.raises(StorageUnavailable):
        storage.check()


def test_signing_helpers() -> None:
    sig = signing.sign(b"secret", "media/x", 2_000_000_000)

    assert len(sig) == 64
    assert signing.verify(b"secret", "media/x", 2_000_000_000, sig, now=1_999_999_999)
    assert not signing.verify(b"secret", "media/x", 2_000_000_000, sig.upper(), now=1_999_999_999)
    assert not signing.verify(b"secret", "media/x", 2_000_000_000, "\u00e9" * 64, now=1_999_999_999)
    assert not signing.verify(b"secret", "media/x", 2_000_000_000, "", now=1_999_999_999)
    assert not signing.verify(b"secret", "media/../x", 2_000_000_000, sig, now=1_999_999_999)
    with pytest.raises(ValueError):
        signing.sign(b"", "media/x", 2_000_000_000)


# --- S3 backend -------------------------------------------------------------------------------------------


@pytest.mark.s3
def test_s3_objects_live_under_the_prefix(s3_storage: S3Storage) -> None:
    client, bucket = s3_storage.client, s3_storage.bucket
    client.put_object(Bucket=bucket, Key="outside.txt", Body=b"not ours")
    client.put_object(Bucket=bucket, Key=f"{S3_PREFIX}X/media/ab/x", Body=b"not ours either")

    stored = put_bytes(s3_storage, "media/ab/x", b"ours")

    raw = client.head_object(Bucket=bucket, Key=f"{S3_PREFIX}/media/ab/x")
    assert raw["Metadata"]["sha256"] == stored.sha256
    assert s3_storage.list_keys("") == ["media/ab/x"]
    assert s3_storage.delete_prefix("media/") == 1
    remaining = sorted(o["Key"] for o in client.list_objects_v2(Bucket=bucket).get("Contents", []))
    assert remaining == ["outside.txt", f"{S3_PREFIX}X/media/ab/x"]


@pytest.mark.s3
def test_s3_delete_prefix_pages_past_one_thousand(s3_storage: S3Storage) -> None:
    client, bucket = s3_storage.client, s3_storage.bucket
    with ThreadPoolExecutor(max_workers=16) as pool:
        list(
            pool.map(
                lambda index: client.put_object(Bucket=bucket, Key=f"{S3_PREFIX}/media/many/{index:05d}"),
                range(1005),
            )
        )
    put_bytes(s3_storage, "media/manyx/keep", b"keep")

    assert s3_storage.delete_prefix("media/many/") == 1005
    assert s3_storage.list_keys("") == ["media/manyx/keep"]


@pytest.mark.s3
def test_s3_ensure_bucket_is_idempotent(s3_storage: S3Storage) -> None:
    s3_storage.ensure_bucket()
    s3_storage.check()


@pytest.mark.s3
def test_s3_missing_bucket_is_unavailable(aws_env: None, moto_endpoint: str) -> None:
    storage = S3Storage("contract-never-created", "p", endpoint_url=moto_endpoint)

    with pytest.raises(StorageUnavailable):
        storage.check()
    with pytest.raises(StorageUnavailable):
        put_bytes(storage, KEY, b"x")
    with pytest.raises(StorageUnavailable):
        storage.iter_bytes(KEY)


@pytest.fixture
def closed_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
    return port


@pytest.fixture
def black_hole() -> Iterator[str]:
    """A port that accepts connections (the kernel does) but never answers."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        sock.listen(16)
        yield f"http://127.0.0.1:{sock.getsockname()[1]}"


@pytest.mark.s3
def test_s3_dead_endpoint_is_unavailable_quickly(aws_env: None, closed_port: int) -> None:
    storage = S3Storage("contract-dead", "p", endpoint_url=f"http://127.0.0.1:{closed_port}")

    started = time.monotonic()
    with pytest.raises(StorageUnavailable) as raised:
        storage.check()
    assert time.monotonic() - started < 10, "default retries and timeouts should give up within seconds"
    assert raised.value.retryable

    for operation in (
        lambda: storage.stat(KEY),
        lambda: storage.iter_bytes(KEY),
        lambda: put_bytes(storage, KEY, b"x"),
        lambda: storage.list_keys(""),
    ):
        with pytest.raises(StorageUnavailable):
            operation()


@pytest.mark.s3
def test_s3_unresponsive_endpoint_times_out(aws_env: None, black_hole: str) -> None:
    client = make_client(black_hole, connect_timeout=0.5, read_timeout=0.5, max_attempts=1)
    storage = S3Storage("contract-silent", "p", endpoint_url=black_hole, client=client)

    started = time.monotonic()
    with pytest.raises(StorageUnavailable):
        storage.check()
    with pytest.raises(StorageUnavailable):
        storage.stat(KEY)
    assert time.monotonic() - started < 10


@pytest.mark.parametrize(
    ("code", "status", "expected"),
    [
        ("NoSuchKey", 404, StorageObjectMissing),
        ("InternalError", 500, StorageUnavailable),
        ("ServiceUnavailable", 503, StorageUnavailable),
        ("SlowDown", 503, StorageUnavailable),
        ("AccessDenied", 403, StorageUnavailable),
    ],
)
def test_s3_error_mapping(aws_env: None, code: str, status: int, expected: type[Exception]) -> None:
    # Stubbed responses bypass botocore's retries, so this checks only our mapping of the final error.
    storage = S3Storage("contract-stubbed", "p", endpoint_url="http://127.0.0.1:9")
    with Stubber(storage.client) as stub:
        stub.add_client_error("get_object", service_error_code=code, http_status_code=status)
        with pytest.raises(expected):
            storage.iter_bytes(KEY)


# --- open_storage -----------------------------------------------------------------------------------------


def _open(url: str, endpoint: str | None = None) -> Storage:
    return open_storage(
        url, s3_endpoint_url=endpoint, public_base_url=PUBLIC_BASE_URL, signing_secret=SIGNING_SECRET
    )


def test_open_storage_file_url(tmp_path: Path) -> None:
    storage = _open(f"file://{tmp_path}/media store".replace(" ", "%20"))

    assert isinstance(storage, LocalStorage)
    assert storage.root == tmp_path.resolve() / "media store"


def test_open_storage_s3_url(aws_env: None) -> None:
    storage = _open("s3://notes-media/prod/v1/", "http://s3.internal:9000")

    assert isinstance(storage, S3Storage)
    assert (storage.bucket, storage.prefix, storage.endpoint_url) == (
        "notes-media",
        "prod/v1/",
        "http://s3.internal:9000",
    )
    bare = _open("s3://notes-media")
    assert isinstance(bare, S3Storage)
    assert (bare.prefix, bare.endpoint_url) == ("", None)


@pytest.mark.parametrize(
    "url",
    [
        "",
        "/var/lib/media",
        "file://relative/dir",
        "file:relative",
        "s3:///no-bucket",
        "s3://Bad_Bucket/x",
        "s3://bucket/../x",
        "s3://bucket/x?region=eu",
        "gs://bucket/x",
        "http://example.com/",
    ],
)
def test_open_storage_refuses_other_urls(aws_env: None, url: str) -> None:
    with pytest.raises(ValueError):
        _open(url)
