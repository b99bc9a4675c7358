#!/usr/bin/env python3
"""Rebuild the starter music pack: ``music/starter/pack.toml`` and ``music/starter/<id>.ogg``.

A MAINTAINER tool, never needed by the service: the pack it makes is committed to the repository, and the
service only reads those files. Every track is an excerpt of a freely licensed piece of game music shipped
in a package of Debian's *main* archive (bookworm). The table ``TRACKS`` below says, for each track,
which package and file it comes from (with the file's SHA-256, so a different upstream file is refused
instead of being cut at the wrong places), where it is cut, where it loops, its titles, artist and licence
(both as stated by the package's ``/usr/share/doc/<package>/copyright`` or, where that file only names
the project, by the credits the package ships next to the music).

For each track the script

1. extracts the ``.deb`` with ``dpkg-deb -x`` and checks the source file's SHA-256;
2. decodes it with ffmpeg (tracker modules are rendered by ffmpeg's libopenmpt demuxer; a file whose
   Ogg pages carry a negative granule position, which ffmpeg 5.1's demuxer rejects -- three of the
   HyperRogue files, one of them used here -- is decoded by ``oggdec`` from vorbis-tools and piped to
   ffmpeg), cuts ``start``–``end``
   sample-accurately, resamples to 48 kHz stereo (soxr), fades in over 10 ms and out over ``fade_out``;
3. measures the excerpt's integrated loudness and true peak (EBU R128) and applies one static gain that
   brings it to -16 LUFS, or less where that would take the true peak above -1 dBTP;
4. encodes Ogg Vorbis ``-q:a 4`` with ``-map_metadata -1`` and the bit-exact flags, so the only tags are
   the title, artist, licence, a comment and an encoder tag chosen here (ffmpeg always writes an encoder
   tag; naming it ourselves keeps its version out of the file).

It also copies each source package's Debian copyright file to ``licenses/debian/<package>.copyright``
and each tracker module it renders (the GPL's "preferred form for modification" of that track, and
small) to ``licenses/sources/``, and writes ``pack.toml``. The hand-written ``README.md`` and
``LICENSES.md`` are left alone.

Usage::

    mkdir -p /tmp/debs && cd /tmp/debs && apt-get download openclonk-data=8.1-3 funnyboat=1.5-11 \\
        lincity-ng-data=2.9~git20150314-5 frozen-bubble-data=2.212-11 extremetuxracer-data=0.8.2-1 \\
        pingus-data=0.7.6-5.1 hyperrogue-music=12.0q-1
    python scripts/make_starter_music.py --debs /tmp/debs                # writes into music/starter/
    python scripts/make_starter_music.py --debs /tmp/debs --out /tmp/x   # writes into /tmp/x

Needs ``dpkg-deb``, ``ffmpeg``/``ffprobe`` (built with libvorbis, libsoxr and libopenmpt, as Debian's
is) and ``oggdec`` (``apt-get install vorbis-tools``). Debian bookworm's ffmpeg 5.1 and libvorbis 1.3.7
give byte-identical output from run to run.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import re
import shutil
import subprocess
import sys
import tempfile
from dataclasses import dataclass
from pathlib import Path

SCRIPT_NAME = "scripts/make_starter_music.py"
DEFAULT_OUT = Path(__file__).resolve().parent.parent / "music" / "starter"

SAMPLE_RATE = 48000
VORBIS_QUALITY = "4"
TARGET_LUFS = -16.0  # integrated loudness every track is brought to (when its peaks allow)
PEAK_CEILING_DBTP = -1.0  # true-peak ceiling before encoding; the gain is lowered to respect it
FADE_IN = 0.01  # seconds; only removes a click where a cut starts mid-waveform

PACK = {
    "id": "starter",
    "version": "1.0.0",
    "title": {"en": "Starter music", "zh": "基础配乐"},
    "author": "notes-media (tracks by their artists)",
    "description": (
        "Background music for video notes: excerpts of freely licensed game music from Debian main. "
        "Credits and licences in README.md and LICENSES.md."
    ),
}


@dataclass(frozen=True)
class Track:
    id: str
    title_en: str
    title_zh: str
    artist: str
    license: str  # SPDX id of the source file, per the package's copyright file
    package: str
    version: str
    path: str  # absolute path of the source file inside the package
    sha256: str
    original_title: str
    start: float  # cut, in seconds of the source
    end: float
    fade_out: float  # seconds of fade at the end of the excerpt (0 = none)
    loop: tuple[float, float] | None  # in seconds of the SOURCE; written relative to the excerpt
    tags: tuple[str, ...]
    decoder: str = "ffmpeg"  # or "oggdec"


TRACKS: tuple[Track, ...] = (
    Track(
        id="island-dreams",
        title_en="Island Dreams",
        title_zh="海岛之梦",
        artist="Martin Strohmeier (K-Pone)",
        license="CC-BY-3.0",
        package="openclonk-data",
        version="8.1-3",
        path="/usr/share/games/openclonk/Music.ocg/IslandDreams.ogg",
        sha256="fdfb528615fbd17b857473cfba721808c2627131014fc5d18ec124a36953a1c8",
        original_title="Island Dreams",
        # 90 BPM. From the breakdown (bass out) through the full chorus to the next breakdown: the
        # song repeats this 24-bar cycle, so the loop is seamless musically.
        start=85.598,
        end=152.618,
        fade_out=1.5,
        loop=(85.618, 149.618),
        tags=("chill", "travel", "beach", "reggae"),
    ),
    Track(
        id="crushed-ice-cocktail",
        title_en="Crushed Ice Cocktail",
        title_zh="碎冰鸡尾酒",
        artist="Martin Strohmeier (K-Pone)",
        license="CC-BY-3.0",
        package="openclonk-data",
        version="8.1-3",
        path="/usr/share/games/openclonk/Music.ocg/@CrushedIceCocktail.ogg",
        sha256="d30b9647ba2c35ab8ca8c106f0801790377f2a49774e2690577f604d70bb0244",
        original_title="Crushed Ice Cocktail",
        # 122 BPM house. 40 bars: groove, break, build, full section, back into the groove.
        start=24.024,
        end=105.731,
        fade_out=1.5,
        loop=(24.044, 102.731),
        tags=("upbeat", "party", "food", "summer"),
    ),
    Track(
        id="funny-boat",
        title_en="Trip on the Funny Boat",
        title_zh="欢乐小船",
        artist='Joona "JDruid" Karjalainen',
        license="MIT",
        package="funnyboat",
        version="1.5-11",
        path="/usr/share/games/funnyboat/data/JDruid-Trip_on_the_Funny_Boat.ogg",
        sha256="1db157e12fa37b54a5add98a9f2ad6c906806e898fac53c29a96cd48a09c9278",
        original_title="Trip on the Funny Boat",
        # ~130.7 BPM. The song literally repeats itself 80.784 s later (waveform correlation 0.996).
        start=34.335,
        end=118.139,
        fade_out=1.5,
        loop=(34.355, 115.139),
        tags=("playful", "upbeat", "fun", "kids"),
    ),
    Track(
        id="city-blues",
        title_en="City Blues",
        title_zh="城市蓝调",
        artist="Robert van Herk",
        license="GPL-2.0-or-later",
        package="lincity-ng-data",
        version="2.9~git20150314-5",
        path="/usr/share/games/lincity-ng/music/default/02 - Robert van Herk - City Blues.ogg",
        sha256="16760321bc51b92b6bc07859b470002aaae879cb89317887718ab5ac5570599b",
        original_title="City Blues",
        # Starts at the first note (the file opens with 2.5 s of silence); loops one blues chorus.
        start=2.5,
        end=76.655,
        fade_out=1.5,
        loop=(15.358, 73.655),
        tags=("chill", "cafe", "blues", "city"),
    ),
    Track(
        id="frozen-bubble",
        title_en="Frozen Bubble",
        title_zh="冰冻泡泡",
        artist="Matthias Le Bidan (The Frozen-Bubble Team)",
        license="GPL-2.0-only",
        package="frozen-bubble-data",
        version="2.212-11",
        path="/usr/share/games/frozen-bubble/snd/introzik.ogg",
        sha256="7e8ac71c4d79f4625404ef4f9564ae70ec91056dd77f1a5cd10b908147aef7e0",
        original_title="introzik (Frozen-Bubble title music)",
        # 92 BPM (184 felt). From the very start; the tune repeats every 16 bars (41.74 s).
        start=0.0,
        end=94.572,
        fade_out=1.5,
        loop=(49.833, 91.572),
        tags=("upbeat", "cute", "bouncy", "game"),
    ),
    Track(
        id="calm-race",
        title_en="Calm Race",
        title_zh="悠然滑行",
        artist="Karl Schroeder",
        license="GPL-2.0-or-later",
        package="extremetuxracer-data",
        version="0.8.2-1",
        path="/usr/share/games/etr/music/calmrace-ks.ogg",
        sha256="511a8f8b453ea952ea0145104ad2ce1b4603b9155748ee57d165208297da5906",
        original_title="calmrace",
        # 87.5 BPM. One 22-bar cycle that the piece repeats (waveform correlation 0.99 at the seam).
        start=39.69,
        end=103.053,
        fade_out=1.5,
        loop=(39.71, 100.053),
        tags=("calm", "relaxed", "outdoor", "sport"),
    ),
    Track(
        id="little-penguins",
        title_en="Little Penguins",
        title_zh="小企鹅",
        artist="Joseph Toscano",
        license="GPL-2.0-or-later",
        package="pingus-data",
        version="0.7.6-5.1",
        path="/usr/share/games/pingus/data/music/pingus-4.it",
        sha256="a1386db1dbe9a7c95675b87b5e1579bcad67d76efd58da062c6a07c68a4b4437",
        original_title="pingus - level (snow)",
        # Impulse Tracker module rendered by libopenmpt at 48 kHz, 100 BPM, from its start. The last
        # 15 bars repeat exactly. (pingus-3.it was not used: its instruments have random variation,
        # which libopenmpt seeds randomly, so no two renders are alike.)
        start=0.0,
        end=91.154,
        fade_out=1.5,
        loop=(52.154, 88.154),
        tags=("cute", "playful", "kids", "winter"),
    ),
    Track(
        id="caribbean",
        title_en="Caribbean",
        title_zh="加勒比海",
        artist="Will Savino",
        license="CC-BY-SA-3.0",
        package="hyperrogue-music",
        version="12.0q-1",
        path="/usr/share/hyperrogue/music/hr-savino-caribbean.ogg",
        sha256="42ea04db86f2d6396a4225e6ce6e597a58804553410e3a2dda07a9cdc6cae4f2",
        original_title="Caribbean",
        # The whole piece; it stops mid-note (it was made to be looped by the game with a click), so
        # it is faded instead and has no loop.
        start=0.0,
        end=62.307,
        fade_out=1.5,
        loop=None,
        tags=("travel", "tropical", "summer", "upbeat"),
        decoder="oggdec",
    ),
    Track(
        id="mountain",
        title_en="Mountain",
        title_zh="山间",
        artist="Lincoln Domina",
        license="CC-BY-SA-3.0",
        package="hyperrogue-music",
        version="12.0q-1",
        path="/usr/share/hyperrogue/music/hr-domina-mountain.ogg",
        sha256="edbb2320a712317bd08a83fc287aad9d475ae9d2a91375493c76b77dd9125d1f",
        original_title="Mountain",
        # The whole piece, faded at its (abrupt) end; no loop.
        start=0.0,
        end=87.456,
        fade_out=1.5,
        loop=None,
        tags=("travel", "scenic", "cinematic", "nature"),
    ),
    Track(
        id="lucid-dream",
        title_en="Lucid Dream",
        title_zh="清醒梦",
        artist="Martin Strohmeier (K-Pone)",
        license="CC-BY-3.0",
        package="openclonk-data",
        version="8.1-3",
        path="/usr/share/games/openclonk/Music.ocg/LucidDream.ogg",
        sha256="7ff7af360774feed22b65ad8ca17f90055817d6b4a1ddd0680a112255d165902",
        original_title="Lucid Dream",
        # 83 BPM ambient. From the start; loops a 12-bar stretch of the first section.
        start=0.0,
        end=63.665,
        fade_out=1.5,
        loop=(25.966, 60.665),
        tags=("ambient", "night", "calm", "study"),
    ),
)


# --------------------------------------------------------------------------------------------------
# Helpers
# --------------------------------------------------------------------------------------------------


def run(argv: list[str], **kwargs: object) -> subprocess.CompletedProcess[str]:
    return subprocess.run(argv, check=True, capture_output=True, text=True, **kwargs)  # type: ignore[call-overload]


def deb_field(deb: Path, field: str) -> str:
    return run(["dpkg-deb", "--field", str(deb), field]).stdout.strip()


def find_deb(debs: Path, package: str, version: str) -> Path:
    found: list[str] = []
    for deb in sorted(debs.glob(f"{package}_*.deb")):
        if deb_field(deb, "Package") != package:
            continue
        v = deb_field(deb, "Version")
        if v == version:
            return deb
        found.append(v)
    have = f" (found version {', '.join(found)})" if found else ""
    raise SystemExit(f"{debs}: no {package} {version} .deb{have}; run: apt-get download {package}={version}")


def sha256(path: Path) -> str:
    h = hashlib.sha256()
    with path.open("rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            h.update(block)
    return h.hexdigest()


def fmt_time(t: float) -> str:
    return f"{t:.3f}".rstrip("0").rstrip(".") if t else "0"


def decode_excerpt(track: Track, src: Path, wav: Path) -> None:
    """Cut, resample and fade the source into a 32-bit float 48 kHz stereo WAV."""
    length = track.end - track.start
    filters = [
        f"atrim=start={track.start:.6f}:end={track.end:.6f}",
        "asetpts=PTS-STARTPTS",
        f"aresample={SAMPLE_RATE}:resampler=soxr:precision=28",
        "aformat=sample_fmts=flt:channel_layouts=stereo",
        f"afade=t=in:st=0:d={FADE_IN}",
    ]
    if track.fade_out > 0:
        filters.append(f"afade=t=out:st={length - track.fade_out:.6f}:d={track.fade_out}")
    out_args = ["-map", "0:a:0", "-af", ",".join(filters), "-c:a", "pcm_f32le", "-f", "wav", str(wav)]
    if track.decoder == "oggdec":
        # oggdec writes a 16-bit WAV to stdout; ffmpeg reads it from a pipe.
        with subprocess.Popen(["oggdec", "--quiet", "--output", "-", str(src)], stdout=subprocess.PIPE) as dec:
            subprocess.run(
                ["ffmpeg", "-nostdin", "-v", "error", "-y", "-f", "wav", "-i", "pipe:0", *out_args],
                check=True,
                stdin=dec.stdout,
            )
        if dec.returncode != 0:
            raise SystemExit(f"oggdec failed on {src}")
    elif track.decoder == "ffmpeg":
        run(["ffmpeg", "-nostdin", "-v", "error", "-y", "-i", str(src), *out_args])
    else:
        raise SystemExit(f"{track.id}: unknown decoder {track.decoder!r}")
    got = probe_duration(wav)
    if abs(got - length) > 0.002:
        raise SystemExit(f"{track.id}: excerpt is {got:.3f} s, expected {length:.3f} s (is the source shorter?)")


def probe_duration(path: Path) -> float:
    out = run(["ffprobe", "-v", "error", "-show_entries", "format=duration", "-of", "json", str(path)]).stdout
    return float(json.loads(out)["format"]["duration"])


def loudness(path: Path) -> tuple[float, float]:
    """(integrated loudness in LUFS, true peak in dBTP) of a file, from ffmpeg's ebur128 filter."""
    err = run(
        [
            "ffmpeg",
            "-nostdin",
            "-hide_banner",
            "-nostats",
            "-i",
            str(path),
            "-af",
            "ebur128=peak=true",
            "-f",
            "null",
            "-",
        ]
    ).stderr
    summary = err[err.rindex("Summary:") :]
    i = re.search(r"I:\s+(-?[\d.]+|-inf) LUFS", summary)
    peak = re.search(r"Peak:\s+(-?[\d.]+|-inf) dBFS", summary)
    if not i or not peak:
        raise SystemExit(f"cannot read the ebur128 summary of {path}:\n{summary}")
    return float(i.group(1)), float(peak.group(1))


