"""Backtest resources end to end (issue 19): the real operator runs each as a pod on the local node, the pod
backtests (on synthetic bars, or on the venue's history it downloads from the exchange double), writes the
whole result into the database, and the operator puts the summary in the status `kubectl get backtests` shows."""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
import sqlalchemy as sa
from kubernetes import client

from bot_operator.builders.backtest_pod import backtest_pod_name
from bot_runtime.api import constants as c
from bot_runtime.api.models import TradingBotSpec
from bot_runtime.backtest import run_backtest
from bot_runtime.db.repository import BotRepository
from botops_dev.controlplane import ControlPlane
from tests.e2e.conftest import Fleet
from tests.operator.helpers import apply_bot
from tests.support.bots import spec_with
from tests.support.kube import table_view, wait_for

pytestmark = [pytest.mark.cluster, pytest.mark.db]

BOT = spec_with(market__feed="synthetic", market__seed=11, market__timeframe="1m", suspended=True)


def apply_backtest(api: client.ApiClient, namespace: str, name: str, spec: dict[str, Any]) -> None:
    body = {"apiVersion": c.API_VERSION, "kind": c.BACKTEST_KIND, "metadata": {"name": name}, "spec": spec}
    client.CustomObjectsApi(api).create_namespaced_custom_object(c.GROUP, c.VERSION, namespace, c.BACKTEST_PLURAL, body)


def get_backtest(api: client.ApiClient, namespace: str, name: str) -> dict[str, Any]:
    objects = client.CustomObjectsApi(api)
    return dict(objects.get_namespaced_custom_object(c.GROUP, c.VERSION, namespace, c.BACKTEST_PLURAL, name))


def state(api: client.ApiClient, namespace: str, name: str) -> str | None:
    return (get_backtest(api, namespace, name).get("status") or {}).get("state")


def finished(api: client.ApiClient, namespace: str, name: str, generation: int = 1) -> dict[str, Any] | None:
    body = get_backtest(api, namespace, name)
    status = body.get("status") or {}
    done = status.get("observedGeneration") == generation and status.get("state") in ("Succeeded", "Failed")
    return status if done else None


def stored(repo: BotRepository, result_id: int) -> dict[str, Any]:
    with repo.session() as session:
        row = session.execute(sa.text("SELECT * FROM backtest_results WHERE id = :id"), {"id": result_id}).one()
    return dict(row._mapping)


def table(plane: ControlPlane, namespace: str) -> list[dict[str, Any]]:
    """What `kubectl get backtests` shows: the apiserver's Table view, a dict per row by column."""
    view = table_view(plane, f"/apis/{c.GROUP}/{c.VERSION}/namespaces/{namespace}/{c.BACKTEST_PLURAL}")
    columns = [col["name"] for col in view["columnDefinitions"]]
    return [dict(zip(columns, row["cells"], strict=True)) for row in view["rows"]]


