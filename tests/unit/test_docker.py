"""docker/: there is no Docker engine here, so the compose file and the Dockerfile are checked for what can be
checked without one — every service and health check present, conditions that can be met, each worker on its
queue, every MEDIA_ variable a real setting, time limits that fit the visibility timeout, COPY sources that
exist and commands the CLI accepts."""

from __future__ import annotations

import dataclasses
import re
import shlex
from pathlib import Path
from typing import Any

import pytest
import yaml

from media_service.cli import build_parser
from media_service.config import Settings
from media_service.limits import Limits
from media_service.queue import TIME_LIMITS

REPO = Path(__file__).resolve().parents[2]
DOCKER = REPO / "docker"
COMPOSE = DOCKER / "compose.yaml"
APP_SERVICES = ("api", "worker-image", "worker-video")
ALL_SERVICES = {*APP_SERVICES, "redis", "postgres", "minio", "minio-init", "flower"}
_VAR = re.compile(r"\$\{([A-Za-z_][A-Za-z0-9_]*)(?::?-([^}]*))?\}")


def interpolate(value: str) -> str:
    """Compose's ${VAR:-default} with an empty environment: the defaults, as `docker compose config` would."""
    return _VAR.sub(lambda m: m.group(2) or "", value).replace("$$", "$")


@pytest.fixture(scope="module")
def compose() -> dict[str, Any]:
    data = yaml.safe_load(COMPOSE.read_text())
    assert isinstance(data, dict)
    return data


@pytest.fixture(scope="module")
def services(compose: dict[str, Any]) -> dict[str, dict[str, Any]]:
    return dict(compose["services"])


def seconds(duration: str | int) -> float:
    if isinstance(duration, int):
        return float(duration)
    total = 0.0
    for amount, unit in re.findall(r"(\d+(?:\.\d+)?)(ms|s|m|h)", duration):
        total += float(amount) * {"ms": 0.001, "s": 1, "m": 60, "h": 3600}[unit]
    return total


def test_every_service_is_there(services: dict[str, dict[str, Any]]) -> None:
    assert set(services) == ALL_SERVICES


def test_long_running_services_have_health_checks(services: dict[str, dict[str, Any]]) -> None:
    for name, service in services.items():
        if name == "minio-init":  # one shot: its condition is to have completed successfully
            assert "healthcheck" not in service and service.get("restart") == "no"
            continue
        check = service.get("healthcheck")
        assert check and check["test"][0] in ("CMD", "CMD-SHELL"), name
        assert check.get("retries", 0) >= 3 and seconds(check["interval"]) <= 30, name


def test_dependencies_can_be_met(services: dict[str, dict[str, Any]]) -> None:
    for name, service in services.items():
        for dep, spec in service.get("depends_on", {}).items():
            assert dep in services, (name, dep)
            condition = spec["condition"]
            assert condition in ("service_started", "service_healthy", "service_completed_successfully")
            if condition == "service_healthy":
                assert "healthcheck" in services[dep], (name, dep)
            if condition == "service_completed_successfully":
                assert services[dep].get("restart") == "no", (name, dep)
    for name in APP_SERVICES:
        deps = services[name]["depends_on"]
        assert deps["postgres"]["condition"] == deps["redis"]["condition"] == "service_healthy", name
        assert deps["minio-init"]["condition"] == "service_completed_successfully", name
    assert services["minio-init"]["depends_on"]["minio"]["condition"] == "service_healthy"
    assert services["flower"]["depends_on"]["redis"]["condition"] == "service_healthy"


def _command(service: dict[str, Any]) -> list[str]:
    command = service["command"]
    return [interpolate(a) for a in (shlex.split(command) if isinstance(command, str) else command)]


def test_app_services_share_one_image_and_the_cli_accepts_their_commands(services: dict[str, dict[str, Any]]
                                                                         ) -> None:
    images = {services[name]["image"] for name in APP_SERVICES}
    assert len(images) == 1
    for name in APP_SERVICES:
        build = services[name]["build"]
        assert (COMPOSE.parent / build["context"] / build["dockerfile"]).resolve() == (DOCKER / "Dockerfile")
        argv = _command(services[name])
        assert argv[0] == "media-service", name
        build_parser().parse_args(argv[1:])  # exits (SystemExit) on an option the CLI does not know


def test_each_worker_consumes_its_own_queue(services: dict[str, dict[str, Any]]) -> None:
    queues = {}
    for name in ("worker-image", "worker-video"):
        args = build_parser().parse_args(_command(services[name])[1:])
        assert args.command == "worker" and args.concurrency >= 1
        queues[name] = args.queues.split(",")
    assert queues == {"worker-image": ["image"], "worker-video": ["video"]}
    assert build_parser().parse_args(_command(services["api"])[1:]).command == "api"


def _setting_names() -> set[str]:
    names = {f"MEDIA_{field.upper()}" for field in Settings.model_fields}
    names |= {f"MEDIA_LIMITS__{field.name.upper()}" for field in dataclasses.fields(Limits)}
    return names


def test_every_media_variable_is_a_setting(services: dict[str, dict[str, Any]]) -> None:
    known = _setting_names()
    for name in APP_SERVICES:
        env = services[name]["environment"]
        assert isinstance(env, dict), name
        unknown = {k for k in env if k.startswith("MEDIA_")} - known
        assert not unknown, (name, unknown)
        # Wired to the servers of this file, not to the embedded defaults.
        assert interpolate(env["MEDIA_BROKER_URL"]).startswith("redis://redis:")
        assert interpolate(env["MEDIA_DATABASE_URL"]).startswith("postgresql://") and "@postgres:" in \
            env["MEDIA_DATABASE_URL"]
        assert interpolate(env["MEDIA_STORAGE_URL"]).startswith("s3://")
        assert interpolate(env["MEDIA_S3_ENDPOINT_URL"]) == "http://minio:9000"
        settings = Settings(**{k.removeprefix("MEDIA_").lower(): interpolate(str(v)) for k, v in env.items()
                               if k.startswith("MEDIA_") and "__" not in k})
        assert settings.log_format == "json"