def gain_for(lufs: float, peak: float) -> float:
    gain = min(TARGET_LUFS - lufs, PEAK_CEILING_DBTP - peak)
    return round(gain, 1)


def encode(track: Track, wav: Path, ogg: Path, gain_db: float) -> None:
    comment = (
        f'Excerpt of "{track.original_title}" from Debian package {track.package} {track.version}; '
        "see music/starter/README.md"
    )
    run(
        [
            "ffmpeg", "-nostdin", "-v", "error", "-y",
            "-i", str(wav),
            "-map", "0:a:0",
            "-map_metadata", "-1",
            "-af", f"volume={gain_db:.1f}dB",
            "-ar", str(SAMPLE_RATE), "-ac", "2",
            "-c:a", "libvorbis", "-q:a", VORBIS_QUALITY,
            "-fflags", "+bitexact", "-flags:a", "+bitexact",
            "-metadata", f"title={track.title_en}",
            "-metadata", f"artist={track.artist}",
            "-metadata", f"license={track.license}",
            "-metadata", f"comment={comment}",
            "-metadata:s:a:0", f"encoder=libvorbis q{VORBIS_QUALITY} via {SCRIPT_NAME}",
            "-f", "ogg", str(ogg),
        ]
    )  # fmt: skip


def is_module(track: Track) -> bool:
    return track.path.endswith((".it", ".xm", ".s3m", ".mod"))