def test_a_backtest_of_a_named_bot_waits_for_it_runs_and_reports_what_a_backtest_gives(
    start_fleet: Callable[..., Fleet],
    kube_client: client.ApiClient,
    control_plane: ControlPlane,
    repository: BotRepository,
    namespace: str,
) -> None:
    start_fleet()
    apply_backtest(kube_client, namespace, "sma", {"botRef": {"name": "sma-bot"}, "data": {"bars": 3000}})
    wait_for(lambda: state(kube_client, namespace, "sma") == "Pending", 30, "Pending")
    waiting = get_backtest(kube_client, namespace, "sma")["status"]["message"]
    assert waiting == f"waiting for TradingBot 'sma-bot' in namespace '{namespace}' (spec.botRef)"

    apply_bot(kube_client, namespace, "sma-bot", BOT)  # the periodic pass starts the waiting backtest
    status = wait_for(lambda: finished(kube_client, namespace, "sma"), 120, "the run's end")
    assert status["state"] == "Succeeded", status

    # the same figures as the backtest run here, in process, of the same spec over the same bars
    expected = run_backtest(TradingBotSpec.model_validate(BOT), bars=3000).metrics()
    summary = status["summary"]
    assert summary["trades"] == expected["trades"] > 0
    assert summary["totalReturnPct"] == pytest.approx(expected["totalReturnPct"], abs=1e-9)
    assert summary["maxDrawdownPct"] == pytest.approx(expected["maxDrawdownPct"], abs=1e-9)
    assert summary["bars"] == 3000 and "next bar's open" in summary["fillModel"]

    row = stored(repository, status["resultId"])  # the whole result is in the database
    assert (row["namespace"], row["name"], row["bot_name"], row["generation"]) == (namespace, "sma", "sma-bot", 1)
    assert len(row["result"]["trades"]) == expected["trades"] and len(row["result"]["equity"]) == 3000
    assert row["result"]["monthly"] and row["metrics"]["trades"] == expected["trades"]

    (shown,) = table(control_plane, namespace)
    assert (shown["State"], shown["Bot"], shown["Trades"]) == ("Succeeded", "sma-bot", expected["trades"])
    assert shown["Return"] == pytest.approx(expected["totalReturnPct"])

    # a changed spec runs again, as generation 2; the first run's row stays
    objects = client.CustomObjectsApi(kube_client)
    patch = {"spec": {"data": {"bars": 1500}, "fill": {"model": "close"}}}
    objects.patch_namespaced_custom_object(c.GROUP, c.VERSION, namespace, c.BACKTEST_PLURAL, "sma", patch)
    again = wait_for(lambda: finished(kube_client, namespace, "sma", generation=2), 120, "the second run")
    assert again["state"] == "Succeeded" and again["summary"]["bars"] == 1500
    assert "cheat-on-close" in again["summary"]["fillModel"] and again["resultId"] != status["resultId"]
    assert stored(repository, status["resultId"])["generation"] == 1


def test_a_backtest_on_the_venues_history_downloads_it_in_its_pod(
    start_fleet: Callable[..., Fleet],
    kube_client: client.ApiClient,
    namespace: str,
) -> None:
    fleet = start_fleet()
    end = datetime.now(UTC).replace(minute=0, second=0, microsecond=0) - timedelta(hours=1)
    data = {"source": "history", "from": (end - timedelta(days=1)).isoformat(), "to": end.isoformat()}
    bot = spec_with(market__timeframe="5m")  # a live-feed bot: its market names the venue's candles
    apply_backtest(kube_client, namespace, "day", {"bot": bot, "data": data})
    status = wait_for(lambda: finished(kube_client, namespace, "day"), 120, "the run's end")
    log = fleet.pod_log(namespace, backtest_pod_name("day"))
    assert status["state"] == "Succeeded", (status, log)
    assert status["summary"]["bars"] == 288  # a day of 5m candles, fetched from the venue by the pod
    assert "BTC/USDT: 288 new candles" in log and "gaps: none" in log
    assert status["summary"]["fillModel"].endswith("stakes are sized net of commission and slippage")
    assert "lot step" in status["summary"]["fillModel"]  # the venue's market rules came with the candles


def test_backtests_that_cannot_run_say_why(
    start_fleet: Callable[..., Fleet],
    kube_client: client.ApiClient,
    namespace: str,
) -> None:
    start_fleet()
    future = datetime.now(UTC) + timedelta(days=30)
    cases = {
        "both": ({"botRef": {"name": "x"}, "bot": BOT}, "exactly one"),
        "no-range": ({"bot": BOT, "data": {"source": "history"}}, "spec.data.from: required when"),
        "bad-bot": ({"bot": spec_with(market__exchange="binanse")}, "spec.bot.market.exchange: 'binanse' is not"),
        # valid, but the venue has no candles in the future: the pod's last line is the reason
        "future": (
            {
                "bot": BOT,
                "data": {
                    "source": "history",
                    "from": future.isoformat(),
                    "to": (future + timedelta(days=1)).isoformat(),
                },
            },
            "no BTC/USDT 1m candles of binance between",
        ),
    }
    for name, (spec, _) in cases.items():
        apply_backtest(kube_client, namespace, name, spec)
    for name, (_, said) in cases.items():
        status = wait_for(lambda n=name: finished(kube_client, namespace, n), 120, f"{name} to end")
        assert status["state"] == "Failed" and said in status["message"], (name, status)
