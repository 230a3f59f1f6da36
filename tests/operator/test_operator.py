"""The real bot-operator on the test control plane and PostgreSQL."""

from __future__ import annotations

import json
import time
from collections.abc import Callable
from typing import Any

import pytest
import sqlalchemy as sa
from kubernetes import client

from bot_operator.builders.names import pod_name
from bot_runtime.api import constants as c
from bot_runtime.db.repository import BotRepository
from botops_dev.controlplane import ControlPlane
from tests.operator.helpers import condition, get_bot, get_pod, insert_row, sql
from tests.support.bots import Bot, RuntimeProcess
from tests.support.kube import table_view, wait_for
from tests.support.kubelet import report_running
from tests.support.operator import OperatorProcess

pytestmark = [pytest.mark.cluster, pytest.mark.db]


def test_row_to_ready_bot_then_update_then_disable(
    start_operator: Callable[..., OperatorProcess],
    repository: BotRepository,
    kube_client: client.ApiClient,
    control_plane: ControlPlane,
    namespace: str,
    user_id: int,
    tmp_path: Any,
    fake_exchange: Any,
    migrated_database_url: str,
) -> None:
    operator = start_operator()
    operator.wait_for_log("Trading service running with 0 bots")
    row_id = insert_row(repository, user_id, "SMA BTC")
    name = f"sma-btc-{row_id}"
    tb = wait_for(lambda: get_bot(kube_client, namespace, name), 10, "the TradingBot from the row")
    assert tb["metadata"]["labels"][c.LABEL_SOURCE] == "database"
    assert tb["metadata"]["labels"][c.LABEL_BOT_ID] == str(row_id)
    bot_pod = wait_for(lambda: get_pod(kube_client, namespace, pod_name(name)), 20, "the bot pod")
    container = bot_pod["spec"]["containers"][0]
    env = {e["name"]: e for e in container["env"]}
    assert env["BOTOPS_BOT_NAME"]["value"] == name
    (database,) = [v for v in bot_pod["spec"]["volumes"] if v["name"] == "database"]
    assert database["secret"]["secretName"] == f"{name}-db" and "DATABASE_URL_FILE" in env  # its own role
    assert bot_pod["metadata"]["ownerReferences"][0]["uid"] == tb["metadata"]["uid"]
    assert container["securityContext"]["readOnlyRootFilesystem"] is True
    assert bot_pod["spec"]["serviceAccountName"] == f"{name}-bot"

    # play the kubelet: the pod runs, the real runtime heartbeats with the bot's own credentials
    report_running(kube_client, namespace, pod_name(name))
    handle = Bot.attach(control_plane, kube_client, repository, namespace, name, tmp_path)
    runtime = RuntimeProcess(handle, migrated_database_url, tmp_path, exchange_url=fake_exchange.url)
    try:
        ready = wait_for(
            lambda: condition(get_bot(kube_client, namespace, name), "Ready").get("status") == "True", 60, "Ready=True"
        )
        tb = get_bot(kube_client, namespace, name)
        assert tb["status"]["phase"] == "Running" and tb["status"]["botId"] == row_id
        assert tb["status"]["runtime"]["feedState"] == "LIVE" and ready
        assert tb["status"]["observedGeneration"] == tb["metadata"]["generation"]
        first_uid = get_pod(kube_client, namespace, pod_name(name))["metadata"]["uid"]

        # the row changes: the pod is replaced (the old one is deleted before the new one exists)
        sql(repository, "UPDATE trading_bots SET risk_config = '{\"max_open_orders\": 2}' WHERE id = :id", id=row_id)
        wait_for(
            lambda: (p := get_pod(kube_client, namespace, pod_name(name))) is None or p["metadata"]["uid"] != first_uid,
            20,
            "the old pod gone",
        )
        runtime.terminate()
        new_pod = wait_for(lambda: get_pod(kube_client, namespace, pod_name(name)), 20, "the new pod")
        assert new_pod["metadata"]["uid"] != first_uid
        assert get_bot(kube_client, namespace, name)["spec"]["risk"]["maxOpenOrders"] == 2
    finally:
        runtime.close()

    # disabled: resource and pod gone, row stopped, history kept
    sql(repository, "UPDATE trading_bots SET enabled = false WHERE id = :id", id=row_id)
    wait_for(lambda: get_bot(kube_client, namespace, name) is None, 20, "the TradingBot deleted")
    wait_for(lambda: (r := repository.get_bot(row_id)) is not None and r.status == "stopped", 20, "row stopped")
    assert repository.runs(row_id), "runs are kept"
    operator.terminate()