def test_workers_serve_metrics_where_their_health_check_looks(services: dict[str, dict[str, Any]]) -> None:
    for name in ("worker-image", "worker-video"):
        env = services[name]["environment"]
        port = int(env["MEDIA_WORKER_METRICS_PORT"])
        assert env["MEDIA_WORKER_METRICS_HOST"] == "0.0.0.0"
        assert f"127.0.0.1:{port}/readyz" in " ".join(services[name]["healthcheck"]["test"])
    assert "127.0.0.1:8000/readyz" in " ".join(services["api"]["healthcheck"]["test"])


def test_time_limits_fit_the_visibility_timeout_and_the_grace_period(services: dict[str, dict[str, Any]]) -> None:
    """A job must end (hard time limit) before Redis hands it to another worker, and a deploy's SIGTERM must
    leave a running job the time to finish."""
    hard = {name: limit[1] for name, limit in TIME_LIMITS.items()}
    for name, task in (("worker-image", "media.process_image"), ("worker-video", "media.process_video")):
        env = services[name]["environment"]
        assert int(env["MEDIA_VISIBILITY_TIMEOUT"]) > hard[task], name
        assert seconds(services[name]["stop_grace_period"]) >= hard[task], name


def test_state_survives_a_restart(compose: dict[str, Any], services: dict[str, dict[str, Any]]) -> None:
    assert "--appendonly" in services["redis"]["command"]  # queued jobs survive a Redis restart
    for name, mount in (("redis", "/data"), ("postgres", "/var/lib/postgresql/data"), ("minio", "/data")):
        volume = next(v for v in services[name]["volumes"] if v.endswith(f":{mount}"))
        assert volume.split(":")[0] in compose["volumes"], name


def test_the_bucket_is_made_with_the_storage_urls_name(services: dict[str, dict[str, Any]]) -> None:
    bucket = interpolate(services["api"]["environment"]["MEDIA_STORAGE_URL"]).removeprefix("s3://").split("/")[0]
    assert f"local/{bucket}" in " ".join(services["minio-init"]["entrypoint"])


# --- the Dockerfile ---


def dockerfile_instructions() -> list[tuple[str, str]]:
    text = (DOCKER / "Dockerfile").read_text()
    joined = re.sub(r"\\\n", " ", text)
    out = []
    for line in joined.splitlines():
        line = line.strip()
        if line and not line.startswith("#"):
            keyword, _, rest = line.partition(" ")
            out.append((keyword.upper(), rest.strip()))
    return out


def test_dockerfile_base_tools_and_user() -> None:
    instructions = dockerfile_instructions()
    stages = [rest for keyword, rest in instructions if keyword == "FROM"]
    assert stages == ["node:20-bookworm-slim AS web", "python:3.11-slim-bookworm"]  # the page's bundle, the image
    runs = " ".join(rest for keyword, rest in instructions if keyword == "RUN")
    assert "apt-get install" in runs and " ffmpeg" in runs and "rm -rf /var/lib/apt/lists" in runs
    assert "pip install ." in runs
    users = [rest for keyword, rest in instructions if keyword == "USER"]
    assert users and users[-1] not in ("root", "0")


def test_dockerfile_copies_only_what_exists() -> None:
    copies = [rest.split() for keyword, rest in dockerfile_instructions() if keyword == "COPY"]
    assert copies
    # From the build context (not from an earlier stage: COPY --from=web takes the page's bundle).
    sources = [src for args in copies if not args[0].startswith("--from") for src in args[:-1]
               if not src.startswith("--")]
    assert ["--from=web", "/src/media_service/api/demo_static", "./media_service/api/demo_static"] in copies
    for src in sources:
        assert (REPO / src).exists(), src  # the build context is the repository root (compose: context ..)
    # Everything the package needs to install and run: the code, the packs it serves by default.
    for needed in ("pyproject.toml", "README.md", "media_service", "workers", "filters", "stickers", "music",
                   "web/package-lock.json", "web/src"):
        assert needed in sources, needed
    ignored = (DOCKER / "Dockerfile.dockerignore").read_text().split()
    assert not set(sources) & set(ignored)


def test_dockerfile_runs_media_service_and_its_settings_exist() -> None:
    instructions = dockerfile_instructions()
    cmd = [rest for keyword, rest in instructions if keyword in ("CMD", "ENTRYPOINT")]
    assert cmd and "media-service" in cmd[-1]
    env_names = {m.group(1) for keyword, rest in instructions if keyword == "ENV"
                 for m in re.finditer(r"([A-Z_][A-Z0-9_]*)=", rest)}
    media = {n for n in env_names if n.startswith("MEDIA_")}
    assert media and media <= _setting_names(), media - _setting_names()
    for folder in ("MEDIA_FILTERS_DIRS", "MEDIA_STICKERS_DIRS", "MEDIA_MUSIC_DIRS"):
        assert folder in media  # installed into site-packages, the package cannot find the repo's packs
    exposed = " ".join(rest for keyword, rest in instructions if keyword == "EXPOSE").split()
    assert "8000" in exposed and "9108" in exposed
