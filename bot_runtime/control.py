"""How a run ends: exit codes, the failure that ends it, and the stop requests that may come from any
thread (a signal, the monitor, a lost lease). Cerebro is asked to stop at once (`runstop()` is the one
Backtrader call that is safe from another thread)."""

from __future__ import annotations

import logging
from dataclasses import dataclass
from typing import Any

log = logging.getLogger("bot_runtime")

EXIT_OK, EXIT_ERROR, EXIT_FATAL, EXIT_LEASE_HELD, EXIT_LEASE_LOST = 0, 1, 2, 3, 4


@dataclass(frozen=True)
class Outcome:
    code: int
    reason: str
    db_status: str  # trading_bots.status after the run


class RuntimeFailure(Exception):
    """The runtime must stop; `code` is its exit code and the message is the reason users see."""

    def __init__(self, code: int, reason: str) -> None:
        super().__init__(reason)
        self.code, self.reason = code, reason

    def outcome(self) -> Outcome:
        stopped = self.code in (EXIT_OK, EXIT_LEASE_HELD, EXIT_LEASE_LOST)
        return Outcome(self.code, self.reason, "stopped" if stopped else "error")


def lease_lost(why: object) -> RuntimeFailure:
    return RuntimeFailure(EXIT_LEASE_LOST, f"lease lost, trading stopped at once: {why}")


class RunControl:
    """Why the run must stop (a request or a failure), settable from any thread."""

    def __init__(self) -> None:
        self.stop_requested: str | None = None
        self.failure: RuntimeFailure | None = None
        self._cerebro: Any = None

    @property
    def stopping(self) -> bool:
        return self.stop_requested is not None or self.failure is not None

    def attach(self, cerebro: Any) -> None:
        self._cerebro = cerebro

    def request_stop(self, why: str) -> None:
        if self.stop_requested is None:
            self.stop_requested = why
            log.info("stopping: %s", why)
        self._runstop()

    def fail(self, failure: RuntimeFailure) -> None:
        """Stop trading at once for a reason found off Cerebro's thread (lease lost, feed fatal)."""
        if self.failure is None:
            self.failure = failure
            log.error("%s", failure.reason)
        self._runstop()

    def _runstop(self) -> None:
        if self._cerebro is not None:
            self._cerebro.runstop()

    def enforce(self) -> None:
        """Ask Cerebro again: a stop requested just before `run()` began is lost (run() clears the flag)."""
        if self.stopping:
            self._runstop()