def test_kubectl_apply_examples_registers_bots(
    start_operator: Callable[..., OperatorProcess],
    repository: BotRepository,
    kube_client: client.ApiClient,
    control_plane: ControlPlane,
    namespace: str,
) -> None:
    import os
    import subprocess
    from pathlib import Path

    start_operator()
    examples = Path(__file__).resolve().parents[2] / "examples"
    env = {**os.environ, "KUBECONFIG": str(control_plane.kubeconfig_path)}
    out = subprocess.run(
        [str(control_plane.assets / "kubectl"), "apply", "-n", namespace, "-f", str(examples)],
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert out.returncode == 0, out.stderr
    names = ["paper-sma-crossover", "paper-rsi-trailing-stop", "paper-advanced-framework", "live-btc-ema"]
    for name in names:
        row = wait_for(lambda n=name: repository.get_bot_by_ref(namespace, n), 20, f"{name} registered")
        assert row.source == "kubernetes"
        body = wait_for(
            lambda n=name: (
                (b := get_bot(kube_client, namespace, n)) and condition(b, "Valid").get("status") == "True" and b
            ),
            20,
            f"{name} valid and labelled",
        )
        assert body["metadata"]["labels"][c.LABEL_BOT_ID] == str(row.id)
        wait_for(lambda n=name: get_pod(kube_client, namespace, pod_name(n)), 20, f"{name} pod")
    live_pod = get_pod(kube_client, namespace, pod_name("live-btc-ema"))
    (keys,) = [v["secret"] for v in live_pod["spec"]["volumes"] if v["name"] == "exchange"]
    assert keys["secretName"] == "binance-keys" and {"key": "secret", "path": "secret"} in keys["items"]
    assert "REPLACE-WITH" not in str(live_pod) and "REPLACE-WITH" not in str(
        get_bot(kube_client, namespace, "live-btc-ema")
    )


def test_invalid_rows_and_manifests_are_explained_and_disturb_nothing(
    start_operator: Callable[..., OperatorProcess],
    repository: BotRepository,
    kube_client: client.ApiClient,
    namespace: str,
    user_id: int,
) -> None:
    from tests.corpus import CASES, merge
    from tests.operator.helpers import apply_bot, events, phase
    from tests.support.bots import FAST_SPEC

    good = insert_row(repository, user_id, "good bot")
    bad_rows = {}
    for case in [k for k in CASES if k.layer == "row"]:
        row = case.row()
        with repository.session() as s:  # straight SQL: these rows cannot come from a valid spec
            bad_rows[case.id] = s.execute(
                sa.text(
                    "INSERT INTO trading_bots (user_id, name, strategy_type, strategy_params, exchange, symbol, "
                    "timeframe, mode, market_config, broker_config, risk_config, runtime_config) VALUES (:u, :n, :st, "
                    "CAST(:sp AS jsonb), :ex, :sy, :tf, :mo, CAST(:mc AS jsonb), CAST(:bc AS jsonb), "
                    "CAST(:rc AS jsonb), CAST(:rt AS jsonb)) RETURNING id"
                ),
                {
                    "u": user_id,
                    "n": row["name"] if row["name"] != "row-bot" else f"bad {case.id}",
                    "st": row["strategy_type"],
                    "sp": _json(row["strategy_params"]),
                    "ex": row["exchange"],
                    "sy": row["symbol"],
                    "tf": row["timeframe"],
                    "mo": row["mode"],
                    "mc": _json(row["market_config"]),
                    "bc": _json(row["broker_config"]),
                    "rc": _json(row["risk_config"]),
                    "rt": _json(row["runtime_config"]),
                },
            ).scalar_one()
    bad_manifest = merge(FAST_SPEC, {"market": {"exchange": "binanse"}})
    start_operator()
    apply_bot(kube_client, namespace, "typo-bot", bad_manifest)

    wait_for(lambda: get_bot(kube_client, namespace, f"good-bot-{good}"), 20, "the good row's bot")
    for case in [k for k in CASES if k.id in bad_rows]:
        row = wait_for(
            lambda i=bad_rows[case.id]: (r := repository.get_bot(i)) and r.status == "error" and r,
            20,
            f"row {case.id} marked error",
        )
        for part in case.expect:
            assert part in row.error_message, (case.id, row.error_message)
    from tests.operator.helpers import list_bots

    assert {b["metadata"]["name"] for b in list_bots(kube_client, namespace)} == {f"good-bot-{good}", "typo-bot"}
    typo = wait_for(
        lambda: (
            phase(get_bot(kube_client, namespace, "typo-bot")) == "Error"
            and get_bot(kube_client, namespace, "typo-bot")
        ),
        20,
        "typo-bot in Error",
    )
    valid = condition(typo, "Valid")
    assert valid["status"] == "False" and "'binanse' is not a ccxt exchange id" in valid["message"]
    assert condition(typo, "Stalled")["status"] == "True"
    assert get_pod(kube_client, namespace, pod_name("typo-bot")) is None
    warnings = [e for e in events(kube_client, namespace, "typo-bot") if e["type"] == "Warning"]
    assert any("did you mean binance" in (e["message"] or "") for e in warnings)
    wait_for(lambda: get_pod(kube_client, namespace, pod_name(f"good-bot-{good}")), 20, "the good bot's pod")


def _json(value: Any) -> str:

    return json.dumps(value)


def test_bot_token_reaches_only_its_own_bot(
    start_operator: Callable[..., OperatorProcess],
    kube_client: client.ApiClient,
    control_plane: ControlPlane,
    namespace: str,
) -> None:
    from bot_operator.builders.names import service_account_name
    from tests.operator.helpers import apply_bot

    start_operator()
    for name in ("bot-a", "bot-b"):
        apply_bot(kube_client, namespace, name)
        wait_for(lambda n=name: get_pod(kube_client, namespace, pod_name(n)), 20, f"{name} pod (RBAC in place)")
    token = control_plane.service_account_token(namespace, service_account_name("bot-a"))
    base = f"/apis/{c.GROUP}/{c.VERSION}/namespaces/{namespace}/{c.PLURAL}"
    patch = {"status": {"runtime": {"message": "hello"}}}

    def call(method: str, path: str, body: Any = None) -> int:
        kind = "application/merge-patch+json" if method == "PATCH" else "application/json"
        status, _ = control_plane.request(method, path, body, token=token, content_type=kind)
        return status

    assert call("GET", f"{base}/bot-a") == 200
    assert call("PATCH", f"{base}/bot-a/status", patch) == 200
    assert call("GET", f"{base}/bot-b") == 403
    assert call("PATCH", f"{base}/bot-b/status", patch) == 403
    assert call("PATCH", f"{base}/bot-a", {"spec": {"mode": "live"}}) == 403  # status only, never the spec
    assert call("GET", base) == 403
    assert call("GET", f"/api/v1/namespaces/{namespace}/secrets") == 403
    assert call("GET", f"/api/v1/namespaces/{namespace}/pods") == 403
    assert (
        call(
            "POST",
            f"/api/v1/namespaces/{namespace}/events",
            {
                "metadata": {"generateName": "bot-a."},
                "involvedObject": {"kind": c.KIND, "name": "bot-a", "namespace": namespace},
                "reason": "Test",
                "message": "from the runtime",
                "type": "Normal",
            },
        )
        == 201
    )


def test_operator_killed_while_reconciling_20_bots_converges(
    start_operator: Callable[..., OperatorProcess],
    repository: BotRepository,
    kube_client: client.ApiClient,
    namespace: str,
    user_id: int,
) -> None:
    from tests.operator.helpers import bot_pods, list_bots

    ids = [insert_row(repository, user_id, f"fleet {i}") for i in range(20)]
    first = start_operator(identity="op-restart")
    wait_for(lambda: len(bot_pods(kube_client, namespace)) >= 3, 60, "a few pods")
    first.kill()  # SIGKILL in the middle of the work
    start_operator(identity="op-restart")

    def converged() -> bool:
        bots = list_bots(kube_client, namespace)
        return (
            len(bots) == 20
            and all((b.get("status") or {}).get("pod") and (b.get("status") or {}).get("botId") for b in bots)
            and len(bot_pods(kube_client, namespace)) == 20
        )

    wait_for(converged, 120, "20 bots, each with its pod and status")
    pods = bot_pods(kube_client, namespace)
    owners = [p["metadata"]["ownerReferences"][0]["name"] for p in pods]
    assert len(set(owners)) == 20, "a bot with two pods"
    bots = list_bots(kube_client, namespace)
    assert sorted(int(b["metadata"]["labels"][c.LABEL_BOT_ID]) for b in bots) == sorted(ids)
    assert all(b["status"]["observedGeneration"] == b["metadata"]["generation"] for b in bots)


def test_stale_heartbeat_degrades_then_replaces_the_pod(
    start_operator: Callable[..., OperatorProcess],
    repository: BotRepository,
    kube_client: client.ApiClient,
    control_plane: ControlPlane,
    namespace: str,
    tmp_path: Any,
    fake_exchange: Any,
    migrated_database_url: str,
) -> None:
    from tests.operator.helpers import apply_bot, events, phase

    start_operator(extra_env={"BOTOPS_STALE_HEARTBEAT_SECONDS": "4", "BOTOPS_REPLACE_STALE_AFTER_SECONDS": "12"})
    apply_bot(kube_client, namespace, "quiet-bot")
    first = wait_for(lambda: get_pod(kube_client, namespace, pod_name("quiet-bot")), 20, "the pod")
    report_running(kube_client, namespace, pod_name("quiet-bot"))
    handle = Bot.attach(control_plane, kube_client, repository, namespace, "quiet-bot", tmp_path)
    runtime = RuntimeProcess(handle, migrated_database_url, tmp_path, exchange_url=fake_exchange.url)
    try:
        wait_for(lambda: phase(get_bot(kube_client, namespace, "quiet-bot")) == "Running", 60, "Running")
        runtime.proc.kill()  # the runtime stops heartbeating; the pod still says Running
        degraded = wait_for(
            lambda: (b := get_bot(kube_client, namespace, "quiet-bot")) and phase(b) == "Degraded" and b, 30, "Degraded"
        )
        assert condition(degraded, "Healthy")["status"] == "False"
        assert condition(degraded, "Ready")["status"] == "False"
        wait_for(
            lambda: (
                (p := get_pod(kube_client, namespace, pod_name("quiet-bot"))) is not None
                and p["metadata"]["uid"] != first["metadata"]["uid"]
            ),
            60,
            "the pod replaced",
        )
        body = get_bot(kube_client, namespace, "quiet-bot")
        assert body["status"]["restarts"] == 1
        reasons = {e["reason"] for e in events(kube_client, namespace, "quiet-bot")}
        assert {"Degraded", "RestartScheduled"} <= reasons
    finally:
        runtime.close()


def test_failed_pod_restarts_with_backoff_until_exhausted(
    start_operator: Callable[..., OperatorProcess],
    kube_client: client.ApiClient,
    control_plane: ControlPlane,
    namespace: str,
) -> None:
    from bot_operator.builders.names import service_account_name
    from tests.operator.helpers import apply_bot, phase
    from tests.support.bots import spec_with
    from tests.support.kubelet import report_failed

    start_operator()
    apply_bot(
        kube_client,
        namespace,
        "crashy",
        spec_with(restartPolicy={"maxRestarts": 2, "initialDelaySeconds": 2, "factor": 2, "maxDelaySeconds": 30}),
    )
    seen: list[str] = []
    for attempt in (1, 2):
        created = wait_for(
            lambda: (
                (p := get_pod(kube_client, namespace, pod_name("crashy"))) and p["metadata"]["uid"] not in seen and p
            ),
            30,
            f"pod #{attempt}",
        )
        seen.append(created["metadata"]["uid"])
        report_failed(kube_client, namespace, pod_name("crashy"), 2, "AuthenticationError: invalid key")
        pending = wait_for(
            lambda n=attempt: (
                (b := get_bot(kube_client, namespace, "crashy")) and (b.get("status") or {}).get("restarts") == n and b
            ),
            20,
            f"restart {attempt} counted",
        )
        assert "AuthenticationError" in pending["status"]["message"]
        assert pending["status"]["phase"] in ("Pending", "Starting")
        # the runtime may patch its bot's status: resetting its restarts there must not buy it more restarts
        reset, _ = control_plane.request(
            "PATCH",
            f"/apis/{c.GROUP}/{c.VERSION}/namespaces/{namespace}/{c.PLURAL}/crashy/status",
            {"status": {"restarts": 0, "nextRestartAt": None}},
            token=control_plane.service_account_token(namespace, service_account_name("crashy")),
            content_type="application/merge-patch+json",
        )
        assert reset == 200
    # the delays grow: the second restart waited about twice as long as the first
    third = wait_for(
        lambda: (p := get_pod(kube_client, namespace, pod_name("crashy"))) and p["metadata"]["uid"] not in seen and p,
        30,
        "pod #3",
    )
    report_failed(kube_client, namespace, pod_name("crashy"), 2, "AuthenticationError: invalid key")
    failed = wait_for(
        lambda: (b := get_bot(kube_client, namespace, "crashy")) and phase(b) == "Error" and b,
        20,
        "Error after exhausting restarts",
    )
    assert "restarts exhausted (2 allowed)" in failed["status"]["message"]
    assert condition(failed, "Stalled")["status"] == "True"
    assert get_pod(kube_client, namespace, pod_name("crashy"))["metadata"]["uid"] == third["metadata"]["uid"]


def test_suspend_and_resume(
    start_operator: Callable[..., OperatorProcess],
    kube_client: client.ApiClient,
    namespace: str,
) -> None:
    from tests.operator.helpers import apply_bot, phase

    start_operator()
    apply_bot(kube_client, namespace, "sleepy")
    wait_for(lambda: get_pod(kube_client, namespace, pod_name("sleepy")), 20, "the pod")
    objects = client.CustomObjectsApi(kube_client)
    objects.patch_namespaced_custom_object(
        c.GROUP, c.VERSION, namespace, c.PLURAL, "sleepy", {"spec": {"suspended": True}}
    )
    wait_for(lambda: get_pod(kube_client, namespace, pod_name("sleepy")) is None, 20, "no pod while suspended")
    body = wait_for(
        lambda: (b := get_bot(kube_client, namespace, "sleepy")) and phase(b) == "Suspended" and b, 20, "Suspended"
    )
    assert condition(body, "Suspended")["status"] == "True" and condition(body, "Ready")["reason"] == "Suspended"
    objects.patch_namespaced_custom_object(
        c.GROUP, c.VERSION, namespace, c.PLURAL, "sleepy", {"spec": {"suspended": False}}
    )
    wait_for(lambda: get_pod(kube_client, namespace, pod_name("sleepy")), 20, "the pod again")


def test_hand_edit_is_reverted_and_an_idle_fleet_costs_no_writes(
    start_operator: Callable[..., OperatorProcess],
    repository: BotRepository,
    kube_client: client.ApiClient,
    namespace: str,
    user_id: int,
) -> None:
    from tests.operator.helpers import events

    row_id = insert_row(repository, user_id, "guarded")
    operator = start_operator()
    name = f"guarded-{row_id}"
    pod = wait_for(lambda: get_pod(kube_client, namespace, pod_name(name)), 20, "the pod")
    client.CustomObjectsApi(kube_client).patch_namespaced_custom_object(
        c.GROUP, c.VERSION, namespace, c.PLURAL, name, {"spec": {"broker": {"cash": 1_000_000}}}
    )
    wait_for(lambda: get_bot(kube_client, namespace, name)["spec"]["broker"]["cash"] == 10000, 20, "reverted")
    assert any(e["reason"] == "HandEditReverted" for e in events(kube_client, namespace, name))
    time.sleep(3)  # a pass or two more: the edited spec must never have run, not even for a second
    now = get_pod(kube_client, namespace, pod_name(name))
    assert now is not None and now["metadata"]["uid"] == pod["metadata"]["uid"], "the hand edit replaced the pod"

    def syncer_writes() -> float:
        return operator.metric_total("botops_operator_api_writes_total", 'component="syncer"')

    def syncs() -> float:
        return operator.metric_total("botops_operator_syncs_total")

    before, polls = syncer_writes(), syncs()
    wait_for(lambda: syncs() >= polls + 3, 30, "three more polls")
    assert syncer_writes() == before, "an unchanged fleet must cost no API writes"


def test_two_replicas_one_acts_and_the_other_takes_over(
    start_operator: Callable[..., OperatorProcess],
    repository: BotRepository,
    kube_client: client.ApiClient,
    namespace: str,
    user_id: int,
) -> None:
    a = start_operator(identity="replica-a")
    a.wait_for_log("became the leader")
    b = start_operator(identity="replica-b")
    b.wait_for_log("waiting to lead")
    first = insert_row(repository, user_id, "before")
    wait_for(lambda: get_bot(kube_client, namespace, f"before-{first}"), 20, "the leader syncs")
    assert "became the leader" not in b.log() and "Loading bot configurations" not in b.log()
    a.kill()
    b.wait_for_log("became the leader", 30)
    second = insert_row(repository, user_id, "after")
    wait_for(lambda: get_bot(kube_client, namespace, f"after-{second}"), 20, "the new leader syncs")


def test_a_listing_older_than_the_last_status_never_puts_back_a_spent_restart(
    kube_client: client.ApiClient, repository: BotRepository, namespace: str, migrated_database_url: str
) -> None:
    """The periodic pass reconciles from a listing; an event-driven reconcile may have written status since.
    The in-process Reconciler against the real apiserver and database: the listed copy is read again."""

    from bot_operator.kube import Cluster
    from bot_operator.metrics import OperatorMetrics
    from bot_operator.reconcile import PassListing, Reconciler
    from bot_operator.settings import OperatorSettings
    from bot_runtime.api.models import TradingBot
    from tests.operator.helpers import apply_bot
    from tests.support.bots import spec_with
    from tests.support.kubelet import report_failed

    settings = OperatorSettings(database_url=migrated_database_url, namespace=namespace, bots_namespace=namespace)
    reconciler = Reconciler(settings, Cluster(kube_client, "reconciler"), repository, OperatorMetrics())
    apply_bot(kube_client, namespace, "flaky", spec_with(restartPolicy={"maxRestarts": 3, "initialDelaySeconds": 60}))
    listing = PassListing(rows={})
    listed = TradingBot.from_resource(get_bot(kube_client, namespace, "flaky"))
    reconciler.reconcile_named(namespace, "flaky")  # the pod is created
    report_failed(kube_client, namespace, pod_name("flaky"), 2, "AuthenticationError: invalid key")
    reconciler.reconcile_named(namespace, "flaky")  # the failure: restart 1 of 3, in 60 s
    assert get_bot(kube_client, namespace, "flaky")["status"]["restarts"] == 1
    reconciler.reconcile(listed, listing=listing)  # the older listing comes last
    status = get_bot(kube_client, namespace, "flaky")["status"]
    assert status["restarts"] == 1 and status["nextRestartAt"], status
    assert get_pod(kube_client, namespace, pod_name("flaky")) is None, "no pod before the back-off delay"


def test_an_unknown_paper_strategy_and_a_crash_are_said_plainly(
    control_plane: ControlPlane,
    start_operator: Callable[..., OperatorProcess],
    kube_client: client.ApiClient,
    namespace: str,
) -> None:
    """Issue 18: the paper fallback is a condition, one Warning event and the STRATEGY column; an exit reason taken
    from the runtime's last log line reaches the status as a sentence."""
    from tests.operator.helpers import apply_bot, events
    from tests.support.bots import spec_with
    from tests.support.kubelet import report_failed

    start_operator()
    spec = spec_with(
        strategy={"type": "NoSuchStrategy", "params": {"entry_logic": {"name": "sma_crossover"}}},
        restartPolicy={"maxRestarts": 3, "initialDelaySeconds": 30, "factor": 2, "maxDelaySeconds": 60},
    )
    apply_bot(kube_client, namespace, "guess", spec)
    body = wait_for(
        lambda: (b := get_bot(kube_client, namespace, "guess")) and condition(b, "SpecDiffers").get("status") and b,
        30,
        "SpecDiffers",
    )
    differs = condition(body, "SpecDiffers")
    assert (differs["status"], differs["reason"]) == ("True", "StrategyFallback")
    assert (
        "'NoSuchStrategy' is not a registered strategy" in differs["message"] and "CustomStrategy" in differs["message"]
    )
    assert body["status"]["strategy"] == "CustomStrategy"  # the STRATEGY column shows what runs
    table = table_view(control_plane, f"/apis/{c.GROUP}/{c.VERSION}/namespaces/{namespace}/{c.PLURAL}")
    columns = [col["name"] for col in table["columnDefinitions"]]
    assert table["rows"][0]["cells"][columns.index("Strategy")] == "CustomStrategy"

    wait_for(lambda: get_pod(kube_client, namespace, pod_name("guess")), 20, "the pod")
    logged = "2026-11-30 09:11:50,123 ERROR bot_runtime: exit 2: refusing to trade: the venue refused the API key"
    report_failed(kube_client, namespace, pod_name("guess"), 2, logged)
    pending = wait_for(
        lambda: (b := get_bot(kube_client, namespace, "guess")) and (b.get("status") or {}).get("restarts") == 1 and b,
        20,
        "the restart counted",
    )
    assert pending["status"]["message"].startswith(
        "the runtime exited (code 2): refusing to trade: the venue refused the API key; restart 1/3 at "
    ), pending["status"]["message"]
    warnings = [e for e in events(kube_client, namespace, "guess") if e["reason"] == "SpecDiffers"]
    assert len(warnings) == 1 and warnings[0]["type"] == "Warning", warnings
