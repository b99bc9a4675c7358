"""media-service: api | worker | dev | process | doctor | packs | keys."""

from __future__ import annotations

import argparse
import json
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

from media_service.config import Settings, load_settings
from media_service.errors import MediaError, UnsupportedMediaType

DEV_KEY = "dev-key"
REQUIRED_FILTERS = ("lut3d", "zscale", "tonemap", "overlay", "loudnorm", "sidechaincompress", "amix", "aloop")
REQUIRED_ENCODERS = ("libx264", "aac", "libwebp_anim")


def cmd_api(settings: Settings, _args: argparse.Namespace) -> int:
    import uvicorn

    from media_service.api import create_app
    from media_service.logs import configure_logging

    configure_logging(settings.log_format, settings.log_level)
    # Our logging (JSON lines by default); the access line comes from the app, with its request id.
    uvicorn.run(create_app(settings), host=settings.host, port=settings.port, log_level=settings.log_level.lower(),
                proxy_headers=False, log_config=None, access_log=False)
    return 0


def cmd_worker(settings: Settings, args: argparse.Namespace) -> int:
    from media_service import multiproc

    # Before anything imports prometheus_client: the pool processes count into files in a fresh directory,
    # and the main process (MEDIA_WORKER_METRICS_PORT) merges them when scraped.
    metrics_dir = multiproc.prepare_dir()
    try:
        return _run_worker(settings, args)
    finally:
        multiproc.remove_dir(metrics_dir)


def _run_worker(settings: Settings, args: argparse.Namespace) -> int:
    from workers.app import app

    queues = args.queues or "image,video"
    concurrency = str(args.concurrency or settings.worker_concurrency)
    argv = ["worker", "--queues", queues, "--concurrency", concurrency, "--loglevel", args.loglevel,
            "--pool", "prefork", "--without-gossip", "--without-mingle"]
    if args.hostname:
        argv += ["--hostname", args.hostname]
    app.worker_main(argv)
    return 0


def cmd_dev(settings: Settings, _args: argparse.Namespace) -> int:
    """API and two workers (photos, videos) on embedded defaults, in one terminal; Ctrl-C stops them."""
    env = dict(os.environ)
    env.setdefault("MEDIA_LOG_FORMAT", "text")  # a terminal, not a log collector
    if not settings.api_keys:
        env["MEDIA_API_KEYS"] = f"{DEV_KEY}=dev"
    env.setdefault("MEDIA_DATA_DIR", str(settings.data_dir))
    settings.data_dir.mkdir(parents=True, exist_ok=True)
    key = env["MEDIA_API_KEYS"].split(",")[0].split("=")[0]
    base = settings.public_base_url
    # One worker per queue, so a photo never waits behind a video being rendered.
    workers = [subprocess.Popen([sys.executable, "-m", "media_service.cli", "worker", "--queues", queue,
                                 "--concurrency", "1", "--hostname", f"{queue}@%h"], env=env, start_new_session=True)
               for queue in ("image", "video")]
    api = subprocess.Popen([sys.executable, "-m", "media_service.cli", "api"], env=env, start_new_session=True)
    print(f"""
notes-media is starting: API on {base}, a photo and a video worker, data in {settings.data_dir}
Try it:
  curl -s -H 'Authorization: Bearer {key}' -F file=@photo.jpg \\
       -F 'recipe={{"aspect":"3:4","filter":{{"id":"starter/warm","intensity":0.8}},\
"stickers":[{{"id":"starter/heart","x":0.8,"y":0.2,"scale":0.25,"rotation":-12}}]}}' {base}/v1/media
  curl -s -H 'Authorization: Bearer {key}' {base}/v1/media/<id>
  curl -s {base}/v1/filters
Ctrl-C stops them.
""", flush=True)
    def stop(_signum: int, _frame: object) -> None:
        raise KeyboardInterrupt  # SIGTERM stops the children too, as Ctrl-C does (they are in their own sessions)

    signal.signal(signal.SIGTERM, stop)
    try:
        while api.poll() is None and all(w.poll() is None for w in workers):
            time.sleep(0.5)
    except KeyboardInterrupt:
        pass
    finally:
        for proc in (api, *workers):
            if proc.poll() is None:
                os.killpg(proc.pid, signal.SIGTERM)
        for proc in (api, *workers):
            try:
                proc.wait(timeout=15)
            except subprocess.TimeoutExpired:
                os.killpg(proc.pid, signal.SIGKILL)
    return 0 if api.returncode in (0, -signal.SIGTERM, None) else 1


