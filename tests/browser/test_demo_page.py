"""GET /demo and its bundle, without a browser: served, cached by content hash, self-contained (no URL of another
site), safe paths only, a clear 503 when the bundle was not built, the development key only in development."""

from __future__ import annotations

import re
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from fastapi.testclient import TestClient

from media_service import cli
from media_service.api import create_app, routes_demo
from media_service.config import Settings

# Identifiers inside hls.js that look like URLs but are never fetched: scheme ids it compares with the ones
# in a stream (an `emsg` box's scheme_id_uri). Anything else with a host is a resource from elsewhere.
NOT_FETCHED = {"https://aomedia.org/emsg/ID3"}
URL = re.compile(r"""https?://[^\s"'`)<>\\]+""", re.IGNORECASE)


def settings(tmp_path: Path, api_keys: str = "alice-key=alice", **extra: Any) -> Settings:
    return Settings(data_dir=tmp_path / "data", api_keys=api_keys, filters_dirs=[], stickers_dirs=[], music_dirs=[],
                    **extra)


@pytest.fixture()
def client(tmp_path: Path) -> Iterator[TestClient]:
    with TestClient(create_app(settings(tmp_path))) as c:
        yield c


@pytest.fixture()
def built() -> None:
    assert (routes_demo.STATIC_DIR / "demo.js").is_file(), "the demo page is not built: run scripts/build-web"


def assets(page: str) -> dict[str, str]:
    """The bundle's URLs in the page, by kind: /demo/assets/demo.js?v=<content hash>."""
    return {kind: url for url, kind in re.findall(r'"(/demo/assets/demo\.(js|css)\?v=[0-9a-f]{16})"', page)}


def test_page_and_bundle_are_served_with_long_cache(client: TestClient, built: None) -> None:
    r = client.get("/demo")
    assert r.status_code == 200 and r.headers["content-type"].startswith("text/html")
    csp = r.headers["content-security-policy"]
    assert "script-src 'self'" in csp and "style-src 'self'" in csp and "object-src 'none'" in csp
    assert r.headers["cache-control"] == "no-cache"
    page = r.text
    for testid in ("api-key", "file", "looks", "intensity", "sticker-tray", "stage", "music", "upload", "progress",
                   "results"):
        assert f'data-testid="{testid}"' in page, testid
    urls = assets(page)
    assert set(urls) == {"js", "css"}
    js = client.get(urls["js"])
    assert js.status_code == 200 and js.headers["content-type"].startswith("text/javascript")
    assert js.headers["cache-control"] == "public, max-age=31536000, immutable"
    assert "MediaSource" in js.text and "application/vnd.apple.mpegurl" in js.text  # hls.js is in the bundle
    css = client.get(urls["css"])
    assert css.status_code == 200 and css.headers["content-type"].startswith("text/css")
    # Without the current version the asset is served but revalidated.
    assert client.get("/demo/assets/demo.js?v=0000").headers["cache-control"] == "no-cache"
    assert client.head(urls["js"]).status_code == 200


def test_nothing_comes_from_another_site(client: TestClient, built: None) -> None:
    page = client.get("/demo").text
    texts = {"page": page, **{kind: client.get(url).text for kind, url in assets(page).items()}}
    for name, text in texts.items():
        found = {m.group(0) for m in URL.finditer(text)} - NOT_FETCHED
        assert not found, f"{name} refers to other sites: {sorted(found)[:5]}"
    assert not re.search(r"<(?:script|link|img|iframe)[^>]+(?:src|href)=\"(?:https?:)?//", page)


@pytest.mark.parametrize("name", ["demo.html", ".gitignore", "hls.js.LICENSE.txt", "..%2Fapp.py", "%2e%2e%2fapp.py",
                                  "app.py", "missing.js", "DEMO.JS", "demo.js%00.css", "demo.js%0A"])
def test_only_bundle_files_are_served(client: TestClient, built: None, name: str) -> None:
    r = client.get(f"/demo/assets/{name}")
    assert r.status_code == 404
    assert r.json()["error"]["code"] == "not_found"
    assert client.get("/demo/assets/../app.py").status_code == 404


def test_not_built_is_a_clear_503(client: TestClient, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(routes_demo, "STATIC_DIR", tmp_path / "nothing")
    r = client.get("/demo")
    assert r.status_code == 503
    error = r.json()["error"]
    assert error["code"] == "demo_not_built" and "scripts/build-web" in error["message"]


def test_not_in_the_openapi_schema(client: TestClient) -> None:
    assert not [path for path in client.get("/openapi.json").json()["paths"] if path.startswith("/demo")]


def test_the_development_key_is_filled_in_only_in_development(tmp_path: Path, built: None) -> None:
    assert routes_demo.DEV_KEY == cli.DEV_KEY

    def meta(api_keys: str) -> str:
        with TestClient(create_app(settings(tmp_path, api_keys))) as c:
            found = re.search(r'<meta name="demo-dev-key" content="([^"]*)">', c.get("/demo").text)
            assert found is not None
            return found.group(1)

    assert meta(api_keys="dev-key=dev") == "dev-key"  # what `media-service dev` runs
    assert meta(api_keys="alice-key=alice") == ""  # another key: nothing to fill in, and none shown
    keys = "dev-key=dev"
    for production in ({"storage_url": "s3://bucket/prefix"}, {"database_url": "postgresql://db.example/media"}):
        assert routes_demo.dev_key(settings(tmp_path, api_keys=keys, **production)) == ""
