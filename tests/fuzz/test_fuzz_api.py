"""The API fuzzed against its own OpenAPI document (schemathesis, bounded): whatever a client sends, the
answer is never a 500 and every error is one of the documented codes in the documented shape."""

from __future__ import annotations

import atexit
import inspect
import shutil
import tempfile
from pathlib import Path
from typing import Any

import schemathesis
from hypothesis import HealthCheck
from hypothesis import settings as hsettings

import media_service.errors as errors_module
from media_service.api import create_app
from media_service.api.errors import STATUS_CODES
from media_service.config import Settings
from tests.support.packs import write_look_pack, write_music_pack, write_sticker_pack

AUTH = {"Authorization": "Bearer fuzz-key"}
KNOWN_CODES = {cls.code for _, cls in inspect.getmembers(errors_module, inspect.isclass)
               if issubclass(cls, errors_module.MediaError)} | set(STATUS_CODES.values())
EXAMPLES = 40  # per operation: enough to find shape and type holes, bounded for CI


def make_schema() -> Any:
    # Built at import: schemathesis parametrizes at collection time. The folder goes when the run ends.
    root = Path(tempfile.mkdtemp(prefix="fuzz-api-"))
    atexit.register(shutil.rmtree, root, ignore_errors=True)
    settings = Settings(data_dir=root / "data", api_keys="fuzz-key=fuzz",
                        filters_dirs=[write_look_pack(root / "f")], stickers_dirs=[write_sticker_pack(root / "s")],
                        music_dirs=[write_music_pack(root / "m")], limits={"max_upload_bytes": 2_000_000},
                        rate_limit_per_minute=1_000_000, upload_rate_per_minute=1_000_000)
    return schemathesis.openapi.from_asgi("/openapi.json", create_app(settings))


schema = make_schema()


@schema.parametrize()
@hsettings(max_examples=EXAMPLES, deadline=None, derandomize=True, database=None,
           suppress_health_check=list(HealthCheck))
def test_no_server_errors_and_only_known_codes(case: Any) -> None:
    response = case.call(headers=AUTH)
    assert response.status_code < 500, (case.method, case.path, response.text[:300])
    if response.status_code >= 400 and case.method.upper() != "HEAD":  # a HEAD answer has no body
        error = response.json()["error"]
        assert error["code"] in KNOWN_CODES, error
        assert isinstance(error["message"], str) and error["message"]


def test_fuzz_saw_the_upload() -> None:
    """The upload route is in the document the fuzzer reads (so the multipart body is fuzzed too)."""
    spec = create_app(Settings(data_dir=Path("/tmp/unused-fuzz"), api_keys="k=o")).openapi()
    assert "multipart/form-data" in spec["paths"]["/v1/media"]["post"]["requestBody"]["content"]
