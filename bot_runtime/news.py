"""What a run says, and where: the status message (one sentence, in status.runtime), the bot's
history (bot_events, through the journal) and its owner's channels (apprise notifications)."""

from __future__ import annotations

import logging
from typing import Any

from bot_runtime.context import RunContext
from bot_runtime.control import EXIT_LEASE_LOST, EXIT_OK, Outcome
from bot_runtime.notifications import (
    NotificationConfigError,
    NotificationMetrics,
    Notifier,
    parse_urls,
    settings_from_spec,
)
from bot_runtime.shutdown import Shutdown

log = logging.getLogger("bot_runtime")


class BotNews:
    def __init__(self, ctx: RunContext) -> None:
        self.ctx = ctx
        self.message: str | None = None
        self.notifier: Notifier | None = None

    def note(self, message: str) -> None:
        """The runtime's last notable message (status.runtime.message)."""
        self.message = message[:500]

    def record(self, type: str, message: str, severity: str = "info", details: dict[str, Any] | None = None) -> None:
        self.ctx.journal.event(type, message, severity, details)

    def tell(self, event: str, title: str, lines: list[str], severity: str = "info") -> None:
        if self.notifier is not None:
            self.notifier.notify(event, title, lines, severity)

    def start_notifier(self, shutdown: Shutdown) -> None:
        """apprise targets from the bot's notifications Secret (BOTOPS_NOTIFY_URLS, set by the pod)."""
        spec, settings = self.ctx.spec.notifications, self.ctx.settings
        shutdown.on_stop("saying goodbye", self._goodbye)
        if spec is None or not settings.notify_urls.strip():
            return
        try:
            urls, targets = parse_urls(settings.notify_urls, f"Secret {spec.secret_ref.name} key {spec.secret_ref.key}")
        except NotificationConfigError as exc:
            log.warning("notifications off: %s", exc)
            self.record("notifications_invalid", str(exc), "warning")
            return
        delays = tuple(float(d) for d in settings.notify_retry_delays.split(",") if d.strip())
        self.notifier = Notifier(
            urls,
            subject=f"{settings.namespace}/{settings.bot_name} {self.ctx.spec.market.symbol}",
            settings=settings_from_spec(spec, digest_seconds=settings.notify_digest_seconds, retry_delays=delays),
            recorder=self._record_delivery,
            metrics=NotificationMetrics(self.ctx.metrics.registry),
        )
        log.info("notifications to %s", ", ".join(str(t) for t in targets))

    def _record_delivery(self, event: str, service: str, target: str, ok: bool) -> None:
        self.record(
            "notification",
            f"{event} to {service}: {'ok' if ok else 'failed'}",
            "info" if ok else "warning",
            {"event": event, "service": service, "target": target, "ok": ok},
        )

    def _goodbye(self, outcome: Outcome) -> None:
        if outcome.code == EXIT_OK:
            self.tell("stopped", "Stopped", [outcome.reason])
        elif outcome.code == EXIT_LEASE_LOST:
            self.tell("lease_lost", "Trading stopped: lease lost", [outcome.reason], "error")
        else:
            self.tell("fatal_error", "Bot stopped on an error", [outcome.reason], "error")
        if self.notifier is not None:
            self.notifier.close(timeout=min(5.0, self.ctx.settings.stop_timeout_seconds))
