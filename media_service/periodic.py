"""A daemon thread that runs one round every ``interval`` seconds (the worker main process's background
loops: the reconciler, the webhook deliverer; a video job's early renditions). A round that fails is logged;
the next one comes anyway."""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable

from media_service.errors import MediaError

log = logging.getLogger("media_service.periodic")


class Periodic:
    def __init__(self, name: str, interval: float, round_: Callable[[], object]) -> None:
        self.name, self.interval, self.round = name, interval, round_
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._loop, name=name, daemon=True)

    def start(self) -> None:
        self._thread.start()

    def stop(self, wait: float = 0.0) -> None:
        """No more rounds; with ``wait``, also let a round in progress finish (up to that many seconds)."""
        self._stop.set()
        if wait > 0 and self._thread.is_alive():
            self._thread.join(wait)

    def _loop(self) -> None:
        while not self._stop.wait(self.interval):
            try:
                self.round()
            except MediaError as exc:  # database or broker down: next round
                log.warning("%s: %s", self.name, exc.code)
            except Exception:
                log.exception("%s round failed", self.name)