def source_text(track: Track, gain_db: float) -> str:
    parts = [f"Debian package {track.package} {track.version}, {track.path}"]
    whole = track.start == 0 and track.loop is None
    if whole:
        parts.append(f"whole piece ({fmt_time(track.end)} s)")
    else:
        parts.append(f"cut from {fmt_time(track.start)} s to {fmt_time(track.end)} s")
    if track.fade_out:
        parts.append(f"{fmt_time(track.fade_out)} s fade-out")
    if track.decoder == "oggdec":
        parts.append("decoded with oggdec")
    elif is_module(track):
        parts.append("rendered with libopenmpt")
    parts.append(f"gain {gain_db:+.1f} dB")
    parts.append("resampled to 48 kHz, Ogg Vorbis q4")
    return "; ".join(parts)


def toml_str(s: str) -> str:
    return json.dumps(s, ensure_ascii=False)


def manifest_text(tracks: list[Track], gains: dict[str, float]) -> str:
    licenses = " AND ".join(sorted({t.license for t in tracks}))
    title = PACK["title"]
    assert isinstance(title, dict)
    lines = [
        f"# Generated by {SCRIPT_NAME} from Debian packages; do not edit by hand, edit the script and re-run it.",
        "[pack]",
        f"id = {toml_str(str(PACK['id']))}",
        f"version = {toml_str(str(PACK['version']))}",
        f"title = {{ en = {toml_str(title['en'])}, zh = {toml_str(title['zh'])} }}",
        f"author = {toml_str(str(PACK['author']))}",
        f"license = {toml_str(licenses)}",
        f"description = {toml_str(str(PACK['description']))}",
    ]
    for t in tracks:
        lines += [
            "",
            "[[tracks]]",
            f"id = {toml_str(t.id)}",
            f"title = {{ en = {toml_str(t.title_en)}, zh = {toml_str(t.title_zh)} }}",
            f"artist = {toml_str(t.artist)}",
            f"file = {toml_str(t.id + '.ogg')}",
            f"license = {toml_str(t.license)}",
            f"source = {toml_str(source_text(t, gains[t.id]))}",
        ]
        if t.loop is not None:
            a, b = (round(x - t.start, 3) for x in t.loop)
            lines.append(f"loop = {{ start = {a:.3f}, end = {b:.3f} }}")
        lines.append("tags = [" + ", ".join(toml_str(tag) for tag in t.tags) + "]")
    return "\n".join(lines) + "\n"


