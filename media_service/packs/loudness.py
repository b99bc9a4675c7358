"""A track's loudness, measured once (EBU R128 with ffmpeg's ebur128) and stored with the pack.

Besides the summary (integrated loudness, true peak, loudness range) the measurement keeps the momentary
loudness (400 ms blocks, every 100 ms) and the true peak of every 100 ms. From those, the loudness of any
excerpt of the track, looped, faded and turned up or down, follows by arithmetic (BS.1770 gating over the
blocks), so a video whose only sound is the music needs no analysis pass at all.
"""

from __future__ import annotations

import hashlib
import json
import math
import re
from collections.abc import Sequence
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

from media_service.errors import CorruptMedia

STEP = 0.1  # seconds between ebur128's frames
SILENCE = -120.0  # LUFS/dBTP written for digital silence (-inf does not survive JSON)
ABSOLUTE_GATE = -70.0
RELATIVE_GATE = -10.0  # LU below the absolutely gated loudness (integrated loudness)
LRA_RELATIVE_GATE = -20.0
SHORT_TERM_BLOCKS = 27  # 400 ms blocks every 100 ms spanning the 3 s short-term window
MAX_SECONDS = 3600  # the longest audio measured here (tracks are at most 10 min)
STORE_NAME = "loudness.json"  # in a built pack archive: {file: {"sha256": …, …}}

_NUMBER = r"(?:-?[\d.]+|-inf|nan)"
_FRAME = re.compile(rf"\bt:\s*([\d.]+)\s.*?\bM:\s*({_NUMBER})\s.*?\bFTPK:\s*({_NUMBER}(?:\s+{_NUMBER})*)\s+dBFS")


