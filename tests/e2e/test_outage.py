"""A 90 s database outage under the whole system: the operator and every runtime lose PostgreSQL at once.

Every bot keeps running (no exit, no pod replaced, no restart spent), adds no exposure, still protects its
position (a stop-loss fires during the outage), and every trade of the outage is in bot_trades afterwards.
The operator does not show Ready while it cannot know.
"""

from __future__ import annotations

import json
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from kubernetes import client

from bot_operator.builders.names import pod_name
from bot_runtime.db.repository import BotRepository
from botops_dev.controlplane import ControlPlane
from tests.e2e.conftest import start_local_node, stop_local_node
from tests.operator.helpers import apply_bot, condition, get_bot, get_pod
from tests.support.bots import spec_with
from tests.support.fake_exchange import FakeExchange
from tests.support.kube import wait_for
from tests.support.operator import OperatorProcess
from tests.support.tcp_proxy import CuttableProxy, pg_target, via_proxy

pytestmark = [pytest.mark.cluster, pytest.mark.db]

OUTAGE = 90.0


@pytest.fixture
def proxy(migrated_database_url: str) -> Iterator[CuttableProxy]:
    cut = CuttableProxy(pg_target(migrated_database_url))
    yield cut
    cut.close()


@pytest.fixture
def node(control_plane: ControlPlane, namespace: str, tmp_path: Path) -> Iterator[subprocess.Popen[bytes]]:
    process = start_local_node(control_plane, namespace, tmp_path)
    yield process
    stop_local_node(process)


def test_a_90s_database_outage_leaves_every_bot_running_and_loses_no_trade(
    control_plane: ControlPlane,
    migrated_database_url: str,
    repository: BotRepository,
    kube_client: client.ApiClient,
    namespace: str,
    tmp_path: Path,
    fake_exchange: FakeExchange,
    proxy: CuttableProxy,
    node: subprocess.Popen[bytes],
    user_id: int,
) -> None:
    step_ms = (time.time() + 30) * 1000  # the market steps up once both bots are live: one entry each
    # Falling before the step (a flat market never crosses: backtrader's CrossOver needs fast below slow first).
    fake_exchange.price_fn = lambda open_ms: 101.0 if open_ms >= step_ms else 99.0 - (open_ms - step_ms) / 1e6
    runtime_env = {"BOTOPS_EXCHANGE_API_URL": fake_exchange.url}
    operator = OperatorProcess(
        control_plane,
        via_proxy(migrated_database_url, proxy.port),
        namespace,
        tmp_path,
        user_id=user_id,
        extra_env={"BOTOPS_RUNTIME_ENV": json.dumps(runtime_env), "BOTOPS_REPLACE_STALE_AFTER_SECONDS": "30"},
    )
    try:
        names = ["outage-a", "outage-b"]
        holder = {
            "entry_logic": {"name": "sma_crossover", "params": {"fast_period": 3, "slow_period": 8}},
            "exit_logic": [{"name": "stop_loss", "params": {"stop_loss_pct": 0.05}}],
            "exit_on_opposite_signal": False,
            "stake": 0.5,
        }
        for name in names:
            apply_bot(
                kube_client,
                namespace,
                name,
                spec_with(
                    strategy={"type": "CustomStrategy", "params": holder},
                    restartPolicy={"maxRestarts": 5, "initialDelaySeconds": 1},
                ),
            )
        bot_ids: dict[str, int] = {}
        for name in names:
            bot = wait_for(
                lambda n=name: (b := get_bot(kube_client, namespace, n)) and (b.get("status") or {}).get("botId") and b,
                60,
                f"{name} registered",
            )
            bot_ids[name] = int(bot["status"]["botId"])
            wait_for(
                lambda i=bot_ids[name]: [t for t in repository.trades(i) if t.side == "buy"], 120, f"{name} bought"
            )
            wait_for(
                lambda n=name: condition(get_bot(kube_client, namespace, n), "Ready").get("status") == "True",
                60,
                f"{name} Ready",
            )
        pods = {n: get_pod(kube_client, namespace, pod_name(n))["metadata"]["uid"] for n in names}  # type: ignore[index]

        before = {n: pod_log(tmp_path, namespace, n) for n in names}
        proxy.cut()
        cut_at = time.monotonic()
        fake_exchange.price_fn = lambda open_ms: 90.0  # -10 %: both stop-losses fire while the database is away
        for name in names:
            wait_for(
                lambda n=name: condition(get_bot(kube_client, namespace, n), "Ready").get("status") == "Unknown",
                60,
                f"{name} not Ready while the database is away",
            )
        while time.monotonic() - cut_at < OUTAGE:  # the whole outage: nothing may restart or add exposure
            for name in names:
                status = get_bot(kube_client, namespace, name)["status"]  # type: ignore[index]
                assert int(status.get("restarts") or 0) == 0, status
                assert get_pod(kube_client, namespace, pod_name(name))["metadata"]["uid"] == pods[name]  # type: ignore[index]
                assert status["runtime"].get("tradingState") in (None, "active", "reducing")
            time.sleep(2)
        outage_logs = {n: pod_log(tmp_path, namespace, n) for n in names}
        for name, log in outage_logs.items():
            during = log[len(before[name]) :]
            assert "trading state reducing: the database is unreachable" in during, name
            assert "stop_loss: stop loss at" in during, f"{name}'s stop-loss did not fire during the outage"
            assert ": buy " not in during, f"{name} added exposure during the outage"
        proxy.restore()

        for name in names:
            made = {
                line.split("trade ")[1].split(":")[0] for line in outage_logs[name].splitlines() if " trade bt" in line
            }
            wait_for(
                lambda i=bot_ids[name], m=made: m <= {t.client_order_id for t in repository.trades(i)},
                60,
                f"every trade {name} made, in bot_trades",
            )
            try:
                wait_for(
                    lambda n=name: condition(get_bot(kube_client, namespace, n), "Ready").get("status") == "True",
                    90,
                    f"{name} Ready again",
                )
            except AssertionError as exc:
                raise AssertionError(f"{exc}: {get_bot(kube_client, namespace, name)['status']}") from None
            status = get_bot(kube_client, namespace, name)["status"]  # type: ignore[index]
            assert int(status.get("restarts") or 0) == 0
            assert get_pod(kube_client, namespace, pod_name(name))["metadata"]["uid"] == pods[name]  # type: ignore[index]
    finally:
        operator.close()


def pod_log(tmp_path: Path, namespace: str, name: str) -> str:
    path = tmp_path / "node" / "logs" / f"{namespace}_{pod_name(name)}.log"
    return path.read_text(errors="replace") if path.exists() else ""
