"""The main job end to end: rows and manifests become bot pods that really run and trade."""

from __future__ import annotations

import itertools
import os
import signal
import subprocess
import time
from collections.abc import Callable
from pathlib import Path

import pytest
from kubernetes import client

from bot_operator.builders.names import pod_name
from bot_runtime.db.repository import BotRepository
from botops_dev.controlplane import ControlPlane
from tests.e2e.conftest import Fleet
from tests.operator.helpers import condition, get_bot, get_pod, insert_row, phase, sql
from tests.support.bots import spec_with
from tests.support.kube import wait_for

pytestmark = [pytest.mark.cluster, pytest.mark.db]

FAST = spec_with(restartPolicy={"maxRestarts": 5, "initialDelaySeconds": 1, "factor": 2, "maxDelaySeconds": 10})


def ready(api: client.ApiClient, namespace: str, name: str) -> bool:
    return condition(get_bot(api, namespace, name), "Ready").get("status") == "True"


def runtime_pids(bot: str) -> list[int]:
    """Processes whose environment names this bot (the local node's runtime processes)."""
    pids = []
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                environ = (entry / "environ").read_bytes().split(b"\0")
            except OSError:
                continue
            if f"BOTOPS_BOT_NAME={bot}".encode() in environ:
                pids.append(int(entry.name))
    return pids


def assert_never_two_runtimes(repo: BotRepository, bot_id: int) -> None:
    runs = repo.runs(bot_id)
    for earlier, later in itertools.pairwise(runs):
        assert earlier.stopped_at is not None and earlier.stopped_at <= later.started_at, (
            f"run {earlier.id} ({earlier.started_at}-{earlier.stopped_at}) overlaps run {later.id} "
            f"(from {later.started_at})"
        )


def test_row_runs_trades_rolls_out_and_is_disabled(
    start_fleet: Callable[..., Fleet],
    repository: BotRepository,
    kube_client: client.ApiClient,
    namespace: str,
    user_id: int,
) -> None:
    start_fleet()
    row_id = insert_row(repository, user_id, "e2e row", FAST)
    name = f"e2e-row-{row_id}"
    wait_for(lambda: ready(kube_client, namespace, name), 120, "Ready=True")
    row = repository.get_bot(row_id)
    assert row is not None and row.status == "running" and row.last_heartbeat is not None
    assert get_bot(kube_client, namespace, name)["status"]["runtime"]["feedState"] == "LIVE"
    first_pod = get_pod(kube_client, namespace, pod_name(name))["metadata"]["uid"]

    sql(repository, "UPDATE trading_bots SET risk_config = '{\"max_open_orders\": 3}' WHERE id = :id", id=row_id)
    wait_for(
        lambda: (
            (p := get_pod(kube_client, namespace, pod_name(name))) is not None and p["metadata"]["uid"] != first_pod
        ),
        90,
        "the replacement pod",
    )
    wait_for(
        lambda: (
            ready(kube_client, namespace, name)
            and get_bot(kube_client, namespace, name)["status"]["runtime"]["generation"] == 2
        ),
        120,
        "Ready on generation 2",
    )
    assert len(repository.runs(row_id)) == 2
    assert_never_two_runtimes(repository, row_id)

    sql(repository, "UPDATE trading_bots SET enabled = false WHERE id = :id", id=row_id)
    wait_for(
        lambda: (
            get_bot(kube_client, namespace, name) is None and get_pod(kube_client, namespace, pod_name(name)) is None
        ),
        60,
        "bot and pod gone",
    )
    wait_for(lambda: not runtime_pids(name), 30, "the runtime process gone")
    row = wait_for(lambda: (r := repository.get_bot(row_id)) and r.status == "stopped" and r, 30, "row stopped")
    runs = repository.runs(row_id)
    assert all(run.stopped_at is not None for run in runs) and runs[-1].exit_reason == "stopped by SIGTERM"
    assert_never_two_runtimes(repository, row_id)


