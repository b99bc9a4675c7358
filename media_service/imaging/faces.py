"""Face boxes for face-aware crops, from OpenCV's bundled Haar cascade (no download at run time)."""

from __future__ import annotations

import functools
import threading
from typing import Any

import numpy as np
from PIL import Image

from media_service.geometry import Box

DETECT_SIDE = 640
_lock = threading.Lock()


@functools.cache
def _cascade() -> Any:
    # Imported here: OpenCV adds ≈37 MB to every process, and most jobs never crop around faces.
    import cv2

    path = str(cv2.data.haarcascades) + "haarcascade_frontalface_default.xml"  # type: ignore[attr-defined]
    cascade = cv2.CascadeClassifier(path)
    if cascade.empty():
        raise RuntimeError(f"OpenCV face cascade missing at {path}")
    return cascade


def find_faces(img: Image.Image) -> list[Box]:
    """Faces in ``img`` coordinates. Runs on a ≤640 px greyscale copy: cheap, and plenty for framing."""
    scale = min(1.0, DETECT_SIDE / max(img.size))
    small = img.convert("L")
    if scale < 1.0:
        small = small.resize((max(1, round(img.width * scale)), max(1, round(img.height * scale))),
                             Image.Resampling.BILINEAR, reducing_gap=2.0)
    import cv2

    gray = cv2.equalizeHist(np.asarray(small))
    min_side = max(24, round(min(small.size) * 0.06))
    with _lock:  # CascadeClassifier is not documented as thread-safe
        found = _cascade().detectMultiScale(gray, scaleFactor=1.1, minNeighbors=6, minSize=(min_side, min_side))
    inv = 1.0 / scale
    return [Box(int(x * inv), int(y * inv), int(w * inv), int(h * inv)) for (x, y, w, h) in found]
