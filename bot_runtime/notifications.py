"""Notifications: a bot tells its owner what happened, on the channels they already use (apprise).

One module for the runtime and the operator. `notify()` never blocks and never raises: messages go
to a bounded queue drained by a background worker, which
- groups bursts: fills and positions within a window become one digest message;
- sends an identical error once, then only a count of its repeats when the quiet period ends;
- retries a failed delivery with back-off, then drops it with a warning and a metric;
- records every delivery in bot_events (type, target service, ok or failed), without the URL.
Apprise URLs hold tokens: they are never logged (a filter redacts them from apprise's own logs too),
only the target's service and a masked identifier.
"""

from __future__ import annotations

import hashlib
import logging
import queue
import re
import threading
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import parse_qsl, urlsplit

import apprise
from prometheus_client import CollectorRegistry, Counter

from bot_runtime.api.models import NOTIFICATION_EVENTS
from bot_runtime.redaction import REDACTOR

log = logging.getLogger(__name__)

OPT_IN = {"daily_summary"}  # sent only when listed in spec.notifications.events
SEVERITIES = ("info", "warning", "error")
GROUPED = {"order_filled", "position_opened", "position_closed"}


class NotificationConfigError(ValueError):
    """A notification setting cannot work; the message names the field and what is allowed."""


@dataclass(frozen=True)
class Target:
    service: str  # e.g. "Telegram"
    masked: str  # a stable identifier without any secret: service#hash

    def __str__(self) -> str:
        return self.masked


def parse_urls(text: str, field: str = "notifications secret") -> tuple[list[str], list[Target]]:
    """Apprise URLs, one per line (or separated by spaces/commas); an unparsable one is an error."""
    urls = [u for u in re.split(r"[\s,]+", text) if u]
    if not urls:
        raise NotificationConfigError(f"{field}: holds no apprise URL (one per line, e.g. tgram://TOKEN/CHAT_ID)")
    targets = []
    for index, url in enumerate(urls):
        plugin = apprise.Apprise.instantiate(url, suppress_exceptions=True)
        if plugin is None:
            scheme = url.split("://", 1)[0] if "://" in url else "(no scheme)"
            raise NotificationConfigError(
                f"{field}: URL {index + 1} (scheme {scheme!r}) is not an apprise URL apprise can use; see "
                "https://github.com/caronc/apprise/wiki for the services and their URL forms"
            )
        targets.append(target_of(plugin, url))
    return urls, targets


def target_of(plugin: Any, url: str) -> Target:
    service = str(plugin.service_name or plugin.__class__.__name__)
    return Target(service, mask(service, url))


def mask(service: str, url: str) -> str:
    return f"{service}#{hashlib.sha256(url.encode()).hexdigest()[:8]}"


def secrets_of(urls: Iterable[str]) -> set[str]:
    """Every part of the URLs that could be a credential (for redaction): passwords and query values whatever
    their length, user names, path and host segments of 6 characters or more (shorter ones are words: "bot")."""
    found: set[str] = set()
    for url in urls:
        found.add(url)
        parts = urlsplit(url)
        found |= {parts.password} if parts.password else set()
        found |= {
            seg for seg in (parts.netloc + parts.path).replace("@", "/").replace(":", "/").split("/") if len(seg) >= 6
        }
        found |= {v for _, v in parse_qsl(parts.query) if v}
    return found


logging.getLogger("apprise").addFilter(REDACTOR)  # also when no handler of ours is installed (library use)
logging.getLogger("apprise").setLevel(logging.WARNING)


@dataclass(frozen=True)
class Message:
    type: str
    severity: str
    title: str
    body: str


