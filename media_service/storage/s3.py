"""Objects in an S3 bucket (AWS or an S3-compatible server), under a key prefix."""

from __future__ import annotations

import contextlib
import hashlib
import os
import re
import tempfile
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import TYPE_CHECKING, BinaryIO, cast

import boto3
from boto3.exceptions import RetriesExceededError, S3TransferFailedError, S3UploadFailedError
from boto3.s3.transfer import TransferConfig
from botocore.config import Config
from botocore.exceptions import BotoCoreError, ClientError, ParamValidationError
from s3transfer.exceptions import S3DownloadFailedError

from media_service.errors import InvalidRequest, MediaError, StorageObjectMissing, StorageUnavailable
from media_service.storage.base import StoredObject
from media_service.storage.signing import MAX_URL_EXPIRES_IN, validate_key, validate_prefix

if TYPE_CHECKING:
    from botocore.response import StreamingBody
    from mypy_boto3_s3 import S3Client
    from mypy_boto3_s3.literals import BucketLocationConstraintType
    from mypy_boto3_s3.type_defs import CompletedPartTypeDef, ObjectIdentifierTypeDef

MULTIPART_THRESHOLD = 8 << 20
MULTIPART_CHUNKSIZE = 8 << 20
DEFAULT_CONNECT_TIMEOUT = 3.0
DEFAULT_READ_TIMEOUT = 20.0
DEFAULT_MAX_ATTEMPTS = 3

_COPY_CHUNK = 1 << 20
# put_stream spools to a temp file first: the sha256 has to be known before the upload starts (it is
# sent as metadata in the first request), and the stream may not be seekable.
_SPOOL_IN_MEMORY = 1 << 20
_DELETE_BATCH = 1000
_DEFAULT_CONTENT_TYPE = "application/octet-stream"
# Probes live in a dot-segment, which object keys may not use, so they never collide with real keys.
_PROBE_DIR = ".check/"
_MISSING_CODES = frozenset({"404", "NoSuchKey", "NotFound"})
_NO_BUCKET_CODES = frozenset({"NoSuchBucket"})
# A client's mistake when completing a direct upload, not a storage failure.
_CLIENT_PART_CODES = frozenset({"InvalidPart", "InvalidPartOrder", "EntityTooSmall", "NoSuchUpload", "MalformedXML"})
_BUCKET_NAME = re.compile(r"[a-z0-9][a-z0-9.-]{1,61}[a-z0-9]")

# S3DownloadFailedError: the object changed between the parts of a multipart download.
_StorageError = (
    ClientError,
    BotoCoreError,
    S3UploadFailedError,
    S3TransferFailedError,
    S3DownloadFailedError,
    RetriesExceededError,
)


def make_client(
    endpoint_url: str | None,
    region: str | None = None,
    *,
    connect_timeout: float = DEFAULT_CONNECT_TIMEOUT,
    read_timeout: float = DEFAULT_READ_TIMEOUT,
    max_attempts: int = DEFAULT_MAX_ATTEMPTS,
) -> S3Client:
    """An S3 client with bounded retries and timeouts; credentials come from the usual boto3 chain."""
    config = Config(
        connect_timeout=connect_timeout,
        read_timeout=read_timeout,
        retries={"mode": "standard", "max_attempts": max_attempts},
        signature_version="s3v4",
        max_pool_connections=32,
        # S3-compatible servers (MinIO, moto, Ceph) are usually reached by host:port, where virtual-host
        # addressing (bucket.host) does not resolve.
        s3={"addressing_style": "path" if endpoint_url else "auto"},
    )
    # A session per client: boto3's default session is not safe to share across threads.
    session = boto3.session.Session()
    return session.client("s3", endpoint_url=endpoint_url, region_name=region, config=config)


def _error_code(exc: ClientError) -> str:
    return str(exc.response.get("Error", {}).get("Code", ""))


def _http_status(exc: ClientError) -> int:
    return int(exc.response.get("ResponseMetadata", {}).get("HTTPStatusCode", 0))


def _unwrap(exc: BaseException) -> BaseException:
    # boto3's transfer layer hides the client error: upload_file raises S3UploadFailedError from inside
    # an `except ClientError`, download_file raises RetriesExceededError(last_exception).
    if isinstance(exc, S3UploadFailedError) and isinstance(exc.__context__, ClientError):
        return exc.__context__
    last = getattr(exc, "last_exception", None)
    if isinstance(exc, RetriesExceededError) and isinstance(last, BaseException):
        return last
    return exc


