"""Fixtures for the storage contract: the same tests run against local disk and S3 (moto server)."""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest

from media_service.storage import LocalStorage, S3Storage, Storage

try:  # tests/ is a package and the repo root is importable
    from tests.support.s3server import run_moto_server
except ModuleNotFoundError:  # tests/ is a plain directory, which pytest puts on sys.path
    from support.s3server import run_moto_server  # type: ignore[no-redef]

SIGNING_SECRET = b"contract-test-signing-secret"
PUBLIC_BASE_URL = "http://media.test:8000"
S3_PREFIX = "tenant-a/files"


@pytest.fixture(scope="session")
def moto_endpoint() -> Iterator[str]:
    with run_moto_server() as endpoint:
        yield endpoint


@pytest.fixture
def aws_env(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    """Dummy credentials, and nothing from the developer's own AWS setup."""
    for name in (
        "AWS_PROFILE",
        "AWS_DEFAULT_PROFILE",
        "AWS_SESSION_TOKEN",
        "AWS_SECURITY_TOKEN",
        "AWS_REGION",
        "AWS_ENDPOINT_URL",
        "AWS_ENDPOINT_URL_S3",
        "AWS_CA_BUNDLE",
    ):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", "test")
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "test")
    monkeypatch.setenv("AWS_DEFAULT_REGION", "us-east-1")
    monkeypatch.setenv("AWS_CONFIG_FILE", str(tmp_path / "no-aws-config"))
    monkeypatch.setenv("AWS_SHARED_CREDENTIALS_FILE", str(tmp_path / "no-aws-credentials"))
    monkeypatch.setenv("AWS_EC2_METADATA_DISABLED", "true")


def new_s3_storage(endpoint: str, prefix: str = S3_PREFIX) -> S3Storage:
    storage = S3Storage(f"contract-{uuid.uuid4().hex[:20]}", prefix, endpoint_url=endpoint)
    storage.ensure_bucket()
    return storage


@pytest.fixture
def local_storage(tmp_path: Path) -> LocalStorage:
    return LocalStorage(tmp_path / "store", public_base_url=PUBLIC_BASE_URL, signing_secret=SIGNING_SECRET)


@pytest.fixture
def s3_storage(aws_env: None, moto_endpoint: str) -> S3Storage:
    return new_s3_storage(moto_endpoint)


@pytest.fixture(params=["local", pytest.param("s3", marks=pytest.mark.s3)])
def storage(request: pytest.FixtureRequest) -> Storage:
    # Looked up lazily so `-m "not s3"` runs the local half without starting moto.
    name = "local_storage" if request.param == "local" else "s3_storage"
    backend: Storage = request.getfixturevalue(name)
    return backend