def test_kubectl_apply_wait_ready_and_delete(
    start_fleet: Callable[..., Fleet],
    repository: BotRepository,
    control_plane: ControlPlane,
    kube_client: client.ApiClient,
    namespace: str,
    tmp_path: Path,
) -> None:
    import yaml

    start_fleet()
    manifest = tmp_path / "bot.yaml"
    manifest.write_text(
        yaml.safe_dump(
            {"apiVersion": "botops.io/v1alpha1", "kind": "TradingBot", "metadata": {"name": "applied"}, "spec": FAST}
        )
    )
    kubectl = [str(control_plane.assets / "kubectl"), "-n", namespace]
    env = {**os.environ, "KUBECONFIG": str(control_plane.kubeconfig_path)}
    for args, timeout in (
        (["apply", "-f", str(manifest)], 30),
        (["wait", "--for=condition=Ready", "tb/applied", "--timeout=150s"], 160),
    ):
        done = subprocess.run(kubectl + args, env=env, capture_output=True, text=True, timeout=timeout)
        assert done.returncode == 0, done.stderr
    row = repository.get_bot_by_ref(namespace, "applied")
    assert row is not None and row.source == "kubernetes"
    done = subprocess.run(
        [*kubectl, "delete", "tb/applied", "--wait=true", "--timeout=60s"],
        env=env,
        capture_output=True,
        text=True,
        timeout=70,
    )
    assert done.returncode == 0, done.stderr
    wait_for(lambda: not runtime_pids("applied"), 60, "the runtime stopped")
    wait_for(lambda: (r := repository.get_bot(row.id)) and r.status == "stopped", 30, "row stopped")
    (run,) = repository.runs(row.id)
    assert run.exit_reason == "stopped by SIGTERM"


def test_a_killed_runtime_is_reported_and_the_bot_recovers(
    start_fleet: Callable[..., Fleet],
    repository: BotRepository,
    kube_client: client.ApiClient,
    namespace: str,
) -> None:
    from tests.operator.helpers import apply_bot, events

    start_fleet()
    apply_bot(kube_client, namespace, "fragile", FAST)
    wait_for(lambda: ready(kube_client, namespace, "fragile"), 120, "Ready=True")
    for pid in runtime_pids("fragile"):
        os.kill(pid, signal.SIGKILL)
    failed = wait_for(
        lambda: (b := get_bot(kube_client, namespace, "fragile")) and b["status"].get("restarts") == 1 and b,
        60,
        "the failure counted",
    )
    # the status message moves on as the replacement starts (a 1 s back-off): the event keeps what was said
    scheduled = wait_for(
        lambda: [e["message"] for e in events(kube_client, namespace, "fragile") if e["reason"] == "RestartScheduled"],
        30,
        "the RestartScheduled event",
    )
    assert any("code -9" in m or "exited" in m for m in scheduled), scheduled
    wait_for(lambda: ready(kube_client, namespace, "fragile"), 120, "Ready again")
    bot_id = int(failed["status"]["botId"])
    assert len(repository.runs(bot_id)) == 2


def test_bots_keep_trading_while_the_operator_is_down(
    start_fleet: Callable[..., Fleet],
    repository: BotRepository,
    kube_client: client.ApiClient,
    namespace: str,
) -> None:
    from tests.operator.helpers import apply_bot

    fleet = start_fleet()
    apply_bot(kube_client, namespace, "steady", FAST)
    wait_for(lambda: ready(kube_client, namespace, "steady"), 120, "Ready=True")
    pod_uid = get_pod(kube_client, namespace, pod_name("steady"))["metadata"]["uid"]
    bot_id = int(get_bot(kube_client, namespace, "steady")["status"]["botId"])
    fleet.operator.terminate()
    beat = repository.get_bot(bot_id).last_heartbeat
    trades = len(repository.trades(bot_id))
    wait_for(
        lambda: repository.get_bot(bot_id).last_heartbeat > beat and len(repository.trades(bot_id)) > trades,
        90,
        "heartbeats and trades with the operator down",
    )
    time.sleep(1)
    again = fleet.new_operator()
    again.wait_for_log("became the leader")
    wait_for(
        lambda: (
            ready(kube_client, namespace, "steady") and phase(get_bot(kube_client, namespace, "steady")) == "Running"
        ),
        60,
        "converged",
    )
    assert get_pod(kube_client, namespace, pod_name("steady"))["metadata"]["uid"] == pod_uid, "pod replaced"
    assert len(repository.runs(bot_id)) == 1
