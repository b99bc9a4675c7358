"""The hostile corpus: one row per case, with what a client must see over HTTP.

``Refused``: the upload is answered with this status and machine code (and the field, for a recipe).
``Failed``: the upload is accepted (202) and the media ends ``failed`` with this code.
``Processed``: the media ends ``ready`` and ``check`` holds for what was published.
Every case also has a time budget (seconds, upload to final state) and must leave nothing behind.
"""

from __future__ import annotations

import io
import json
import subprocess
import tempfile
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from PIL import Image

from tests.hostile import builders as b

# --- what a run of a case produced -------------------------------------------------------------------------


@dataclass
class Result:
    upload_status: int
    upload_body: Any
    seconds: float = 0.0  # upload to final state
    media_id: str | None = None
    final: dict[str, Any] | None = None
    statuses: list[str] = field(default_factory=list)
    # Every stored object under the media's prefix but the original: name (relative to the version) → bytes.
    objects: dict[str, bytes] = field(default_factory=dict)
    keys: list[str] = field(default_factory=list)  # every key under media/<id>/, original included
    error: str | None = None  # the harness's own trouble (timeouts), shown in the failure

    def rendition(self, name: str) -> dict[str, Any]:
        assert self.final is not None
        found = [r for r in self.final["renditions"] if r["name"] == name]
        assert found, f"no rendition {name}: {[r['name'] for r in self.final['renditions']]}"
        return found[0]

    def names(self) -> set[str]:
        assert self.final is not None
        return {r["name"] for r in self.final["renditions"]}


# --- expectations -----------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Refused:
    status: int
    code: str
    field: str | None = None

    def __str__(self) -> str:
        return f"refused {self.status} {self.code}" + (f" ({self.field})" if self.field else "")


@dataclass(frozen=True)
class Failed:
    code: str

    def __str__(self) -> str:
        return f"202, then failed {self.code}"


@dataclass(frozen=True)
class Processed:
    check: Callable[[Result], None]
    what: str = ""

    def __str__(self) -> str:
        return "202, then ready" + (f": {self.what}" if self.what else "")


Expected = Refused | Failed | Processed


@dataclass(frozen=True)
class Case:
    name: str
    group: str
    build: Callable[[b.Build], bytes]
    filename: str
    content_type: str
    expected: Expected
    budget: float  # seconds from the upload to the final state
    recipe: dict[str, Any] | str | None = None

    @property
    def accepted(self) -> bool:
        return not isinstance(self.expected, Refused)


# --- checks on what was published -------------------------------------------------------------------------

# Longer than a few bytes, so that compressed picture data cannot contain one by chance.
PRIVATE_STRINGS = (b"SecretCam", b"Model X", b"secret comment", b"xmpmeta", b"Exif\0\0", b"ICC_PROFILE",
                   b"+39.9042", b"+116.4074", b"2024-05-06", b"01:02:03", b"subtitle ", b"attachment ")
IMAGE_INFO_ALLOWED = {"jfif", "jfif_version", "jfif_unit", "jfif_density", "dpi", "loop", "duration", "background",
                      "timestamp", "progressive", "progression"}
PHOTO_LADDER = (1080, 720, 360)


def no_private_bytes(r: Result) -> None:
    for name, data in r.objects.items():
        found = [m for m in PRIVATE_STRINGS if m in data]
        assert not found, f"{name} keeps {found}"


def photo(width: int, height: int, fmt: str, *, extra: Callable[[Result], None] | None = None
          ) -> Callable[[Result], None]:
    """Ready, the source's facts as displayed, the photo ladder (never upscaled) in WebP and JPEG, 8-bit RGB
    renditions with no metadata at all."""

    def check(r: Result) -> None:
        assert r.final is not None
        src = r.final["source"]
        assert (src["format"], src["width"], src["height"]) == (fmt, width, height), src
        expected = {f"w{w}.{ext}" for w in _photo_widths(width) for ext in ("webp", "jpg")}
        assert r.names() == expected, (r.names(), expected)
        for name in expected:
            data = r.objects[name]
            img = Image.open(io.BytesIO(data))
            img.load()
            meta = r.rendition(name)
            assert img.size == (meta["width"], meta["height"]) and img.mode == "RGB", (name, img.size, img.mode)
            assert abs(img.width / img.height - width / height) < max(0.02 * width / height, 2 / img.height), name
            assert not img.getexif(), (name, dict(img.getexif()))
            assert set(img.info) <= IMAGE_INFO_ALLOWED, (name, set(img.info))
        no_private_bytes(r)
        if extra is not None:
            extra(r)

    return check


