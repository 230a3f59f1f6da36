"""What the operator tells bot owners: the news a dead runtime cannot send (Error, Degraded, recovered,
pod replaced). Targets are the bot's own notifications Secret plus an optional fleet-wide default
Secret in the operator's namespace; problems with them are reported on the bot, once."""

from __future__ import annotations

import base64
import hashlib
import logging
import time

from kubernetes.client.exceptions import ApiException
from prometheus_client import CollectorRegistry

from bot_operator.kube import Cluster
from bot_operator.settings import OperatorSettings
from bot_runtime.api.models import TradingBot, TradingBotSpec
from bot_runtime.db.repository import BotRepository
from bot_runtime.notifications import (
    NotificationConfigError,
    NotificationMetrics,
    Notifier,
    Settings,
    parse_urls,
    settings_from_spec,
)

log = logging.getLogger(__name__)

PHASE_NEWS = {  # phase reached -> (event type, severity, title)
    "Error": ("bot_error", "error", "Bot in Error"),
    "Degraded": ("bot_degraded", "warning", "Bot degraded"),
}


class OwnerAlerts:
    def __init__(
        self, settings: OperatorSettings, cluster: Cluster, repo: BotRepository, registry: CollectorRegistry
    ) -> None:
        self.settings, self.cluster, self.repo = settings, cluster, repo
        self.metrics = NotificationMetrics(registry)
        self._notifiers: dict[tuple[str, str], tuple[str, Notifier]] = {}
        self._checked: dict[tuple[str, str], tuple[int, float]] = {}
        self._problems: dict[tuple[str, str], str] = {}
        self._default: tuple[float, list[str]] = (0.0, [])

    def _secret_value(self, namespace: str, name: str, key: str, field: str) -> str:
        try:
            secret = self.cluster.core.read_namespaced_secret(name, namespace)
        except ApiException as exc:
            if exc.status == 404:
                raise NotificationConfigError(
                    f"{field}.name: Secret {name!r} not found in namespace {namespace!r}"
                ) from exc
            raise
        data = secret.data or {}
        if key not in data:
            raise NotificationConfigError(f"{field}.key: Secret {name!r} has no key {key!r}")
        return base64.b64decode(data[key]).decode()

    def _default_urls(self) -> list[str]:
        name = self.settings.notifications_default_secret
        if not name:
            return []
        loaded, urls = self._default
        if time.monotonic() - loaded < 60:
            return urls
        try:
            urls, _ = parse_urls(
                self._secret_value(self.settings.lease_namespace(), name, "urls", "notifications.defaultSecret"),
                "notifications.defaultSecret",
            )
        except NotificationConfigError as exc:
            log.warning("fleet-wide notifications off: %s", exc)
            urls = []
        self._default = (time.monotonic(), urls)
        return urls

    def _notifier(self, bot: TradingBot, spec: TradingBotSpec | None, bot_id: int | None) -> Notifier | None:
        key = (bot.namespace, bot.name)
        urls = list(self._default_urls())
        settings = Settings(digest_seconds=1.0)
        if spec is not None and spec.notifications is not None:
            ref = spec.notifications.secret_ref
            field = "spec.notifications.secretRef"
            try:
                own, _ = parse_urls(self._secret_value(bot.namespace, ref.name, ref.key, field), field)
                urls += own
                self._problems.pop(key, None)
            except NotificationConfigError as exc:
                self._report_problem(bot, bot_id, str(exc))
            settings = settings_from_spec(spec.notifications, digest_seconds=1.0)
        if not urls:
            return None
        fingerprint = hashlib.sha256("\n".join([*urls, repr(settings)]).encode()).hexdigest()
        cached = self._notifiers.get(key)
        if cached is not None and cached[0] == fingerprint:
            return cached[1]
        if cached is not None:
            cached[1].close(timeout=1)

        def record(event: str, service: str, target: str, ok: bool) -> None:
            if bot_id is not None:
                self.repo.record_event(
                    bot_id,
                    "operator",
                    "notification",
                    f"{event} to {service}: {'ok' if ok else 'failed'}",
                    severity="info" if ok else "warning",
                    details={"event": event, "service": service, "target": target, "ok": ok},
                )

        symbol = spec.market.symbol if spec is not None else ""
        notifier = Notifier(
            urls, subject=f"{bot.ref} {symbol}".strip(), settings=settings, recorder=record, metrics=self.metrics
        )
        self._notifiers[key] = (fingerprint, notifier)
        return notifier

    def _report_problem(self, bot: TradingBot, bot_id: int | None, problem: str) -> None:
        key = (bot.namespace, bot.name)
        if self._problems.get(key) == problem:
            return
        self._problems[key] = problem
        log.warning("TradingBot %s/%s notifications: %s", key[0], key[1], problem)
        self.cluster.event(bot, "Warning", "NotificationsInvalid", problem)
        if bot_id is not None:
            self.repo.record_event(bot_id, "operator", "notifications_invalid", problem, severity="warning")

    def phase_changed(
        self,
        bot: TradingBot,
        spec: TradingBotSpec | None,
        bot_id: int | None,
        previous: str | None,
        phase: str,
        message: str,
    ) -> None:
        news = PHASE_NEWS.get(phase)
        if news is None and phase == "Running" and previous in ("Degraded", "Error"):
            news = ("bot_recovered", "info", "Bot recovered")
        if news is not None:
            self.send(bot, spec, bot_id, news[0], news[2], [message], news[1])

    def send(
        self,
        bot: TradingBot,
        spec: TradingBotSpec | None,
        bot_id: int | None,
        event: str,
        title: str,
        lines: list[str],
        severity: str = "info",
    ) -> None:
        try:
            notifier = self._notifier(bot, spec, bot_id)
        except ApiException as exc:
            log.warning("cannot read notification targets: %s", exc.reason)
            return
        if notifier is not None:
            notifier.notify(event, title, lines, severity)

    def check(self, bot: TradingBot, spec: TradingBotSpec | None, bot_id: int | None) -> None:
        """Read the bot's targets (each minute, or when the spec changes), so a broken setting is
        reported without waiting for news."""
        key, generation = (bot.namespace, bot.name), bot.metadata.generation
        last = self._checked.get(key)
        if last is not None and last[0] == generation and time.monotonic() - last[1] < 60:
            return
        self._checked[key] = (generation, time.monotonic())
        if spec is not None and spec.notifications is not None:
            try:
                self._notifier(bot, spec, bot_id)
            except ApiException as exc:
                log.warning("cannot read notification targets: %s", exc.reason)

    def forget(self, namespace: str, name: str) -> None:
        self._checked.pop((namespace, name), None)
        cached = self._notifiers.pop((namespace, name), None)
        if cached is not None:
            cached[1].close(timeout=5)

    def close(self) -> None:
        for _, notifier in self._notifiers.values():
            notifier.close(timeout=5)