def _translate(exc: BaseException, action: str, key: str) -> MediaError:
    cause = _unwrap(exc)
    if isinstance(cause, ClientError):
        code = _error_code(cause)
        status = _http_status(cause)
        if code in _MISSING_CODES:
            return StorageObjectMissing(detail=f"s3: {action} {key!r}: no such object")
        if code in _NO_BUCKET_CODES:
            return StorageUnavailable(detail=f"s3: {action} {key!r}: the bucket does not exist")
        return StorageUnavailable(detail=f"s3: {action} {key!r} failed: {code or status} ({cause})")
    return StorageUnavailable(detail=f"s3: {action} {key!r} failed: {cause}")


@contextlib.contextmanager
def _s3_errors(action: str, key: str) -> Iterator[None]:
    try:
        yield
    except ParamValidationError:
        raise
    except _StorageError as exc:
        raise _translate(exc, action, key) from exc


def _iter_body(body: StreamingBody, chunk_size: int, key: str) -> Iterator[bytes]:
    try:
        with _s3_errors("read", key):
            yield from body.iter_chunks(chunk_size)
    finally:
        body.close()


class S3Storage:
    """Objects at ``{prefix}{key}`` in ``bucket``.

    Every object carries its sha256 as user metadata (``x-amz-meta-sha256``), because S3's ETag is not a
    content hash for multipart uploads.
    """

    def __init__(
        self,
        bucket: str,
        prefix: str,
        *,
        endpoint_url: str | None,
        region: str | None = None,
        client: S3Client | None = None,
    ) -> None:
        if not _BUCKET_NAME.fullmatch(bucket):
            raise ValueError(f"invalid S3 bucket name {bucket!r}")
        prefix = prefix.strip("/")
        if prefix:
            validate_prefix(prefix, allow_empty=False)
            prefix += "/"
        self.bucket = bucket
        self.prefix = prefix
        self.endpoint_url = endpoint_url
        self.client: S3Client = client if client is not None else make_client(endpoint_url, region)
        self._transfer = TransferConfig(
            multipart_threshold=MULTIPART_THRESHOLD,
            multipart_chunksize=MULTIPART_CHUNKSIZE,
            max_concurrency=4,
        )

    def __repr__(self) -> str:
        return (
            f"S3Storage(bucket={self.bucket!r}, prefix={self.prefix!r}, endpoint_url={self.endpoint_url!r})"
        )

    def _full(self, key: str) -> str:
        return self.prefix + validate_key(key)

    # --- writing ----------------------------------------------------------------------------------------

    def _extra_args(self, content_type: str, sha256: str) -> dict[str, object]:
        if not content_type:
            raise ValueError("content_type must not be empty")
        return {"ContentType": content_type, "Metadata": {"sha256": sha256}}

    def put_file(self, key: str, path: Path, content_type: str) -> StoredObject:
        full = self._full(key)
        digest = hashlib.sha256()
        size = 0
        with open(path, "rb") as source:
            while chunk := source.read(_COPY_CHUNK):
                digest.update(chunk)
                size += len(chunk)
        sha256 = digest.hexdigest()
        extra = self._extra_args(content_type, sha256)
        with _s3_errors("upload", key):
            self.client.upload_file(str(path), self.bucket, full, ExtraArgs=extra, Config=self._transfer)
        return StoredObject(key=key, size=size, content_type=content_type, sha256=sha256)

    def put_stream(self, key: str, stream: BinaryIO, content_type: str) -> StoredObject:
        full = self._full(key)
        if not content_type:
            raise ValueError("content_type must not be empty")
        digest = hashlib.sha256()
        size = 0
        # Spooled to disk, then uploaded by name: from a file object boto3 reads whole parts into memory
        # (8 MB × its concurrency per upload), which twenty concurrent 100 MB uploads would feel.
        with tempfile.NamedTemporaryFile(prefix="s3-put-") as spool:
            while chunk := stream.read(_COPY_CHUNK):
                digest.update(chunk)
                size += len(chunk)
                spool.write(chunk)
            spool.flush()
            sha256 = digest.hexdigest()
            extra = self._extra_args(content_type, sha256)
            with _s3_errors("upload", key):
                self.client.upload_file(spool.name, self.bucket, full, ExtraArgs=extra, Config=self._transfer)
        return StoredObject(key=key, size=size, content_type=content_type, sha256=sha256)

    # --- reading ----------------------------------------------------------------------------------------

    def get_to_file(self, key: str, dest: Path) -> None:
        full = self._full(key)
        fd, tmp_name = tempfile.mkstemp(dir=dest.parent, prefix=f".{dest.name}.", suffix=".part")
        os.close(fd)
        tmp = Path(tmp_name)
        try:
            with _s3_errors("download", key):
                self.client.download_file(self.bucket, full, tmp_name, Config=self._transfer)
            os.replace(tmp, dest)
        except BaseException:
            with contextlib.suppress(OSError):
                tmp.unlink()
            raise

    def iter_bytes(self, key: str, chunk_size: int = 1 << 16) -> Iterator[bytes]:
        if chunk_size <= 0:
            raise ValueError("chunk_size must be positive")
        full = self._full(key)
        # The request is made before returning, so a missing object raises here, not at the first next().
        with _s3_errors("read", key):
            body = self.client.get_object(Bucket=self.bucket, Key=full)["Body"]
        return _iter_body(body, chunk_size, key)

    def stat(self, key: str) -> StoredObject | None:
        full = self._full(key)
        try:
            with _s3_errors("stat", key):
                head = self.client.head_object(Bucket=self.bucket, Key=full)
        except StorageObjectMissing:
            return None
        return StoredObject(
            key=key,
            size=int(head.get("ContentLength", 0)),
            content_type=head.get("ContentType") or _DEFAULT_CONTENT_TYPE,
            sha256=head.get("Metadata", {}).get("sha256"),
        )

    # --- deleting and listing ---------------------------------------------------------------------------

    def delete(self, key: str) -> None:
        full = self._full(key)
        with contextlib.suppress(StorageObjectMissing), _s3_errors("delete", key):
            self.client.delete_object(Bucket=self.bucket, Key=full)

    def delete_prefix(self, prefix: str) -> int:
        validate_prefix(prefix, allow_empty=False)
        deleted = 0
        paginator = self.client.get_paginator("list_objects_v2")
        with _s3_errors("delete prefix", prefix):
            # Deleting the page just listed is safe: the continuation token is positional, not a snapshot.
            for page in paginator.paginate(Bucket=self.bucket, Prefix=self.prefix + prefix):
                objects: list[ObjectIdentifierTypeDef] = [{"Key": o["Key"]} for o in page.get("Contents", [])]
                for start in range(0, len(objects), _DELETE_BATCH):
                    batch = objects[start : start + _DELETE_BATCH]
                    result = self.client.delete_objects(
                        Bucket=self.bucket, Delete={"Objects": batch, "Quiet": True}
                    )
                    errors = result.get("Errors", [])
                    deleted += len(batch) - len(errors)
                    if errors:
                        first = errors[0]
                        raise StorageUnavailable(
                            detail=f"s3: delete prefix {prefix!r}: {len(errors)} objects not deleted, "
                            f"e.g. {first.get('Key')!r}: {first.get('Code')} {first.get('Message')}"
                        )
        return deleted

    def list_keys(self, prefix: str) -> list[str]:
        validate_prefix(prefix, allow_empty=True)
        keys: list[str] = []
        paginator = self.client.get_paginator("list_objects_v2")
        with _s3_errors("list", prefix):
            for page in paginator.paginate(Bucket=self.bucket, Prefix=self.prefix + prefix):
                for obj in page.get("Contents", []):
                    key = obj["Key"][len(self.prefix) :]
                    if not key.startswith(_PROBE_DIR):
                        keys.append(key)
        return sorted(keys)

    # --- direct (multipart) uploads ----------------------------------------------------------------------

    def check_multipart(self) -> None:
        return None

    def create_multipart(self, key: str, content_type: str) -> str:
        full = self._full(key)
        with _s3_errors("create multipart upload", key):
            return self.client.create_multipart_upload(Bucket=self.bucket, Key=full, ContentType=content_type)[
                "UploadId"]

    def presign_part(self, key: str, upload_id: str, part_number: int, *, expires_in: int) -> str:
        full = self._full(key)
        if not 0 < expires_in <= MAX_URL_EXPIRES_IN:
            raise ValueError(f"expires_in must be between 1 and {MAX_URL_EXPIRES_IN} seconds")
        params = {"Bucket": self.bucket, "Key": full, "UploadId": upload_id, "PartNumber": part_number}
        with _s3_errors("sign a part URL for", key):
            return self.client.generate_presigned_url("upload_part", Params=params, ExpiresIn=expires_in)

    def complete_multipart(self, key: str, upload_id: str, parts: list[tuple[int, str]]) -> None:
        full = self._full(key)
        listed: list[CompletedPartTypeDef] = [{"PartNumber": n, "ETag": etag} for n, etag in parts]
        try:
            with _s3_errors("complete multipart upload", key):
                try:
                    self.client.complete_multipart_upload(
                        Bucket=self.bucket, Key=full, UploadId=upload_id, MultipartUpload={"Parts": listed})
                except ClientError as exc:
                    if _error_code(exc) in _CLIENT_PART_CODES:
                        raise InvalidRequest(f"The parts could not be joined ({_error_code(exc)}): every part "
                                             "but the last must be at least 5 MiB, listed in order with the ETag "
                                             "its PUT returned.", field="parts") from exc
                    raise
        except ParamValidationError as exc:
            raise InvalidRequest("The part list is malformed.", field="parts") from exc

    def abort_multipart(self, key: str, upload_id: str) -> None:
        full = self._full(key)
        try:
            self.client.abort_multipart_upload(Bucket=self.bucket, Key=full, UploadId=upload_id)
        except ClientError as exc:
            if _error_code(exc) not in {"NoSuchUpload", *_MISSING_CODES}:
                raise _translate(exc, "abort multipart upload", key) from exc
        except BotoCoreError as exc:
            raise _translate(exc, "abort multipart upload", key) from exc

    def read_range(self, key: str, start: int, length: int) -> bytes:
        full = self._full(key)
        if start < 0 or length <= 0:
            raise ValueError("read_range needs start >= 0 and length > 0")
        with _s3_errors("read", key):
            body = self.client.get_object(Bucket=self.bucket, Key=full, Range=f"bytes={start}-{start + length - 1}")[
                "Body"]
            try:
                return body.read()
            finally:
                body.close()

    def copy(self, src_key: str, dst_key: str, content_type: str, sha256: str) -> StoredObject:
        src, dst = self._full(src_key), self._full(dst_key)
        extra = self._extra_args(content_type, sha256) | {"MetadataDirective": "REPLACE"}
        with _s3_errors("copy", src_key):
            self.client.copy({"Bucket": self.bucket, "Key": src}, self.bucket, dst, ExtraArgs=extra,
                             Config=self._transfer)
        stored = self.stat(dst_key)
        if stored is None:
            raise StorageUnavailable(detail=f"s3: copy of {src_key!r} to {dst_key!r} left no object")
        return StoredObject(key=dst_key, size=stored.size, content_type=content_type, sha256=sha256)

    # --- URLs, health, setup ----------------------------------------------------------------------------

    def url(self, key: str, *, expires_in: int, content_type: str | None = None) -> str:
        full = self._full(key)
        if not 0 < expires_in <= MAX_URL_EXPIRES_IN:
            raise ValueError(f"expires_in must be between 1 and {MAX_URL_EXPIRES_IN} seconds")
        params: dict[str, str] = {"Bucket": self.bucket, "Key": full}
        if content_type:
            params["ResponseContentType"] = content_type
        with _s3_errors("sign a URL for", key):
            return self.client.generate_presigned_url("get_object", Params=params, ExpiresIn=expires_in)

    def check(self) -> None:
        probe = f"{self.prefix}{_PROBE_DIR}{uuid.uuid4().hex}"
        payload = os.urandom(16)
        try:
            self.client.head_bucket(Bucket=self.bucket)
            self.client.put_object(Bucket=self.bucket, Key=probe, Body=payload)
            echoed = self.client.get_object(Bucket=self.bucket, Key=probe)["Body"].read()
            self.client.delete_object(Bucket=self.bucket, Key=probe)
        except ParamValidationError:
            raise
        except _StorageError as exc:
            cause = _unwrap(exc)
            if isinstance(cause, ClientError) and _error_code(cause) in _MISSING_CODES | _NO_BUCKET_CODES:
                detail = f"s3: bucket {self.bucket!r} does not exist"
            else:
                detail = f"s3: check of bucket {self.bucket!r} failed: {cause}"
            raise StorageUnavailable(detail=detail) from exc
        if echoed != payload:
            raise StorageUnavailable(detail=f"s3: probe in bucket {self.bucket!r} read back differently")

    def ensure_bucket(self) -> None:
        """Create the bucket if it does not exist (development setups and tests)."""
        try:
            self.client.head_bucket(Bucket=self.bucket)
            return
        except ClientError as exc:
            if _error_code(exc) not in _MISSING_CODES | _NO_BUCKET_CODES:
                raise _translate(exc, "look up bucket", self.bucket) from exc
        except BotoCoreError as exc:
            raise _translate(exc, "look up bucket", self.bucket) from exc
        region = self.client.meta.region_name
        with _s3_errors("create bucket", self.bucket):
            try:
                if region and region not in ("us-east-1", "aws-global"):
                    self.client.create_bucket(
                        Bucket=self.bucket,
                        CreateBucketConfiguration={
                            "LocationConstraint": cast("BucketLocationConstraintType", region)
                        },
                    )
                else:
                    self.client.create_bucket(Bucket=self.bucket)
            except ClientError as exc:
                if _error_code(exc) != "BucketAlreadyOwnedByYou":
                    raise