def cmd_process(settings: Settings, args: argparse.Namespace) -> int:
    """Render locally, no server: the same pipeline a worker runs, for a photo or a video."""
    from media_service.imaging.sniff import SNIFF_BYTES, sniff
    from media_service.packs import load_registry
    from media_service.recipe import check_for_photo, check_ids, parse_recipe

    registry = load_registry(settings.filters_dirs, settings.stickers_dirs, settings.music_dirs)
    recipe = parse_recipe(Path(args.recipe).read_text() if args.recipe else None)
    check_ids(recipe, registry)
    source = Path(args.input)
    with source.open("rb") as f:
        sniffed = sniff(f.read(SNIFF_BYTES))
    if sniffed is None:
        raise UnsupportedMediaType()
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(prefix="media-process-") as tmp:
        work = Path(tmp)
        if sniffed.kind == "image":
            from media_service.pipeline.image import ImageJob, run_image_pipeline

            check_for_photo(recipe)
            job = run_image_pipeline(ImageJob(source=source, recipe=recipe, registry=registry, workdir=work,
                                              limits=settings.limits))
            assert job.facts is not None
            facts, renditions, placeholder, timings = job.facts.public(), job.renditions, job.placeholder, job.timings
        else:
            from media_service.pipeline.video import VideoJob, prepare_workdir, run_video_pipeline
            from media_service.probe import check_video_caps, probe_video

            video = probe_video(source)
            check_video_caps(video, settings.limits)
            prepare_workdir(source, work)
            vjob = run_video_pipeline(VideoJob(source=work / "source", facts=video, recipe=recipe, registry=registry,
                                               workdir=work, limits=settings.limits))
            facts, renditions, placeholder, timings = video.public(), vjob.renditions, vjob.placeholder, vjob.timings
            shutil.copytree(work / "hls", out / "hls", dirs_exist_ok=True)
        for r in renditions:
            shutil.copyfile(r.path, out / r.name)
    result = {"source": facts, "placeholder": placeholder, "renditions": [r.public() for r in renditions],
              "timings_ms": {k: round(v * 1000, 1) for k, v in timings.items()}}
    (out / "result.json").write_text(json.dumps(result, indent=2))
    print(json.dumps(result, indent=2))
    return 0


def cmd_doctor(settings: Settings, _args: argparse.Namespace) -> int:
    from media_service.db import Database
    from media_service.ffmpeg import run_tool
    from media_service.packs import load_registry
    from media_service.queue import JobQueue, make_celery
    from media_service.storage import open_storage

    def ffmpeg() -> str:
        out = run_tool(["ffmpeg", "-hide_banner", "-version"], timeout=10).stdout.decode().splitlines()[0]
        run_tool(["ffprobe", "-hide_banner", "-version"], timeout=10)
        filters = run_tool(["ffmpeg", "-hide_banner", "-filters"], timeout=10).stdout.decode()
        encoders = run_tool(["ffmpeg", "-hide_banner", "-encoders"], timeout=10).stdout.decode()
        missing = [name for name in REQUIRED_FILTERS if f" {name} " not in filters]
        missing += [name for name in REQUIRED_ENCODERS if f" {name} " not in encoders]
        if missing:
            raise ValueError(f"{out}: missing {', '.join(missing)}")
        return out

    def packs() -> str:
        reg = load_registry(settings.filters_dirs, settings.stickers_dirs, settings.music_dirs)
        return f"{len(reg.looks)} looks, {len(reg.stickers)} stickers, {len(reg.tracks)} tracks"

    def database() -> str:
        db = Database(settings.database_url)
        db.create_all()
        db.check()
        return db.engine.url.render_as_string(hide_password=True)

    def broker() -> str:
        JobQueue(make_celery(settings)).check()
        return settings.broker_url.split("@")[-1]

    def storage() -> str:
        open_storage(settings.storage_url, s3_endpoint_url=settings.s3_endpoint_url,
                     public_base_url=settings.public_base_url, signing_secret=settings.signing_key).check()
        return settings.storage_url

    failed = 0
    for name, check in (("ffmpeg", ffmpeg), ("packs", packs), ("database", database), ("broker", broker),
                        ("storage", storage)):
        try:
            print(f"ok    {name:9} {check()}")
        except (MediaError, OSError, ValueError) as exc:
            failed += 1
            print(f"FAIL  {name:9} {exc}" + (f" ({exc.detail})" if isinstance(exc, MediaError) and exc.detail
                                              else ""))
    return 1 if failed else 0