def _photo_widths(width: int) -> list[int]:
    if width >= PHOTO_LADDER[0]:
        return list(PHOTO_LADDER)
    return [width, *[w for w in PHOTO_LADDER if w < width]]


def first_pixel_is(rgb: tuple[int, int, int], tolerance: int = 40) -> Callable[[Result], None]:
    def check(r: Result) -> None:
        name = sorted(n for n in r.objects if n.endswith(".webp"))[0]
        img = Image.open(io.BytesIO(r.objects[name])).convert("RGB")
        got = img.getpixel((img.width // 2, img.height // 2))
        assert isinstance(got, tuple)
        assert all(abs(a - e) <= tolerance for a, e in zip(got, rgb, strict=True)), (got, rgb)

    return check


def ffprobe(data: bytes, suffix: str = ".mp4") -> dict[str, Any]:
    with tempfile.NamedTemporaryFile(suffix=suffix) as f:
        f.write(data)
        f.flush()
        out = subprocess.run(["ffprobe", "-v", "error", "-show_format", "-show_streams", "-show_chapters",
                              "-of", "json", f.name], check=True, capture_output=True, timeout=30).stdout
    info: dict[str, Any] = json.loads(out)
    return info


FORMAT_TAGS_ALLOWED = {"major_brand", "minor_version", "compatible_brands", "encoder"}
STREAM_TAGS_ALLOWED = {"language", "handler_name", "vendor_id", "encoder"}
HANDLERS_ALLOWED = {"VideoHandler", "SoundHandler"}


def video(width: int, height: int, *, audio: bool, max_seconds: float, fps: float | None = None
          ) -> Callable[[Result], None]:
    """Ready; every MP4 and HLS file holds one H.264 video stream (and one AAC stream when the source has
    sound), nothing else: no subtitle, data or attachment stream, no chapters, no tags but the muxer's own;
    the top rung has the displayed size; nothing lasts longer than ``max_seconds``."""

    def check(r: Result) -> None:
        assert r.final is not None
        src = r.final["source"]
        assert (src["width"], src["height"]) == (width, height), src
        mp4s = sorted(n for n in r.objects if n.endswith(".mp4") and "/" not in n)
        assert mp4s, sorted(r.objects)
        assert {"poster.webp", "poster.jpg", "preview.webp"} <= set(r.objects), sorted(r.objects)
        top = max((r.rendition(n) for n in mp4s), key=lambda x: x["width"] * x["height"])
        assert (top["width"] > top["height"]) == (width > height) or width == height, (top, width, height)
        hls = sorted(n for n in r.objects if n.startswith("hls/") and n.endswith((".mp4", ".m4s")))
        assert hls, sorted(r.objects)
        # An HLS variant is probed as its init segment followed by its first media segment.
        variants = {n: r.objects[n] + r.objects[n.replace("init.mp4", "seg_000.m4s")]
                    for n in hls if n.endswith("init.mp4")}
        assert variants, hls
        for name, data in [*((n, r.objects[n]) for n in mp4s), *variants.items()]:
            info = ffprobe(data)
            kinds = [s["codec_type"] for s in info["streams"]]
            assert kinds == (["video", "audio"] if audio else ["video"]), (name, kinds)
            v = info["streams"][0]
            assert v["codec_name"] == "h264" and v["pix_fmt"] == "yuv420p", (name, v["codec_name"], v["pix_fmt"])
            if audio:
                assert info["streams"][1]["codec_name"] == "aac", name
            assert not info.get("chapters"), (name, info.get("chapters"))
            tags = info["format"].get("tags", {})
            assert set(tags) <= FORMAT_TAGS_ALLOWED, (name, tags)
            for s in info["streams"]:
                assert set(s.get("tags", {})) <= STREAM_TAGS_ALLOWED, (name, s.get("tags"))
                assert s.get("tags", {}).get("handler_name", "VideoHandler") in HANDLERS_ALLOWED, (name, s["tags"])
                assert not any(s.get("side_data_list", []) or []), (name, s.get("side_data_list"))
            if not name.startswith("hls/"):
                assert float(info["format"]["duration"]) <= max_seconds + 0.15, (name, info["format"]["duration"])
                if fps is not None:
                    rate = v["avg_frame_rate"].split("/")
                    assert abs(int(rate[0]) / int(rate[1]) - fps) < 0.05, (name, v["avg_frame_rate"])
        for name in ("poster.webp", "poster.jpg", "preview.webp"):
            img = Image.open(io.BytesIO(r.objects[name]))
            assert not img.getexif() and set(img.info) <= IMAGE_INFO_ALLOWED, (name, img.info)
        no_private_bytes(r)

    return check


def stored_only_under_its_prefix(r: Result) -> None:
    """A hostile file name goes nowhere: every key is the media's own opaque id and our fixed names."""
    assert r.media_id is not None
    for key in r.keys:
        assert key.startswith(f"media/{r.media_id}/"), key
        assert ".." not in key and "passwd" not in key and all(c.isprintable() for c in key), key
    assert "passwd" not in json.dumps(r.final)


# --- recipes that try to break out --------------------------------------------------------------------------

INJECT = "starter/warm'; movie=/etc/passwd [x]; [in]lut3d=file=/etc/passwd"
STICKER = {"id": "starter/heart", "x": 0.5, "y": 0.5, "scale": 0.2}

# --- the table ----------------------------------------------------------------------------------------------

JPG, PNG, MP4, MOV = "image/jpeg", "image/png", "video/mp4", "video/quicktime"
R415 = Refused(415, "unsupported_media_type")
CORRUPT = Refused(422, "corrupt_media")
IMAGE_TOO_LARGE = Refused(422, "image_too_large")
VIDEO_TOO_LARGE = Refused(422, "video_too_large")
FAST, PHOTO, VIDEO = 10.0, 30.0, 60.0

CASES: list[Case] = [
    # Files that lie.
    Case("zero_bytes", "lie", b.zero_bytes, "IMG_0001.JPG", JPG, Refused(422, "empty_file"), FAST),
    Case("truncated_jpeg", "lie", b.truncated_jpeg, "cut.jpg", JPG, Failed("corrupt_media"), PHOTO),
    Case("jpeg_headers_only", "lie", b.jpeg_headers_only, "cut.jpg", JPG, CORRUPT, FAST),
    Case("truncated_png", "lie", b.truncated_png, "cut.png", PNG, Failed("corrupt_media"), PHOTO),
    Case("truncated_mp4", "lie", b.truncated_mp4, "cut.mp4", MP4, CORRUPT, FAST),
    Case("truncated_mp4_faststart", "lie", b.truncated_mp4_faststart, "cut.mp4", MP4,
         Processed(video(320, 240, audio=True, max_seconds=4.0), "what the samples hold, ≤ the header's 4 s"),
         VIDEO),
    Case("png_named_jpg", "lie", b.png_named_jpg, "photo.jpg", JPG,
         Processed(photo(300, 200, "png"), "told apart by its bytes: png"), PHOTO),
    Case("html_named_jpg", "lie", b.html_as_jpeg, "photo.jpg", JPG, R415, FAST),
    Case("svg_named_png", "lie", b.svg_as_png, "photo.png", PNG, R415, FAST),
    Case("eps_named_jpg", "lie", b.eps_as_jpeg, "photo.jpg", JPG, R415, FAST),
    Case("tiff_named_jpg", "lie", b.tiff_as_jpeg, "photo.jpg", JPG, R415, FAST),
    Case("avi_named_mp4", "lie", b.avi_as_mp4, "clip.mp4", MP4, R415, FAST),
    Case("polyglot_jpeg_zip", "lie", b.polyglot_jpeg_zip, "photo.jpg", JPG,
         Processed(photo(400, 300, "jpeg"), "the JPEG only; the ZIP is in no rendition"), PHOTO),
    Case("mp4_header_claims_10h", "lie", b.mp4_claims_10_hours, "clip.mp4", MP4, VIDEO_TOO_LARGE, FAST),
    Case("mp4_header_5s_holds_10min", "lie", b.mp4_claims_5s_holds_10_minutes, "clip.mp4", MP4,
         Processed(video(32, 32, audio=False, max_seconds=5.0), "decoding stops at the header's 5 s"), VIDEO),
    Case("jpeg_header_65000", "lie", b.jpeg_claims_65000, "photo.jpg", JPG, IMAGE_TOO_LARGE, FAST),
    Case("png_header_65000", "lie", b.png_claims_65000, "photo.png", PNG, IMAGE_TOO_LARGE, FAST),
    Case("gif_header_65000", "lie", b.gif_claims_65000, "anim.gif", "image/gif", IMAGE_TOO_LARGE, FAST),
    Case("webp_header_16383", "lie", b.webp_claims_16383, "photo.webp", "image/webp", IMAGE_TOO_LARGE, FAST),
    Case("heic_forged_ispe", "lie", b.heic_forged_size, "IMG_0001.HEIC", "image/heic", IMAGE_TOO_LARGE, FAST),
    Case("heic_forged_ispe_behind_crop", "lie", b.heic_forged_size_behind_crop, "IMG_0002.HEIC", "image/heic",
         Failed("image_too_large"), PHOTO),
    # Bombs.
    Case("png_50000x50000", "bomb", b.png_50000_square, "bomb.png", PNG, IMAGE_TOO_LARGE, FAST),
    Case("png_ztxt_200mb_before_idat", "bomb", b.png_ztxt_200mb_before_idat, "text.png", PNG, CORRUPT, FAST),
    # After the pixels: the header-only check at upload cannot see it; the worker's decode refuses it.
    Case("png_itxt_200mb_after_idat", "bomb", b.png_itxt_200mb_after_idat, "text.png", PNG,
         Failed("corrupt_media"), PHOTO),
    Case("gif_10000_frames", "bomb", b.gif_10000_frames, "anim.gif", "image/gif",
         Processed(photo(32, 32, "gif", extra=first_pixel_is((200, 30, 30))), "its first frame only"), PHOTO),
    Case("jpeg_49mp_at_the_cap", "bomb", b.jpeg_at_the_pixel_cap, "big.jpg", JPG,
         Processed(photo(7000, 7000, "jpeg"), "decoded at 1/8 scale"), PHOTO),
    Case("video_4096x4096", "bomb", b.video_4096_square, "big.mp4", MP4, VIDEO_TOO_LARGE, FAST),
    Case("video_1000fps", "bomb", b.video_1000_fps, "fast.mp4", MP4, VIDEO_TOO_LARGE, FAST),
    Case("video_real_10h", "bomb", b.video_real_10_hours, "long.mp4", MP4, VIDEO_TOO_LARGE, FAST),
    Case("video_real_10h_with_trim", "bomb", b.video_real_10_hours, "long.mp4", MP4, VIDEO_TOO_LARGE, FAST,
         recipe={"trim": {"start": 0, "end": 10}}),
    # Playlists in disguise: the sniffer refuses them, and behind an MP4 signature the demuxer whitelist does.
    Case("hls_named_mp4", "playlist", b.hls_playlist, "clip.mp4", MP4, R415, FAST),
    Case("hls_named_mov", "playlist", b.hls_playlist, "clip.mov", MOV, R415, FAST),
    Case("ffconcat_named_mov", "playlist", b.ffconcat_script, "clip.mov", MOV, R415, FAST),
    Case("ffconcat_named_mp4", "playlist", b.ffconcat_script, "clip.mp4", MP4, R415, FAST),
    Case("hls_behind_mp4_signature", "playlist", b.hls_behind_ftyp, "clip.mp4", MP4, CORRUPT, FAST),
    Case("ffconcat_behind_mp4_signature", "playlist", b.ffconcat_behind_ftyp, "clip.mov", MOV, CORRUPT, FAST),
    Case("hls_inside_avi", "playlist", b.hls_in_avi, "clip.avi", "video/x-msvideo", R415, FAST),
    # Privacy: nothing of the source's metadata or side streams survives.
    Case("jpeg_gps_make_xmp_comment", "privacy", b.jpeg_gps_camera_xmp_comment, "IMG_0003.JPG", JPG,
         Processed(photo(800, 600, "jpeg"), "no EXIF/GPS/XMP/comment/ICC"), PHOTO),
    Case("heic_gps_make_xmp", "privacy", b.heic_gps_camera_xmp, "IMG_0004.HEIC", "image/heic",
         Processed(photo(640, 480, "heif"), "no EXIF/GPS/XMP"), PHOTO),
    Case("png_text_exif", "privacy", b.png_text_and_exif, "shot.png", PNG,
         Processed(photo(300, 200, "png"), "no tEXt/iTXt/eXIf"), PHOTO),
    Case("mp4_location_subtitle_timecode", "privacy", b.mp4_location_subtitle_data, "IMG_0005.MP4", MP4,
         Processed(video(320, 240, audio=True, max_seconds=2.0), "one video + one audio stream, no tags"), VIDEO),
    Case("mkv_attachment_subtitle_tags", "privacy", b.mkv_attachment_subtitle_tags, "clip.mkv", "video/x-matroska",
         Processed(video(320, 240, audio=True, max_seconds=2.05), "no attachment, subtitle or tag"), VIDEO),
    # Awkward but valid.
    Case("cmyk_jpeg", "awkward", b.cmyk_jpeg, "print.jpg", JPG, Processed(photo(500, 400, "jpeg"), "RGB"), PHOTO),
    Case("png_16bit_rgb", "awkward", b.png_16bit_rgb, "deep.png", PNG,
         Processed(photo(300, 200, "png", extra=first_pixel_is((240, 16, 16))), "8-bit RGB, red stays red"),
         PHOTO),
    Case("png_16bit_grey", "awkward", b.png_16bit_grey, "deep.png", PNG,
         Processed(photo(400, 300, "png"), "8-bit RGB"), PHOTO),
    Case("png_1x1", "awkward", b.png_1x1, "dot.png", PNG, Processed(photo(1, 1, "png"), "one 1×1 rung"), PHOTO),
    Case("png_3x4000_strip", "awkward", b.png_3x4000_strip, "strip.png", PNG,
         Processed(photo(3, 4000, "png"), "one 3 px wide rung"), PHOTO),
    Case("jpeg_odd_1081x1921", "awkward", b.jpeg_odd_1081x1921, "odd.jpg", JPG,
         Processed(photo(1081, 1921, "jpeg"), "the full ladder"), PHOTO),
    Case("video_rotate_90", "awkward", b.video_rotate_90, "rot90.mp4", MP4,
         Processed(video(176, 320, audio=True, max_seconds=1.6), "upright portrait"), VIDEO),
    Case("video_rotate_180", "awkward", b.video_rotate_180, "rot180.mp4", MP4,
         Processed(video(320, 176, audio=True, max_seconds=1.6), "landscape"), VIDEO),
    Case("video_rotate_270", "awkward", b.video_rotate_270, "rot270.mp4", MP4,
         Processed(video(176, 320, audio=True, max_seconds=1.6), "upright portrait"), VIDEO),
    Case("video_vfr", "awkward", b.video_vfr, "vfr.mp4", MP4,
         Processed(video(320, 240, audio=True, max_seconds=2.5, fps=30.0), "constant 30 fps"), VIDEO),
    Case("video_no_audio", "awkward", b.video_no_audio, "silent.mp4", MP4,
         Processed(video(320, 240, audio=False, max_seconds=1.6), "no audio stream"), VIDEO),
    Case("audio_only_as_mp4", "awkward", b.audio_only_as_mp4, "clip.mp4", MP4, Refused(422, "no_video_stream"), FAST),
    Case("m4a_as_mp4", "awkward", b.m4a_as_mp4, "clip.mp4", MP4, R415, FAST),
    Case("hevc_10bit", "awkward", b.hevc_10bit, "hdr.mov", MOV,
         Processed(video(320, 240, audio=True, max_seconds=1.6), "8-bit H.264"), VIDEO),
    Case("many_streams", "awkward", b.many_streams, "multi.mp4", MP4,
         Processed(video(320, 240, audio=True, max_seconds=1.6), "one video + one audio stream"), VIDEO),
    # Hostile recipes and names.
    Case("recipe_out_of_range", "recipe", b.plain_photo, "a.jpg", JPG, Refused(422, "invalid_recipe",
         "filter.intensity"), FAST, recipe={"filter": {"id": "starter/warm", "intensity": 5}}),
    Case("recipe_nan", "recipe", b.plain_photo, "a.jpg", JPG, Refused(422, "invalid_recipe", "stickers[0].x"),
         FAST, recipe='{"stickers": [{"id": "starter/heart", "x": NaN, "y": 0.5}]}'),
    Case("recipe_5000_digit_number", "recipe", b.plain_photo, "a.jpg", JPG, Refused(422, "invalid_recipe",
         "recipe"), FAST, recipe='{"stickers": [{"id": "starter/heart", "x": ' + "9" * 5000 + ', "y": 0.5}]}'),
    Case("recipe_nested_8000_deep", "recipe", b.plain_photo, "a.jpg", JPG, Refused(422, "invalid_recipe",
         "recipe"), FAST, recipe="[" * 8000 + "]" * 8000),
    Case("recipe_unknown_ids", "recipe", b.plain_photo, "a.jpg", JPG, Refused(422, "unknown_pack_item",
         "stickers[0].id"), FAST, recipe={"stickers": [{**STICKER, "id": "nope/nothing"}]}),
    Case("recipe_unknown_keys", "recipe", b.plain_photo, "a.jpg", JPG, Refused(422, "invalid_recipe", "shell"),
         FAST, recipe={"aspect": "1:1", "shell": "rm -rf /"}),
    Case("recipe_21_stickers", "recipe", b.plain_photo, "a.jpg", JPG, Refused(422, "invalid_recipe", "stickers"),
         FAST, recipe={"stickers": [STICKER] * 21}),
    # 10,000 stickers are ≈480 KB of JSON: the multipart parser refuses a text field over 17 KB before any
    # JSON is parsed (the cap itself is checked again on the parsed list: recipe_21_stickers).
    Case("recipe_10000_stickers", "recipe", b.plain_photo, "a.jpg", JPG, Refused(400, "bad_request"),
         FAST, recipe={"stickers": [STICKER] * 10_000}),
    Case("recipe_filter_id_injection", "recipe", b.plain_photo, "a.jpg", JPG, Refused(422, "invalid_recipe",
         "filter.id"), FAST, recipe={"filter": {"id": INJECT}}),
    Case("recipe_sticker_id_injection", "recipe", b.plain_photo, "a.jpg", JPG, Refused(422, "invalid_recipe",
         "stickers[0].id"), FAST, recipe={"stickers": [{**STICKER, "id": "[in]lut3d=file=/etc/passwd"}]}),
    Case("recipe_aspect_injection", "recipe", b.plain_photo, "a.jpg", JPG, Refused(422, "invalid_recipe", "aspect"),
         FAST, recipe={"aspect": "1:1,movie=/etc/passwd"}),
    Case("recipe_number_injection", "recipe", b.plain_photo, "a.jpg", JPG, Refused(422, "invalid_recipe",
         "stickers[0].x"), FAST, recipe={"stickers": [{**STICKER, "x": "0.5:movie=/etc/passwd"}]}),
    Case("recipe_music_injection_on_video", "recipe", b.plain_video, "a.mp4", MP4, Refused(422, "invalid_recipe",
         "music.id"), FAST, recipe={"music": {"id": "starter/x;amovie=/etc/passwd"}}),
    Case("recipe_trim_past_the_end", "recipe", b.plain_video, "a.mp4", MP4, Refused(422, "invalid_recipe",
         "trim.start"), FAST, recipe={"trim": {"start": 3000}}),
    Case("recipe_video_fields_on_photo", "recipe", b.plain_photo, "a.jpg", JPG, Refused(422, "invalid_recipe",
         "trim"), FAST, recipe={"trim": {"start": 0, "end": 1}}),
    Case("filename_traversal_control_chars", "name", b.plain_photo, "../../../etc/passwd\x00\x1b[31m\x7f.jpg", JPG,
         Processed(photo(400, 300, "jpeg", extra=stored_only_under_its_prefix), "keys are the media id's"), PHOTO),
    # The CR LF ends the part's headers early: what follows is the file's content, which is no image.
    Case("filename_crlf_header_injection", "name", b.plain_photo,
         "x.jpg\r\nContent-Type: text/html\r\n\r\n<script>", JPG, R415, FAST),
]

assert len({c.name for c in CASES}) == len(CASES), "case names are unique"