def check_table(tracks: tuple[Track, ...]) -> None:
    ids = [t.id for t in tracks]
    if len(set(ids)) != len(ids):
        raise SystemExit("duplicate track ids")
    for t in tracks:
        length = t.end - t.start
        if not 45 <= length <= 120:
            raise SystemExit(f"{t.id}: excerpt is {length:.3f} s; keep it within 45–120 s")
        if t.loop is not None and not (t.start <= t.loop[0] < t.loop[1] <= t.end - t.fade_out):
            raise SystemExit(f"{t.id}: the loop must lie inside the excerpt, before the fade-out")


def write_if_changed(path: Path, data: bytes) -> None:
    if not path.exists() or path.read_bytes() != data:
        path.write_bytes(data)


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--debs", type=Path, required=True, help="folder holding the .deb files (apt-get download)")
    parser.add_argument("--out", type=Path, default=DEFAULT_OUT, help="pack folder (default: %(default)s)")
    args = parser.parse_args(argv)
    debs: Path = args.debs
    out: Path = args.out
    for tool in ("dpkg-deb", "ffmpeg", "ffprobe", "oggdec"):
        if shutil.which(tool) is None:
            raise SystemExit(f"{tool} not found (apt-get install dpkg ffmpeg vorbis-tools)")
    check_table(TRACKS)
    out.mkdir(parents=True, exist_ok=True)
    (out / "licenses" / "debian").mkdir(parents=True, exist_ok=True)
    (out / "licenses" / "sources").mkdir(parents=True, exist_ok=True)
    gains: dict[str, float] = {}
    report: list[tuple[str, float, float, float, float]] = []
    with tempfile.TemporaryDirectory(prefix="starter-music-") as tmp_name:
        tmp = Path(tmp_name)
        extracted: dict[str, Path] = {}
        for track in TRACKS:
            root = extracted.get(track.package)
            if root is None:
                deb = find_deb(debs, track.package, track.version)
                root = tmp / track.package
                run(["dpkg-deb", "-x", str(deb), str(root)])
                extracted[track.package] = root
                copyright_file = root / "usr" / "share" / "doc" / track.package / "copyright"
                write_if_changed(
                    out / "licenses" / "debian" / f"{track.package}.copyright", copyright_file.read_bytes()
                )
            src = root / track.path.lstrip("/")
            if sha256(src) != track.sha256:
                raise SystemExit(
                    f"{track.id}: {track.path} in {track.package} {track.version} is not the expected file"
                )
            if is_module(track):
                # The module is the preferred form for modifying a rendered track (GPL "source code"), and small.
                write_if_changed(out / "licenses" / "sources" / src.name, src.read_bytes())
            wav = tmp / f"{track.id}.wav"
            decode_excerpt(track, src, wav)
            lufs, peak = loudness(wav)
            gains[track.id] = gain = gain_for(lufs, peak)
            ogg = tmp / f"{track.id}.ogg"
            encode(track, wav, ogg, gain)
            wav.unlink()
            final_lufs, final_peak = loudness(ogg)
            write_if_changed(out / f"{track.id}.ogg", ogg.read_bytes())
            report.append((track.id, probe_duration(ogg), gain, final_lufs, final_peak))
            print(f"{track.id:22s} {report[-1][1]:6.2f} s  gain {gain:+5.1f} dB  {final_lufs:6.1f} LUFS  "
                  f"{final_peak:5.1f} dBTP", file=sys.stderr)  # fmt: skip
    ids = {t.id for t in TRACKS}
    for stale in sorted(out.glob("*.ogg")):
        if stale.stem not in ids:
            stale.unlink()
    packages = {t.package for t in TRACKS}
    for stale in sorted((out / "licenses" / "debian").glob("*.copyright")):
        if stale.stem not in packages:
            stale.unlink()
    modules = {Path(t.path).name for t in TRACKS if is_module(t)}
    for stale in sorted((out / "licenses" / "sources").iterdir()):
        if stale.name not in modules:
            stale.unlink()
    write_if_changed(out / "pack.toml", manifest_text(list(TRACKS), gains).encode("utf-8"))
    total = sum(p.stat().st_size for p in out.glob("*.ogg"))
    print(f"wrote {len(TRACKS)} tracks ({total / 1e6:.1f} MB) to {out}")


if __name__ == "__main__":
    main()
