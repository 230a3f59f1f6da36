"""A real runtime and a real operator notify a loopback receiver; no URL or token leaks anywhere."""

from __future__ import annotations

import re
import time
from collections.abc import Callable
from typing import Any

import pytest
import sqlalchemy as sa
from kubernetes import client

from bot_operator.builders.names import pod_name
from bot_runtime.db.repository import BotRepository
from tests.operator.helpers import apply_bot, events, get_bot, get_pod, phase
from tests.support.bots import Bot, RuntimeProcess, spec_with
from tests.support.kube import wait_for
from tests.support.kubelet import report_failed
from tests.support.receiver import Receiver

pytestmark = [pytest.mark.cluster, pytest.mark.db]

TOKEN = "s3cr3t-t0ken-42"
NOTIFY = {"secretRef": {"name": "bot-notify"}}


def notify_env(receiver: Receiver, **extra: str) -> dict[str, str]:
    return {
        "BOTOPS_NOTIFY_URLS": receiver.url(TOKEN),
        "BOTOPS_NOTIFY_DIGEST_SECONDS": "0.5",
        "BOTOPS_NOTIFY_RETRY_DELAYS": "0.5,1,2,4",
        **extra,
    }


def test_paper_bot_notifies_start_fills_and_stop(
    make_bot: Callable[..., Bot],
    start_runtime: Callable[..., RuntimeProcess],
    repository: BotRepository,
    receiver: Receiver,
) -> None:
    bot = make_bot(spec_with(notifications=NOTIFY))
    runtime = start_runtime(bot, extra_env=notify_env(receiver))
    receiver.wait_for(lambda r: any(t.startswith("Started CustomStrategy") for t in r.titles()), 60)
    receiver.wait_for(lambda r: any("Position closed" in t or "Trading digest" in t for t in r.titles()), 120)
    runtime.terminate()
    receiver.wait_for(lambda r: "Stopped" in r.titles(), 10)  # flushed within the grace period
    started = next(m for m in receiver.messages if m["title"].startswith("Started"))
    assert started["message"].splitlines()[0] == f"{bot.namespace}/{bot.name} BTC/USDT"
    assert "binance BTC/USDT 1s" in started["message"] and "equity 10000.00" in started["message"]
    fills = [t for t in receiver.titles() if t.startswith(("Position", "Order filled", "Trading digest"))]
    assert any(re.search(r"(buy|sell) [0-9.]+ @ [0-9.]+, fee", t) or "digest" in t for t in fills)
    sent = [e for e in repository.events(bot.bot_id) if e.type == "notification"]
    assert sent and all(e.details and e.details["service"] == "JSON" and e.details["ok"] for e in sent)
    assert_no_secret(runtime.log(), repository, bot)


def test_trading_goes_on_while_the_channel_fails(
    make_bot: Callable[..., Bot],
    start_runtime: Callable[..., RuntimeProcess],
    repository: BotRepository,
    receiver: Receiver,
) -> None:
    receiver.status = 500
    bot = make_bot(spec_with(notifications=NOTIFY))
    runtime = start_runtime(bot, extra_env=notify_env(receiver))
    wait_for(lambda: len(repository.trades(bot.bot_id)) >= 2, 90, "trades while notifications fail")
    receiver.status = 200
    receiver.wait_for(lambda r: len(r.messages) >= 1, 30)  # retried deliveries arrive after recovery
    receiver.close()  # gone for good
    trades = len(repository.trades(bot.bot_id))
    wait_for(lambda: len(repository.trades(bot.bot_id)) > trades, 90, "more trades with the channel gone")
    code, metrics = runtime.http("/metrics")
    failed = re.findall(r'botops_notifications_failed_total\{event="[a-z_]+"\} ([0-9.]+)', metrics)
    assert code == 200 and sum(float(v) for v in failed) >= 1
    assert runtime.proc.poll() is None
    runtime.terminate()
    assert runtime.proc.returncode == 0


