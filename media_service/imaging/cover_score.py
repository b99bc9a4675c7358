"""Cover candidates for a video: which of its frames make a good still.

Frames come small and evenly spaced (the video pass writes them beside the renditions). Each is scored on
sharpness, exposure, faces and how far it is from a scene cut (a frame next to a cut is often mid-fade or
motion-blurred, and belongs to neither shot); the best ones, spread over the video, are the candidates.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
from numpy.typing import NDArray
from PIL import Image

from media_service.imaging.faces import find_faces

WEIGHTS = {"sharpness": 0.35, "exposure": 0.25, "faces": 0.25, "cut_distance": 0.15}
CUT_THRESHOLD = 0.35  # L1 distance of normalised 32-bin luma histograms (0–2) that counts as a cut
CUT_CLEAR_SECONDS = 1.0  # frames this far from every cut lose nothing for it
SHARP_ENOUGH = 0.4  # of the sharpest frame's focus measure
FACE_SHORTLIST = 12  # faces are looked for only on the best frames by the cheap scores


@dataclass
class FrameScore:
    index: int
    time: float
    scores: dict[str, float] = field(default_factory=dict)
    total: float = 0.0


def _luma(rgb: NDArray[np.uint8]) -> NDArray[np.float32]:
    f = rgb.astype(np.float32)
    out: NDArray[np.float32] = (0.2126 * f[..., 0] + 0.7152 * f[..., 1] + 0.0722 * f[..., 2]) / 255.0
    return out


def sharpness(luma: NDArray[np.float32]) -> float:
    """Variance of the Laplacian (the usual focus measure), on the frame's luma."""
    lap = (-4 * luma[1:-1, 1:-1] + luma[:-2, 1:-1] + luma[2:, 1:-1] + luma[1:-1, :-2] + luma[1:-1, 2:])
    return float(lap.var())


def exposure(luma: NDArray[np.float32]) -> float:
    """1 for a frame whose mid-tones sit near the middle and that has little crushed or blown area; 0 for a
    black or white frame."""
    mean = float(luma.mean())
    clipped = float(((luma < 0.03) | (luma > 0.97)).mean())
    centred = max(0.0, 1.0 - abs(mean - 0.5) / 0.4)
    spread = min(1.0, float(luma.std()) / 0.12)  # a flat grey card is well exposed but says nothing
    return max(0.0, centred * (1.0 - clipped) * (0.5 + 0.5 * spread))


def histogram(luma: NDArray[np.float32]) -> NDArray[np.float64]:
    hist, _ = np.histogram(luma, bins=32, range=(0.0, 1.0))
    out: NDArray[np.float64] = hist / max(1, int(hist.sum()))
    return out


def scene_cuts(hists: list[NDArray[np.float64]], times: list[float]) -> list[float]:
    """Times (between two sampled frames) where the picture changes all at once."""
    return [(times[i - 1] + times[i]) / 2 for i in range(1, len(hists))
            if float(np.abs(hists[i] - hists[i - 1]).sum()) > CUT_THRESHOLD]


def face_score(rgb: NDArray[np.uint8]) -> float:
    """0 without a face; more for a bigger one (a face filling a tenth of the frame scores 1)."""
    faces = find_faces(Image.fromarray(rgb))
    if not faces:
        return 0.0
    area = max(b.width * b.height for b in faces) / float(rgb.shape[0] * rgb.shape[1])
    return min(1.0, 0.5 + 5.0 * area)


def score_frames(frames: list[NDArray[np.uint8]], fps: float) -> list[FrameScore]:
    """Every frame scored (0–1 per criterion, weighted total), in frame order."""
    times = [i / fps for i in range(len(frames))]
    lumas = [_luma(f) for f in frames]
    raw_sharp = [sharpness(lu) for lu in lumas]
    # Relative to this video's sharpest frame (absolute focus measures depend on the content), with a floor
    # so a uniformly soft video does not call its least soft frame perfect; saturating at SHARP_ENOUGH of it,
    # because the measure is for telling blur apart, not for ranking busy pictures above simple ones.
    top_sharp = max(max(raw_sharp, default=0.0), 2e-4) * SHARP_ENOUGH
    cuts = scene_cuts([histogram(lu) for lu in lumas], times)
    scored = []
    for i, lu in enumerate(lumas):
        nearest = min((abs(times[i] - c) for c in cuts), default=CUT_CLEAR_SECONDS)
        scored.append(FrameScore(i, times[i], {
            "sharpness": min(1.0, raw_sharp[i] / top_sharp),
            "exposure": exposure(lu),
            "faces": 0.0,
            "cut_distance": min(1.0, nearest / CUT_CLEAR_SECONDS),
        }))
    for s in scored:
        s.total = _total(s.scores)
    for s in sorted(scored, key=lambda s: s.total, reverse=True)[:FACE_SHORTLIST]:
        s.scores["faces"] = face_score(frames[s.index])
        s.total = _total(s.scores)
    return scored


def _total(scores: dict[str, float]) -> float:
    return round(sum(WEIGHTS[k] * v for k, v in scores.items()), 4)


def best_candidates(scored: list[FrameScore], count: int, min_gap: float) -> list[FrameScore]:
    """The ``count`` best frames at least ``min_gap`` seconds apart, best first."""
    chosen: list[FrameScore] = []
    for s in sorted(scored, key=lambda s: (-s.total, s.time)):
        if all(abs(s.time - c.time) >= min_gap for c in chosen):
            chosen.append(s)
            if len(chosen) == count:
                break
    return chosen
