"""Ordered clean-up of a run: each part registers how it stops as it starts, and a run that failed
half-way stops exactly the parts it had started, newest first."""

from __future__ import annotations

import logging
from collections.abc import Callable

from bot_runtime.control import Outcome

log = logging.getLogger("bot_runtime")


class Shutdown:
    def __init__(self) -> None:
        self._steps: list[tuple[str, Callable[[Outcome], None]]] = []

    def on_stop(self, name: str, step: Callable[[Outcome], None]) -> None:
        self._steps.append((name, step))

    def run(self, outcome: Outcome) -> None:
        while self._steps:
            name, step = self._steps.pop()
            try:
                step(outcome)
            except Exception as exc:  # one failing step must not keep the others (the lease!) from running
                log.warning("%s failed during shutdown: %s", name, exc)