@dataclass(frozen=True)
class Loudness:
    integrated: float  # LUFS; SILENCE when nothing passes the absolute gate
    true_peak: float  # dBTP
    lra: float  # LU
    threshold: float  # the relative gate, LUFS (loudnorm's "input_thresh")
    momentary: tuple[float, ...]  # LUFS of the 400 ms ending at each 100 ms step
    peaks: tuple[float, ...]  # dBTP of each 100 ms

    def summary(self) -> dict[str, float]:
        return {"integrated_lufs": round(self.integrated, 2), "true_peak_dbtp": round(self.true_peak, 2),
                "lra_lu": round(self.lra, 2)}

    def to_json(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> Loudness:
        return cls(float(data["integrated"]), float(data["true_peak"]), float(data["lra"]), float(data["threshold"]),
                   tuple(float(v) for v in data["momentary"]), tuple(float(v) for v in data["peaks"]))


def _db(token: str) -> float:
    value = float(token) if token not in ("-inf", "nan") else SILENCE
    return max(SILENCE, value) if math.isfinite(value) else SILENCE


def _energy(lufs: float) -> float:
    return 10 ** ((lufs + 0.691) / 10)


def _lufs(energy: float) -> float:
    return -0.691 + 10 * math.log10(energy) if energy > 0 else SILENCE


def gated_loudness(momentary: Sequence[float]) -> tuple[float, float]:
    """Integrated loudness and its relative gate from 400 ms block loudness (ITU-R BS.1770-4)."""
    loud = [_energy(m) for m in momentary if m > ABSOLUTE_GATE]
    if not loud:
        return SILENCE, ABSOLUTE_GATE
    threshold = _lufs(sum(loud) / len(loud)) + RELATIVE_GATE
    gated = [e for e in loud if _lufs(e) > threshold]
    return _lufs(sum(gated) / len(gated)), threshold


def loudness_range(momentary: Sequence[float]) -> float:
    """EBU Tech 3342 LRA from short-term (3 s) loudness, itself the mean energy of the 400 ms blocks in it."""
    energies = [_energy(m) for m in momentary]
    short = [_lufs(sum(energies[i - SHORT_TERM_BLOCKS:i]) / SHORT_TERM_BLOCKS)
             for i in range(SHORT_TERM_BLOCKS, len(energies) + 1)]
    loud = [s for s in short if s > ABSOLUTE_GATE]
    if not loud:
        return 0.0
    gate = _lufs(sum(_energy(s) for s in loud) / len(loud)) + LRA_RELATIVE_GATE
    kept = sorted(s for s in loud if s > gate)
    if len(kept) < 2:
        return 0.0

    def percentile(p: float) -> float:
        return kept[min(len(kept) - 1, round(p * (len(kept) - 1)))]

    return percentile(0.95) - percentile(0.10)


def summarise(momentary: Sequence[float], peaks: Sequence[float]) -> Loudness:
    integrated, threshold = gated_loudness(momentary)
    return Loudness(integrated, max(peaks, default=SILENCE), loudness_range(momentary), threshold,
                    tuple(momentary), tuple(peaks))


def parse_ebur128_log(stderr: str) -> Loudness:
    """The per-frame lines of ``ebur128=peak=true:framelog=info``: momentary loudness and frame true peak."""
    momentary: list[float] = []
    peaks: list[float] = []
    for match in _FRAME.finditer(stderr):
        momentary.append(_db(match.group(2)))
        peaks.append(max(_db(v) for v in match.group(3).split()))
    if not momentary:
        raise CorruptMedia(detail="ebur128 printed no measurement")
    return summarise(momentary, peaks)


def measure(path: Path, timeout: float = 120) -> Loudness:
    from media_service.ffmpeg.runner import run_tool
    from media_service.ffmpeg.safety import AUDIO_DEMUXERS, input_args

    result = run_tool(["ffmpeg", "-nostdin", "-hide_banner", "-nostats", *input_args(AUDIO_DEMUXERS), "-i", str(path),
                       "-map", "0:a:0", "-af", "ebur128=peak=true:framelog=info", "-f", "null", "-"], timeout=timeout,
                      stderr_lines=200 + round(MAX_SECONDS / STEP))
    return parse_ebur128_log(result.stderr)


def file_digest(path: Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as f:
        while chunk := f.read(1 << 20):
            digest.update(chunk)
    return digest.hexdigest()


def stored(pack_root: Path, rel: str, digest: str) -> Loudness | None:
    """The measurement a built archive carries for this file, if it is for this very content."""
    try:
        entry = json.loads((pack_root / STORE_NAME).read_text(encoding="utf-8")).get(rel)
        if isinstance(entry, dict) and entry.get("sha256") == digest:
            return Loudness.from_json(entry)
    except (OSError, ValueError, KeyError, TypeError):
        pass
    return None


def cached_measure(path: Path, cache: Path, digest: str, shared: Path | None = None) -> Loudness:
    """Measured once per content on this machine (local folders in development have no stored values):
    kept in ``cache`` and, when given, in a ``shared`` cache that other data folders on the machine reuse."""
    folders = [cache] + ([shared] if shared is not None and shared != cache else [])
    for folder in folders:
        try:
            return Loudness.from_json(json.loads((folder / "loudness" / f"{digest[:32]}.json").read_text("utf-8")))
        except (OSError, ValueError, KeyError, TypeError):
            continue
    result = measure(path)
    for folder in folders:
        target = folder / "loudness" / f"{digest[:32]}.json"
        try:
            target.parent.mkdir(parents=True, exist_ok=True)
            tmp = target.with_suffix(f".{digest[:8]}.tmp")
            tmp.write_text(json.dumps(result.to_json()), encoding="utf-8")
            tmp.replace(target)
        except OSError:
            pass
    return result


def excerpt(loudness: Loudness, times: Sequence[float], gains_db: Sequence[float]) -> Loudness:
    """The loudness of a stream made of the track at source ``times`` (every 100 ms of the output), each
    turned up or down by ``gains_db``: looping, offsets, volume and fades, without decoding anything."""
    n = len(loudness.momentary)
    momentary, peaks = [], []
    for t, gain in zip(times, gains_db, strict=True):
        i = min(n - 1, max(0, round(t / STEP) - 1))
        momentary.append(max(SILENCE, loudness.momentary[i] + gain))
        peaks.append(max(SILENCE, loudness.peaks[i] + gain))
    return summarise(momentary, peaks)


def store_document(entries: Sequence[tuple[str, Path, Loudness]]) -> bytes:
    """``loudness.json`` for a built archive: per file (relative to the pack), its hash and measurement."""
    return json.dumps({rel: {"sha256": file_digest(path), **loudness.to_json()} for rel, path, loudness in entries},
                      sort_keys=True, separators=(",", ":")).encode()