@dataclass
class Settings:
    events: frozenset[str] | None = None  # None: all
    min_severity: str = "info"
    digest_seconds: float = 30.0
    repeat_quiet_seconds: float = 600.0
    retry_delays: tuple[float, ...] = (1.0, 2.0, 4.0, 8.0, 16.0)
    queue_size: int = 1000

    def wants(self, event_type: str, severity: str) -> bool:
        if event_type not in NOTIFICATION_EVENTS:
            raise ValueError(f"unknown notification event type {event_type!r}")
        if self.events is None and event_type in OPT_IN:
            return False
        if self.events is not None and event_type not in self.events:
            return False
        return SEVERITIES.index(severity) >= SEVERITIES.index(self.min_severity)


@dataclass
class _Repeat:
    first_sent: float
    count: int = 0


@dataclass
class _Digest:
    opened: float
    messages: list[Message] = field(default_factory=list)


Recorder = Callable[[str, str, str, bool], None]  # (event type, target service, target, ok)


class Notifier:
    """Sends messages about one bot (or one operator) to its apprise targets."""

    def __init__(
        self,
        urls: list[str],
        *,
        subject: str,
        settings: Settings | None = None,
        recorder: Recorder | None = None,
        metrics: NotificationMetrics | None = None,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.subject = subject  # "namespace/bot SYMBOL"
        self.settings = settings or Settings()
        self.recorder = recorder
        self.clock = clock
        self.apprise = apprise.Apprise()
        self.targets: list[Target] = []
        for url in urls:
            if self.apprise.add(url):
                self.targets.append(target_of(list(self.apprise)[-1], url))
        REDACTOR.add(secrets_of(urls))
        self._queue: queue.Queue[Message | None] = queue.Queue(maxsize=self.settings.queue_size)
        self._repeats: dict[tuple[str, str], _Repeat] = {}
        self._digest: _Digest | None = None
        self._idle = threading.Event()
        self._idle.set()
        metrics = metrics or NotificationMetrics(CollectorRegistry())
        self.sent, self.failed, self.dropped = metrics.sent, metrics.failed, metrics.dropped
        self._worker = threading.Thread(target=self._run, name="notifier", daemon=True)
        self._stopping = False
        if self.targets:
            self._worker.start()

    # ------------------------------------------------------------------------------- producers

    def notify(self, event_type: str, title: str, lines: Iterable[str] = (), severity: str = "info") -> None:
        """Queue a message; never blocks, never raises."""
        if not self.targets or not self.settings.wants(event_type, severity):
            return
        body = "\n".join([self.subject, *lines])
        message = Message(event_type, severity, f"{title}", body)
        try:
            self._idle.clear()
            self._queue.put_nowait(message)
        except queue.Full:
            self.dropped.labels(event=event_type).inc()
            log.warning("notification queue full: %s dropped", event_type)

    def close(self, timeout: float) -> None:
        """Deliver what is queued (digests included) within `timeout` seconds, then stop."""
        if not self._worker.is_alive():
            return
        self._stopping = True
        self._queue.put(None)
        self._worker.join(timeout)

    def wait_idle(self, timeout: float) -> bool:
        return self._idle.wait(timeout)

    # ---------------------------------------------------------------------------------- worker

    def _run(self) -> None:
        while True:
            wait = 1.0
            if self._digest is not None:
                wait = max(0.0, self._digest.opened + self.settings.digest_seconds - self.clock())
            item: Message | bool | None
            try:
                item = self._queue.get(timeout=min(wait, 1.0))
            except queue.Empty:
                item = False  # no message: only the digest window may be due
            if item is None:  # stop: send what is pending, now
                self._flush_digest()
                self._flush_repeats()
                self._idle.set()
                return
            if isinstance(item, Message):
                self._handle(item)
            if self._digest is not None and self.clock() >= self._digest.opened + self.settings.digest_seconds:
                self._flush_digest()
            if self._queue.empty() and self._digest is None:
                self._idle.set()

    def _handle(self, message: Message) -> None:
        if message.type in GROUPED:
            if self._digest is None:
                self._digest = _Digest(self.clock())
            self._digest.messages.append(message)
            return
        if message.severity != "info":
            key = (message.type, message.body)
            repeat = self._repeats.get(key)
            now = self.clock()
            if repeat is not None and now - repeat.first_sent < self.settings.repeat_quiet_seconds:
                repeat.count += 1
                return
            if repeat is not None and repeat.count:
                self._send(
                    Message(
                        message.type,
                        message.severity,
                        f"{message.title} (repeated {repeat.count} more times before this)",
                        message.body,
                    )
                )
                self._repeats[key] = _Repeat(now)
                return
            self._repeats[key] = _Repeat(now)
        self._send(message)

    def _flush_digest(self) -> None:
        digest, self._digest = self._digest, None
        if not digest or not digest.messages:
            return
        if len(digest.messages) == 1:
            self._send(digest.messages[0])
            return
        counts: dict[str, int] = {}
        for m in digest.messages:
            counts[m.type] = counts.get(m.type, 0) + 1
        summary = ", ".join(f"{n} {t.replace('_', ' ')}" for t, n in counts.items())
        details = [m.title for m in digest.messages[-10:]]
        more = len(digest.messages) - len(details)
        lines = [f"{len(digest.messages)} events in {self.settings.digest_seconds:.0f} s: {summary}", *details]
        if more:
            lines.append(f"... and {more} earlier")
        first = digest.messages[0]
        body = "\n".join([first.body.split("\n", 1)[0], *lines])
        self._send(Message("order_filled", "info", f"Trading digest: {summary}", body))

    def _flush_repeats(self) -> None:
        for (event_type, body), repeat in list(self._repeats.items()):
            if repeat.count:
                self._send(
                    Message(
                        event_type,
                        "warning",
                        f"{event_type.replace('_', ' ')} repeated {repeat.count} more times",
                        body,
                    )
                )
        self._repeats.clear()

    def _send(self, message: Message) -> None:
        kind = {
            "info": apprise.NotifyType.INFO,
            "warning": apprise.NotifyType.WARNING,
            "error": apprise.NotifyType.FAILURE,
        }[message.severity]
        for target, plugin in zip(self.targets, list(self.apprise), strict=True):
            ok = False
            for attempt, delay in enumerate((0.0, *self.settings.retry_delays)):
                if delay:
                    if self._stopping and attempt > 1:
                        break  # shutting down: one retry only, within the grace period
                    time.sleep(delay)
                try:
                    ok = bool(plugin.notify(body=message.body, title=message.title, notify_type=kind))
                except Exception as exc:  # a broken channel must never reach trading
                    log.warning("notification to %s raised %s", target, type(exc).__name__)
                if ok:
                    break
            (self.sent if ok else self.failed).labels(event=message.type).inc()
            if not ok:
                log.warning("notification %s to %s failed after retries; dropped", message.type, target)
            if self.recorder is not None:
                try:
                    self.recorder(message.type, target.service, target.masked, ok)
                except Exception as exc:
                    log.warning("could not record the notification: %s", type(exc).__name__)


class NotificationMetrics:
    """The counters of a process's notifiers (one set per registry, shared by all its notifiers)."""

    def __init__(self, registry: CollectorRegistry) -> None:
        self.sent = Counter("botops_notifications_sent", "Notifications delivered", ["event"], registry=registry)
        self.failed = Counter(
            "botops_notifications_failed", "Notifications given up after retries", ["event"], registry=registry
        )
        self.dropped = Counter(
            "botops_notifications_dropped", "Notifications dropped: queue full", ["event"], registry=registry
        )


def settings_from_spec(spec: Any, **overrides: Any) -> Settings:
    """Notification settings of a TradingBot spec's `notifications` block."""
    events = frozenset(spec.events) if spec is not None and spec.events is not None else None
    severity = spec.min_severity if spec is not None else "info"
    return Settings(events=events, min_severity=severity, **overrides)