def _pack_store(settings: Settings) -> Any:
    from media_service.pack_store import PackStore
    from media_service.storage import open_storage

    return PackStore(open_storage(settings.storage_url, s3_endpoint_url=settings.s3_endpoint_url,
                                  public_base_url=settings.public_base_url, signing_secret=settings.signing_key))


def cmd_packs(settings: Settings, args: argparse.Namespace) -> int:
    from media_service.pack_store import PackRejected
    from media_service.packs.archive import build_zip
    from media_service.packs.loudness import STORE_NAME, store_document
    from media_service.packs.validate import validate

    if args.packs_command == "build":
        registry, problems = validate([Path(args.path)])
        for problem in problems:
            print(problem)
        if problems:
            return 1
        # Each track's measurement travels in the archive, so no service measures it again.
        measured = [(t.path.relative_to(t.pack.root.resolve()).as_posix(), t.path, t.loudness)
                    for t in registry.tracks.values()]
        generated = {STORE_NAME: store_document(measured)} if measured else {}
        print(build_zip(Path(args.path), Path(args.output), generated))
        return 0
    if args.packs_command in ("publish", "rollback"):
        store = _pack_store(settings)
        try:
            done = (store.publish(Path(args.archive)) if args.packs_command == "publish"
                    else store.rollback(args.pack_id, args.version))
        except PackRejected as exc:
            for problem in exc.problems:
                print(problem)
            return 1
        print(f"{done.kind} pack {done.pack_id} {done.version} is current; services pick it up within "
              f"{settings.packs_refresh_seconds:g} s")
        return 0
    if args.packs_command == "list":
        index = _pack_store(settings).read_index()
        for kind, packs in sorted(index.items()):
            for pack_id, entry in sorted(packs.items()):
                versions = ", ".join(f"[{v}]" if v == entry["current"] else v for v in entry["versions"])
                print(f"{kind:9} {pack_id:24} {versions}")
        if not index:
            print("no published packs (local folders only)")
        return 0
    if args.packs_command == "preview":
        return cmd_packs_preview(settings, args)
    if args.packs_command == "validate":
        paths = [Path(p) for p in args.paths] or [*settings.filters_dirs, *settings.stickers_dirs,
                                                    *settings.music_dirs]
        registry, problems = validate(paths)
        for track in registry.tracks.values():
            loud = track.loudness
            print(f"track {track.id}: {track.duration:.1f} s, {loud.integrated:.1f} LUFS, true peak "
                  f"{loud.true_peak:.1f} dBTP, LRA {loud.lra:.1f} LU")
        for problem in problems:
            where = f"{problem.path}:{problem.line}" if problem.line else problem.path
            print(f"{where}: {problem.problem}")
        print(f"{len(registry.looks)} looks, {len(registry.stickers)} stickers, {len(registry.tracks)} tracks; "
              f"{len(problems)} problem{'s' if len(problems) != 1 else ''}", file=sys.stderr)
        return 1 if problems else 0
    return 2