def assert_no_secret(log: str, repository: BotRepository, bot: Bot) -> None:
    with repository.session() as s:
        rows = " ".join(
            str(r)
            for r in s.execute(
                sa.text(
                    "SELECT t.*, e.message, e.details FROM trading_bots t LEFT JOIN bot_events e ON e.bot_id = t.id "
                    "WHERE t.id = :id"
                ),
                {"id": bot.bot_id},
            ).all()
        )
    haystacks = {
        "runtime log": log,
        "database rows": rows,
        "resource": str(bot.resource()),
        "events": str(events(bot.api, bot.namespace, bot.name)),
    }
    for where, text in haystacks.items():
        assert TOKEN not in text and "json://" not in text, f"a notification secret leaked into the {where}"


def test_operator_tells_once_that_a_crashing_bot_is_in_error(
    start_operator: Callable[..., Any],
    kube_client: client.ApiClient,
    namespace: str,
    receiver: Receiver,
) -> None:
    client.CoreV1Api(kube_client).create_namespaced_secret(
        namespace, {"metadata": {"name": "bot-notify"}, "stringData": {"urls": receiver.url(TOKEN)}}
    )
    operator = start_operator()
    spec = spec_with(notifications=NOTIFY, restartPolicy={"maxRestarts": 1, "initialDelaySeconds": 1})
    apply_bot(kube_client, namespace, "crasher", spec)
    for _ in range(2):
        first = wait_for(lambda: get_pod(kube_client, namespace, pod_name("crasher")), 30, "a pod")
        report_failed(kube_client, namespace, pod_name("crasher"), 2, "AuthenticationError: invalid key")
        wait_for(
            lambda f=first: (
                (p := get_pod(kube_client, namespace, pod_name("crasher"))) is None
                or p["metadata"]["uid"] != f["metadata"]["uid"]
                or phase(get_bot(kube_client, namespace, "crasher")) == "Error"
            ),
            30,
            "the failure handled",
        )
    wait_for(lambda: phase(get_bot(kube_client, namespace, "crasher")) == "Error", 30, "Error")
    receiver.wait_for(lambda r: "Bot in Error" in r.titles(), 20)
    time.sleep(6)  # proving a negative needs a window: three more reconcile passes, no repeat
    assert receiver.titles().count("Bot in Error") == 1
    error = next(m for m in receiver.messages if m["title"] == "Bot in Error")
    assert f"{namespace}/crasher BTC/USDT" in error["message"] and "restarts exhausted" in error["message"]
    assert TOKEN not in operator.log()


def test_a_missing_notifications_secret_is_reported_on_the_bot(
    start_operator: Callable[..., Any],
    kube_client: client.ApiClient,
    namespace: str,
) -> None:
    start_operator()
    apply_bot(kube_client, namespace, "lonely", spec_with(notifications={"secretRef": {"name": "no-such"}}))
    found = wait_for(
        lambda: [e for e in events(kube_client, namespace, "lonely") if e["reason"] == "NotificationsInvalid"],
        30,
        "the NotificationsInvalid event",
    )
    assert "spec.notifications.secretRef.name: Secret 'no-such' not found" in found[0]["message"]
    client.CoreV1Api(kube_client).create_namespaced_secret(
        namespace, {"metadata": {"name": "wrong-key"}, "stringData": {"hooks": "json://127.0.0.1:9/x"}}
    )
    apply_bot(kube_client, namespace, "mislabelled", spec_with(notifications={"secretRef": {"name": "wrong-key"}}))
    found = wait_for(
        lambda: [e for e in events(kube_client, namespace, "mislabelled") if e["reason"] == "NotificationsInvalid"],
        30,
        "the NotificationsInvalid event",
    )
    assert found[0]["message"] == "spec.notifications.secretRef.key: Secret 'wrong-key' has no key 'urls'"
    wait_for(lambda: get_pod(kube_client, namespace, pod_name("lonely")), 20, "the bot still runs")
