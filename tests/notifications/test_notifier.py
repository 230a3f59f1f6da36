"""The notifier with real apprise against a loopback receiver: grouping, repeats, retries, no blocking."""

from __future__ import annotations

import pytest

from bot_runtime.notifications import NotificationConfigError, Notifier, Settings, parse_urls
from tests.support.receiver import Receiver


def notifier(receiver: Receiver, recorded: list[tuple[str, str, bool]] | None = None, **settings: object) -> Notifier:
    options = {"digest_seconds": 0.5, "retry_delays": (0.2, 0.2), **settings}

    def record(event: str, service: str, target: str, ok: bool) -> None:
        if recorded is not None:
            recorded.append((event, service, ok))

    return Notifier(
        [receiver.url()],
        subject="trading/sma BTC/USDT",
        settings=Settings(**options),  # type: ignore
        recorder=record,
    )


def test_a_burst_of_fills_becomes_one_digest(receiver: Receiver) -> None:
    n = notifier(receiver)
    for i in range(50):
        n.notify("order_filled", f"Order filled: buy 0.01 @ {100 + i}")
    receiver.wait_for(lambda r: len(r.messages) >= 1)
    n.close(timeout=5)
    assert len(receiver.messages) == 1
    assert receiver.titles()[0] == "Trading digest: 50 order filled"
    body = receiver.bodies()[0]
    assert body.startswith("trading/sma BTC/USDT") and "50 events" in body and "@ 149" in body


def test_a_single_fill_is_sent_as_itself(receiver: Receiver) -> None:
    n = notifier(receiver)
    n.notify("position_opened", "Position opened: buy 0.5 @ 101", ["position 0.5"])
    receiver.wait_for(lambda r: len(r.messages) == 1)
    n.close(timeout=5)
    assert receiver.titles() == ["Position opened: buy 0.5 @ 101"]
    assert receiver.auth == ["bot:s3cr3t-t0ken-42"]  # the token really is used, just never shown


def test_a_repeating_error_is_sent_once_then_summarised(receiver: Receiver) -> None:
    n = notifier(receiver, repeat_quiet_seconds=60)
    for _ in range(20):
        n.notify("risk_limit", "Order refused by a risk limit", ["position would be 2, max 1"], "warning")
    n.notify("order_rejected", "Order rejected", ["insufficient funds"], "warning")
    receiver.wait_for(lambda r: len(r.messages) == 2)
    n.close(timeout=5)  # at shutdown, what was held back is summarised once
    assert receiver.titles() == ["Order refused by a risk limit", "Order rejected", "risk limit repeated 19 more times"]


def test_failed_deliveries_are_retried_then_counted(receiver: Receiver) -> None:
    recorded: list[tuple[str, str, bool]] = []
    n = notifier(receiver, recorded, retry_delays=(0.3, 0.6, 1.2))
    receiver.status = 500
    n.notify("started", "Started CustomStrategy (paper)")
    receiver.wait_for(lambda r: r.attempts >= 2)
    receiver.status = 200  # the channel comes back during the retries
    receiver.wait_for(lambda r: len(r.messages) == 1)
    receiver.status = 500  # and goes away for good
    n.notify("stopped", "Stopped", ["stopped by SIGTERM"])
    n.wait_idle(10)
    n.close(timeout=10)
    assert receiver.titles() == ["Started CustomStrategy (paper)"]
    assert recorded == [("started", "JSON", True), ("stopped", "JSON", False)]
    assert n.failed.labels(event="stopped")._value.get() == 1
    assert n.sent.labels(event="started")._value.get() == 1


def test_notify_never_blocks_the_caller(receiver: Receiver) -> None:
    n = notifier(receiver, queue_size=5)
    receiver.hold.clear()  # the channel hangs
    n.notify("started", "first")  # taken by the worker, which now waits on the channel
    receiver.wait_for(lambda r: n._queue.empty())
    for i in range(20):  # the queue fills up; notify() drops and counts instead of waiting
        n.notify("stopped", f"message {i}")
    assert n.dropped.labels(event="stopped")._value.get() >= 14
    receiver.hold.set()
    n.close(timeout=10)


def test_severity_and_event_filters() -> None:
    settings = Settings(events=frozenset({"order_rejected", "bot_error"}), min_severity="warning")
    assert settings.wants("bot_error", "error") and settings.wants("order_rejected", "warning")
    assert not settings.wants("started", "info") and not settings.wants("order_rejected", "info")
    assert not Settings().wants("daily_summary", "info")  # opt-in
    with pytest.raises(ValueError, match="unknown notification event type"):
        Settings().wants("moon", "info")


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("", "holds no apprise URL"),
        ("not a url", "URL 1 (scheme '(no scheme)') is not an apprise URL"),
        ("tgram://123:ABC/456\nfoo://bar", "URL 2 (scheme 'foo') is not an apprise URL"),
    ],
)
def test_bad_targets_are_explained(text: str, message: str) -> None:
    with pytest.raises(NotificationConfigError, match=message.replace("(", r"\(").replace(")", r"\)")):
        parse_urls(text, "spec.notifications.secretRef")