def cmd_packs_preview(settings: Settings, args: argparse.Namespace) -> int:
    """A contact sheet of the given packs: looks on photos and a video frame, stickers, waveforms."""
    from media_service.packs.preview import NoPhotos, build_sheet, paths_without_packs, write_sheet

    paths = [Path(p) for p in args.paths] or [*settings.filters_dirs, *settings.stickers_dirs, *settings.music_dirs]
    empty = paths_without_packs(paths)
    for path in empty:
        print(f"{path}: no pack here (a pack folder has a pack.toml)", file=sys.stderr)
    try:
        sheet = build_sheet(paths, Path(args.photos) if args.photos else None,
                            progress=lambda message: print(f"{message}…", file=sys.stderr, flush=True))
    except NoPhotos as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    for problem in sheet.problems:
        where = f"{problem.path}:{problem.line}" if problem.line else problem.path
        print(f"{where}: {problem.problem}", file=sys.stderr)
    if not sheet.items:
        print("nothing to preview: no valid look, sticker or track", file=sys.stderr)
        return 1
    out = write_sheet(sheet, Path(args.output))
    print(f"{out}: {len(sheet.registry.looks)} looks, {len(sheet.registry.stickers)} stickers, "
          f"{len(sheet.registry.tracks)} tracks, {len(sheet.problems)} problems; {sheet.image.width}×"
          f"{sheet.image.height} px")
    return 1 if empty else 0


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="media-service", description=__doc__)
    sub = parser.add_subparsers(dest="command", required=True)
    sub.add_parser("api", help="run the HTTP API")
    worker = sub.add_parser("worker", help="run a Celery worker")
    worker.add_argument("--queues", default=None, help="comma-separated: image,video")
    worker.add_argument("--concurrency", type=int, default=None)
    worker.add_argument("--hostname", default=None)
    worker.add_argument("--loglevel", default="INFO")
    sub.add_parser("dev", help="API and a worker on embedded defaults")
    process = sub.add_parser("process", help="render a photo or a video locally, no server")
    process.add_argument("input")
    process.add_argument("--recipe", default=None, help="a recipe JSON file")
    process.add_argument("--out", required=True, help="output directory")
    sub.add_parser("doctor", help="check ffmpeg, packs, database, broker and storage")
    packs = sub.add_parser("packs", help="designer tools for filter, sticker and music packs")
    packs_sub = packs.add_subparsers(dest="packs_command", required=True)
    validate = packs_sub.add_parser("validate", help="report every problem in the given packs (exit 1 if any)")
    validate.add_argument("paths", nargs="*", help="pack folders or folders of packs (default: the configured ones)")
    build = packs_sub.add_parser("build", help="validate a pack folder and write its .zip")
    build.add_argument("path")
    build.add_argument("-o", "--output", required=True)
    publish = packs_sub.add_parser("publish", help="validate and publish a pack .zip to storage")
    publish.add_argument("archive")
    preview = packs_sub.add_parser("preview", help="render a contact sheet (PNG) of looks, stickers and tracks")
    preview.add_argument("paths", nargs="*", help="pack folders or folders of packs (default: the configured ones)")
    preview.add_argument("-o", "--output", required=True, help="the PNG to write")
    preview.add_argument("--photos", default=None, help="a folder of your own photos (the first 3 by name) "
                                                        "instead of the bundled samples")
    packs_sub.add_parser("list", help="published packs and their versions ([current])")
    rollback = packs_sub.add_parser("rollback", help="make an earlier published version current")
    rollback.add_argument("pack_id")
    rollback.add_argument("version")
    keys = sub.add_parser("keys", help="API keys, kept hashed in the database")
    keys_sub = keys.add_subparsers(dest="keys_command", required=True)
    create = keys_sub.add_parser("create", help="make a key for an owner and print it (once)")
    create.add_argument("owner")
    create.add_argument("--name", default=None, help="a label, like the client app's name")
    listing = keys_sub.add_parser("list", help="keys (ids, owners, names, state), never the keys themselves")
    listing.add_argument("--owner", default=None)
    revoke = keys_sub.add_parser("revoke", help="revoke a key by its id")
    revoke.add_argument("key_id")
    hashed = keys_sub.add_parser("hash", help="print a key's hash for MEDIA_API_KEYS (sha256:<hex>=owner)")
    hashed.add_argument("key")
    hashed.add_argument("owner", nargs="?", default=None)
    return parser


def cmd_keys(settings: Settings, args: argparse.Namespace) -> int:
    """API keys kept hashed in the database: made here (the key is printed once), listed, revoked."""
    from media_service.api.services import KEY_CACHE_SECONDS
    from media_service.db import Database, KeyRepo, hash_key

    if args.keys_command == "hash":
        print(f"sha256:{hash_key(args.key)}={args.owner}" if args.owner else f"sha256:{hash_key(args.key)}")
        return 0
    db = Database(settings.database_url)
    db.create_all()
    keys = KeyRepo(db)
    if args.keys_command == "create":
        key, info = keys.create(args.owner, args.name or "")
        print(key)
        print(f"key id {info.id} for owner {info.owner}: shown once, store it now (only its hash is kept)",
              file=sys.stderr)
        return 0
    if args.keys_command == "list":
        for info in keys.list(args.owner):
            state = f"revoked {info.revoked_at:%Y-%m-%d %H:%M}" if info.revoked_at else "active"
            print(f"{info.id}  {info.owner:24} {info.name or '-':24} {info.created_at:%Y-%m-%d %H:%M}  {state}")
        return 0
    if args.keys_command == "revoke":
        if not keys.revoke(args.key_id):
            print(f"error: no active key with id {args.key_id}", file=sys.stderr)
            return 1
        print(f"revoked {args.key_id}; running APIs refuse it within {KEY_CACHE_SECONDS:g} s")
        return 0
    return 2


COMMANDS = {"api": cmd_api, "worker": cmd_worker, "dev": cmd_dev, "process": cmd_process,
            "doctor": cmd_doctor, "packs": cmd_packs, "keys": cmd_keys}


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    settings = load_settings()
    try:
        return COMMANDS[args.command](settings, args)
    except MediaError as exc:
        print(f"error: {exc.code}: {exc.message}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())
