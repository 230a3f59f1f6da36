"""Pure builders and reducers of the operator: no I/O, no clock."""

from __future__ import annotations

import copy
import re
from dataclasses import replace
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from bot_operator.builders.conditions import set_condition
from bot_operator.builders.lifecycle import Observation, PodView, backoff_delay, decide, format_time, revisit_at
from bot_operator.builders.names import bot_labels, child_name, pod_name, service_account_name
from bot_operator.builders.pod import SECRETS_DIR, build_pod, image_refusal, spec_hash
from bot_operator.builders.rbac import build_role, build_role_binding, build_service_account
from bot_operator.settings import OperatorSettings
from bot_operator.sync import DesiredBot, plan_sync, spec_digest
from bot_runtime.api.models import RestartPolicy, TradingBot, TradingBotSpec
from tests.support.bots import FAST_SPEC

NOW = datetime(2026, 11, 29, 12, 0, tzinfo=UTC)
SETTINGS = OperatorSettings(database_url="postgresql://x@db/bots", runtime_image="img:1")
BOT = TradingBot.from_resource(
    {"metadata": {"name": "alpha", "namespace": "trading", "uid": "u-1", "generation": 3}, "spec": FAST_SPEC}
)
SPEC = TradingBotSpec.model_validate(FAST_SPEC)
LABELS = bot_labels("alpha", 7, "kubernetes")


def live_spec() -> TradingBotSpec:
    raw = copy.deepcopy(FAST_SPEC)
    raw.update(mode="live", broker={"credentialsSecretRef": {"name": "keys", "passwordKey": "pass"}})
    return TradingBotSpec.model_validate(raw)


def test_names_are_deterministic_and_dns_safe() -> None:
    assert pod_name("alpha") == "alpha-runtime"
    long = "b" * 80
    assert child_name(long, "runtime") == child_name(long, "runtime") and len(child_name(long, "runtime")) <= 63


def test_pod_is_restricted_owned_and_carries_secrets_by_reference() -> None:
    pod = build_pod(BOT, live_spec(), SETTINGS, LABELS)
    spec, container = pod["spec"], pod["spec"]["containers"][0]
    assert pod["metadata"]["ownerReferences"][0] == {
        "apiVersion": "botops.io/v1alpha1",
        "kind": "TradingBot",
        "name": "alpha",
        "uid": "u-1",
        "controller": True,
        "blockOwnerDeletion": False,
    }
    assert spec["restartPolicy"] == "Never" and spec["terminationGracePeriodSeconds"] >= 30
    pod_security = spec["securityContext"]
    assert pod_security["runAsNonRoot"] and pod_security["seccompProfile"]["type"] == "RuntimeDefault"
    sc = container["securityContext"]
    assert sc == {
        "allowPrivilegeEscalation": False,
        "readOnlyRootFilesystem": True,
        "runAsNonRoot": True,
        "capabilities": {"drop": ["ALL"]},
    }
    # credentials are files from Secret volumes, never variables (a child process or /proc reader sees those)
    assert not any("valueFrom" in e and "secretKeyRef" in e["valueFrom"] for e in container["env"])
    volumes = {v["name"]: v for v in spec["volumes"]}
    exchange = volumes["exchange"]["secret"]
    assert exchange["secretName"] == "keys" and exchange["defaultMode"] == 0o440
    assert exchange["items"] == [
        {"key": "apiKey", "path": "apiKey"},
        {"key": "secret", "path": "secret"},
        {"key": "pass", "path": "password"},
    ]
    assert volumes["database"]["secret"]["secretName"] == "alpha-db"  # its own role (per-bot identities)
    mounts = {m["name"]: m for m in container["volumeMounts"]}
    assert mounts["exchange"] == {"name": "exchange", "mountPath": f"{SECRETS_DIR}/exchange", "readOnly": True}
    env = {e["name"]: e.get("value") for e in container["env"]}
    assert env["BOTOPS_EXCHANGE_PASSWORD_FILE"] == f"{SECRETS_DIR}/exchange/password"
    assert env["DATABASE_URL_FILE"] == f"{SECRETS_DIR}/database/url"
    assert all("postgresql" not in (value or "") for value in env.values())
    assert container["readinessProbe"]["httpGet"]["path"] == "/readyz"
    assert container["livenessProbe"]["httpGet"]["path"] == "/healthz"
    assert container["image"] == "img:1"


def test_paper_pod_has_no_exchange_credentials() -> None:
    env = {e["name"] for e in build_pod(BOT, SPEC, SETTINGS, LABELS)["spec"]["containers"][0]["env"]}
    assert not {n for n in env if n.startswith("BOTOPS_EXCHANGE_")}


def test_spec_hash_ignores_suspend_and_follows_everything_the_pod_uses() -> None:
    suspended = SPEC.model_copy(update={"suspended": True})
    assert spec_hash(SPEC, SETTINGS) == spec_hash(suspended, SETTINGS)
    changed = TradingBotSpec.model_validate({**FAST_SPEC, "risk": {"maxOpenOrders": 2}})
    assert spec_hash(SPEC, SETTINGS) != spec_hash(changed, SETTINGS)
    other_image = SETTINGS.model_copy(update={"runtime_image": "img:2"})
    assert spec_hash(SPEC, SETTINGS) != spec_hash(SPEC, other_image)


def test_role_reaches_only_this_bot() -> None:
    role = build_role(BOT, LABELS)
    rules = {(tuple(r["resources"]), tuple(r["verbs"])): r.get("resourceNames") for r in role["rules"]}
    assert rules[(("tradingbots",), ("get",))] == ["alpha"]
    assert rules[(("tradingbots/status",), ("get", "patch"))] == ["alpha"]
    assert rules[(("events",), ("create",))] is None
    binding = build_role_binding(BOT, LABELS)
    assert binding["subjects"] == [{"kind": "ServiceAccount", "name": "alpha-bot", "namespace": "trading"}]
    assert build_service_account(BOT, LABELS)["metadata"]["name"] == "alpha-bot"


def test_condition_time_moves_only_on_a_flip() -> None:
    first = set_condition([], "Ready", True, "Trading", "ok", 1, NOW)
    later = set_condition(first, "Ready", True, "Trading", "still ok", 2, NOW + timedelta(minutes=5))
    assert later[0]["lastTransitionTime"] == first[0]["lastTransitionTime"] and later[0]["observedGeneration"] == 2
    flipped = set_condition(later, "Ready", False, "NotTrading", "feed down", 2, NOW + timedelta(minutes=6))
    assert flipped[0]["lastTransitionTime"] == format_time(NOW + timedelta(minutes=6))
    ordered = set_condition(
        set_condition([], "Stalled", False, "Progressing", "", 1, NOW), "Ready", True, "T", "", 1, NOW
    )
    assert [c["type"] for c in ordered] == ["Ready", "Stalled"] and "message" not in ordered[0]


@pytest.mark.parametrize(("restart", "delay"), [(1, 10), (2, 20), (3, 40), (4, 80), (5, 160), (6, 300), (9, 300)])
def test_backoff_grows_exponentially_to_the_cap(restart: int, delay: float) -> None:
    assert backoff_delay(RestartPolicy(initial_delay_seconds=10, factor=2, max_delay_seconds=300), restart) == delay


def observe(**changes: Any) -> Observation:
    base: dict[str, Any] = dict(
        now=NOW,
        generation=3,
        valid=True,
        validation_message="",
        suspended=False,
        desired_hash="h1",
        pod=PodView(),
        policy=RestartPolicy(max_restarts=2),
        heartbeat_interval=10,
        stale_after=60,
        replace_after=300,
        healthy_reset=600,
    )
    base.update(changes)
    return Observation(**base)


def running_pod(**changes: Any) -> PodView:
    return PodView(
        **{
            "exists": True,
            "phase": "Running",
            "ready": True,
            "spec_hash": "h1",
            "created": NOW - timedelta(minutes=5),
            **changes,
        }
    )


def cond(status: dict[str, Any], type: str) -> dict[str, Any]:
    return next(c for c in status["conditions"] if c["type"] == type)


def test_no_pod_is_created_and_reported_starting() -> None:
    decision = decide(observe())
    assert decision.action == "create" and decision.status["phase"] == "Starting"
    assert cond(decision.status, "Reconciling")["status"] == "True"


def test_ready_only_when_trading_live_with_fresh_heartbeat_of_this_generation() -> None:
    live = dict(
        pod=running_pod(), last_heartbeat=NOW - timedelta(seconds=5), feed_state="LIVE", runtime={"generation": 3}
    )
    ready = decide(observe(**live))
    assert ready.action == "none" and ready.status["phase"] == "Running"
    assert cond(ready.status, "Ready")["status"] == "True" and cond(ready.status, "Reconciling")["status"] == "False"
    for change in ({"feed_state": "DELAYED"}, {"runtime": {"generation": 2}}, {"pod": running_pod(ready=False)}):
        assert cond(decide(observe(**{**live, **change})).status, "Ready")["status"] == "False", change


def test_stale_heartbeat_degrades_then_replaces() -> None:
    base = dict(pod=running_pod(created=NOW - timedelta(minutes=10)), feed_state="LIVE", runtime={"generation": 3})
    degraded = decide(observe(**base, last_heartbeat=NOW - timedelta(seconds=90)))
    assert degraded.status["phase"] == "Degraded" and degraded.action == "none"
    assert cond(degraded.status, "Healthy")["reason"] == "HeartbeatStale"
    replaced = decide(observe(**base, last_heartbeat=NOW - timedelta(seconds=400)))
    assert replaced.action == "delete" and replaced.status["restarts"] == 1


def test_failed_pod_backs_off_then_exhausts() -> None:
    failed = running_pod(phase="Failed", ready=False, exit_code=2, reason="AuthenticationError: bad key")
    first = decide(observe(pod=failed))
    assert first.action == "delete" and first.status["restarts"] == 1 and first.status["phase"] == "Pending"
    assert "AuthenticationError" in first.status["message"]
    assert first.status["nextRestartAt"] == format_time(NOW + timedelta(seconds=10))
    waiting = decide(observe(previous=first.status, now=NOW + timedelta(seconds=5)))
    assert waiting.action == "none" and waiting.status["phase"] == "Pending"
    due = decide(observe(previous=first.status, now=NOW + timedelta(seconds=11)))
    assert due.action == "create"
    exhausted = decide(observe(pod=failed, previous={**first.status, "restarts": 2}))
    assert exhausted.action == "none" and exhausted.status["phase"] == "Error"
    assert cond(exhausted.status, "Stalled")["status"] == "True"


def test_changed_spec_replaces_and_invalid_spec_stops() -> None:
    changed = decide(observe(pod=running_pod(spec_hash="old")))
    assert changed.action == "delete" and changed.status["phase"] == "Stopping"
    assert changed.status["restarts"] == 0  # a rollout is not a restart
    invalid = decide(observe(valid=False, validation_message="spec.market.exchange: bad", pod=running_pod()))
    assert invalid.action == "delete" and invalid.status["phase"] == "Error"
    assert cond(invalid.status, "Valid")["message"] == "spec.market.exchange: bad"


def test_suspended_removes_the_pod_and_says_so() -> None:
    stopping = decide(observe(suspended=True, pod=running_pod()))
    assert stopping.action == "delete" and stopping.status["phase"] == "Stopping"
    suspended = decide(observe(suspended=True))
    assert suspended.action == "none" and suspended.status["phase"] == "Suspended"
    assert cond(suspended.status, "Ready")["reason"] == "Suspended"


def test_phase_changes_produce_one_event_but_a_new_bot_starting_is_only_its_status() -> None:
    first = decide(observe())
    again = decide(observe(previous=first.status, pod=running_pod(ready=False, created=NOW)))
    assert first.status["phase"] == "Starting" and first.events == []  # a thousand new bots: a thousand events less
    assert again.events == []
    after_a_crash = decide(observe(previous={**first.status, "phase": "Running"}))
    assert [e[1] for e in after_a_crash.events] == [after_a_crash.status["phase"]]


def desired(name: str, cash: float = 10_000) -> DesiredBot:
    spec = TradingBotSpec.model_validate({**FAST_SPEC, "broker": {"cash": cash}})
    return DesiredBot(
        row_id=1,
        namespace="ns",
        name=name,
        spec=spec,
        labels=bot_labels(name, 1, "database"),
        digest=spec_digest(spec),
        updated_at=NOW,
    )


def test_sync_plan_creates_updates_deletes_and_spots_hand_edits() -> None:
    current = desired("a").manifest()
    edited = copy.deepcopy(current)
    edited["spec"]["broker"]["cash"] = 5
    assert plan_sync([desired("a")], [current]).empty()  # unchanged: nothing to write
    plan = plan_sync([desired("a"), desired("b")], [edited, desired("gone").manifest()])
    assert [d.name for d in plan.create] == ["b"]
    assert [(d.name, hand) for d, hand in plan.update] == [("a", True)]
    assert [r["metadata"]["name"] for r in plan.delete] == ["gone"]
    row_changed = plan_sync([desired("a", cash=7)], [current])
    assert [(d.name, hand) for d, hand in row_changed.update] == [("a", False)]


def test_a_position_drift_is_a_condition_and_one_event() -> None:
    live = dict(pod=running_pod(), last_heartbeat=NOW - timedelta(seconds=5), feed_state="LIVE")
    drift = "the account holds 0.3 BTC, less than the 0.5 this bot's fills add up to"
    first = decide(observe(**live, runtime={"generation": 3, "drift": drift}))
    assert cond(first.status, "PositionDrift") == {
        **cond(first.status, "PositionDrift"),
        "status": "True",
        "reason": "AccountHoldsLess",
        "message": drift,
    }
    assert ("Warning", "PositionDrift", drift) in first.events
    again = decide(observe(**live, runtime={"generation": 3, "drift": drift}, previous=first.status))
    assert not [e for e in again.events if e[1] == "PositionDrift"]
    cleared = decide(observe(**live, runtime={"generation": 3}, previous=first.status))
    assert cond(cleared.status, "PositionDrift")["status"] == "False"


def test_a_database_outage_spends_no_restart_and_shows_no_ready() -> None:
    stale = dict(
        pod=running_pod(created=NOW - timedelta(minutes=10)),
        feed_state="LIVE",
        runtime={"generation": 3},
        last_heartbeat=NOW - timedelta(seconds=400),
    )
    failed = running_pod(phase="Failed", ready=False, exit_code=1, reason="OperationalError")
    for situation in (stale, {"pod": failed}):
        decision = decide(observe(**situation, database_reachable=False))
        assert decision.action == "none" and decision.status["restarts"] == 0, situation
        assert cond(decision.status, "Ready")["status"] == "Unknown"
        assert cond(decision.status, "Ready")["reason"] == "DatabaseUnreachable"


def test_after_an_outage_staleness_counts_from_the_databases_return() -> None:
    """Heartbeats the runtime could not write while the database was away do not get its pod replaced."""
    running = dict(pod=running_pod(created=NOW - timedelta(minutes=10)), feed_state="LIVE", runtime={"generation": 3})
    last = NOW - timedelta(seconds=400)
    just_back = decide(observe(**running, last_heartbeat=last, database_back_at=NOW - timedelta(seconds=2)))
    assert just_back.action == "none" and just_back.status["restarts"] == 0
    assert cond(just_back.status, "Healthy")["reason"] == "DatabaseRecovered"
    long_back = decide(observe(**running, last_heartbeat=last, database_back_at=NOW - timedelta(seconds=400)))
    assert long_back.action != "none"  # back long ago and still silent: the runtime's own fault


def test_a_failing_flatten_is_a_condition_and_one_event_per_distinct_error() -> None:
    live = dict(pod=running_pod(), last_heartbeat=NOW - timedelta(seconds=5), feed_state="LIVE")
    closing = "closing the position (fleet halt 3 by ops: incident)"
    failing = f"{closing}: attempt 1 failed: venue maintenance"
    first = decide(observe(**live, runtime={"generation": 3, "flatten": closing}))
    assert cond(first.status, "Flattening")["reason"] == "ClosingPosition"
    assert not [e for e in first.events if e[1] == "FlattenFailed"]
    failed = decide(observe(**live, runtime={"generation": 3, "flatten": failing}, previous=first.status))
    assert cond(failed.status, "Flattening")["reason"] == "CloseFailing"
    assert ("Warning", "FlattenFailed", failing) in failed.events
    retry = failing.replace("attempt 1", "attempt 2")
    again = decide(observe(**live, runtime={"generation": 3, "flatten": retry}, previous=failed.status))
    assert not [e for e in again.events if e[1] == "FlattenFailed"]  # the same error, retried
    flat = decide(observe(**live, runtime={"generation": 3}, previous=again.status))
    assert cond(flat.status, "Flattening")["status"] == "False"


LABEL_VALUE = re.compile(r"(([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9])?")
SUBDOMAIN = re.compile(r"[a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*")


@pytest.mark.parametrize(
    "name",
    ["a" * 63, "a" * 64, "b" * 253, "x" * 61 + ".y", "x" * 62 + "-a" * 20, "a." * 40 + "b", "team.bot-" + "7" * 60],
)
def test_every_name_and_label_built_from_a_bot_name_is_valid(name: str) -> None:
    labels = bot_labels(name, 7, "database", 3)
    assert all(len(v) <= 63 and LABEL_VALUE.fullmatch(v) for v in labels.values()), labels
    for child in (pod_name(name), service_account_name(name)):
        assert len(child) <= 63 and SUBDOMAIN.fullmatch(child), child


def test_memory_and_cpu_limits_are_always_set_and_the_state_volume_is_bounded() -> None:
    def pod_resources(resources: dict[str, Any]) -> dict[str, Any]:
        spec = TradingBotSpec.model_validate({**FAST_SPEC, "runtime": {"resources": resources}})
        pod = build_pod(BOT, spec, SETTINGS, LABELS)
        return dict(pod["spec"]["containers"][0]["resources"])

    defaults = {"memory": SETTINGS.runtime_memory_limit, "cpu": SETTINGS.runtime_cpu_limit}
    assert pod_resources({"requests": {"cpu": "200m"}})["limits"] == defaults
    assert pod_resources({})["limits"] == defaults
    assert pod_resources({"requests": {"memory": "2Gi"}})["limits"] == {**defaults, "memory": "2Gi"}  # not below
    assert pod_resources({"requests": {"cpu": "3"}})["limits"] == {**defaults, "cpu": "3"}
    assert pod_resources({"limits": {"memory": "300Mi", "cpu": 1}})["limits"] == {"memory": "300Mi", "cpu": 1}
    volumes = {v["name"]: v for v in build_pod(BOT, SPEC, SETTINGS, LABELS)["spec"]["volumes"]}
    assert volumes["state"]["emptyDir"]["sizeLimit"] == "256Mi"


def test_images_come_from_the_allow_list() -> None:
    def refusal(image: str, allowed: str = "") -> str | None:
        settings = OperatorSettings(
            database_url="postgresql://x@db/bots",
            runtime_image="registry.example/bots/runtime:1.2",
            allowed_images=allowed,
        )
        spec = TradingBotSpec.model_validate({**FAST_SPEC, "runtime": {"image": image}})
        return image_refusal(spec, settings)

    assert image_refusal(SPEC, SETTINGS) is None  # no image of its own: the operator's
    assert refusal("registry.example/bots/runtime:1.3") is None
    assert refusal("registry.example/bots/runtime@sha256:" + "a" * 64) is None
    refused = refusal("registry.example/bots/runtime-evil:1")
    assert refused is not None and "spec.runtime.image" in refused and "'registry.example/bots/runtime:'" in refused
    assert refusal("docker.io/miner:latest") is not None
    assert refusal("registry.example/team/custom:2", "registry.example/team/, ghcr.io/acme/") is None
    assert refusal("ghcr.io/acme/bot:1", "registry.example/team/, ghcr.io/acme/") is None
    assert refusal("registry.example/bots/runtime:1.2", "ghcr.io/acme/") is not None


def test_the_namespaces_network_policy_selects_every_bot_pod_and_nothing_else() -> None:
    from bot_operator.builders.network import build_network_policy

    policy = build_network_policy(BOT.namespace, SETTINGS)
    pod = build_pod(BOT, SPEC, SETTINGS, LABELS)
    other = build_pod(TradingBot.named(BOT.namespace, "other"), SPEC, SETTINGS, {**LABELS, "botops.io/bot": "other"})
    selector = policy["spec"]["podSelector"]["matchLabels"]
    assert all(p["metadata"]["labels"].get(k) == v for p in (pod, other) for k, v in selector.items())
    assert not all(build_role(BOT, LABELS)["metadata"]["labels"].get(k) == v for k, v in selector.items())
    assert policy["spec"]["policyTypes"] == ["Ingress", "Egress"]
    (ingress,) = policy["spec"]["ingress"]
    assert ingress["from"] == [{"namespaceSelector": {"matchLabels": {"kubernetes.io/metadata.name": "monitoring"}}}]
    assert ingress["ports"] == [{"port": 8080, "protocol": "TCP"}]
    ports = {(p["port"], p["protocol"]) for rule in policy["spec"]["egress"] for p in rule["ports"]}
    assert ports == {(53, "UDP"), (53, "TCP"), (443, "TCP"), (5432, "TCP"), (6443, "TCP")}


def test_a_spec_change_is_one_event() -> None:
    running = dict(pod=running_pod(spec_hash="old"), last_heartbeat=NOW - timedelta(seconds=5), feed_state="LIVE")
    decision = decide(observe(**running, previous={"phase": "Running"}))
    assert decision.action == "delete" and decision.status["phase"] == "Stopping"
    assert [reason for _, reason, _ in decision.events] == ["Replacing"], decision.events


@pytest.mark.parametrize(
    ("terminated", "sentence"),
    [
        (
            "2026-11-30 09:11:50,123 ERROR bot_runtime: exit 2: refusing to trade: spec.market.symbol: BTC/XYZ unknown",
            "refusing to trade: spec.market.symbol: BTC/XYZ unknown",
        ),
        ("Traceback (most recent call last):\n  ...\nValueError: bad input", "ValueError: bad input"),
        ("OOMKilled", "OOMKilled"),
        ("", ""),
    ],
)
def test_why_a_runtime_exited_is_said_as_a_sentence_not_a_log_line(terminated: str, sentence: str) -> None:
    pod = running_pod(phase="Failed", ready=False, exit_code=2, reason=terminated or None)
    decision = decide(observe(pod=pod, previous={"phase": "Running"}))
    expected = "the runtime exited (code 2)" + (f": {sentence}" if sentence else "")
    assert decision.status["message"].startswith(expected + ";"), decision.status["message"]
    why = decision.status["message"].split(";")[0]
    assert not re.search(r"\d{4}-\d\d-\d\d|ERROR|bot_runtime:|exit 2:", why), why


def test_what_runs_other_than_the_spec_says_is_a_condition_and_one_warning_each_time_it_changes() -> None:
    running = dict(pod=running_pod(), last_heartbeat=NOW - timedelta(seconds=5), feed_state="LIVE", generation=3)
    fallback = ("StrategyFallback", "spec.strategy.type 'Nope' is not a registered strategy, so ...")
    first = decide(
        observe(**running, differences=(fallback,), runtime={"generation": 3}, previous={"phase": "Running"})
    )
    differs = cond(first.status, "SpecDiffers")
    assert (differs["status"], differs["reason"], differs["message"]) == ("True", "StrategyFallback", fallback[1])
    assert [(t, r) for t, r, _ in first.events] == [("Warning", "SpecDiffers")]
    assert cond(first.status, "Ready")["status"] == "True"  # it trades: the difference is said, not a failure

    again = decide(observe(**running, differences=(fallback,), runtime={"generation": 3}, previous=first.status))
    assert again.events == []  # the same difference: no second event
    kept = {"generation": 3, "differs": "spec.broker.cash is 6000.00 but this paper bot continues ..."}
    both = decide(observe(**running, differences=(fallback,), runtime=kept, previous=again.status))
    assert [r for _, r, _ in both.events] == ["SpecDiffers"] and kept["differs"] in cond(both.status, "SpecDiffers")[
        "message"
    ]
    gone = decide(observe(**running, runtime={"generation": 3}, previous=both.status))
    assert cond(gone.status, "SpecDiffers")["status"] == "False" and gone.events == []


def test_a_bot_pod_reads_the_api_with_a_projected_expiring_token_not_an_automounted_secret() -> None:
    from bot_operator.builders.pod import SERVICE_ACCOUNT_DIR

    pod = build_pod(BOT, SPEC, SETTINGS, LABELS)["spec"]
    assert pod["automountServiceAccountToken"] is False
    (mount,) = [m for m in pod["containers"][0]["volumeMounts"] if m["mountPath"] == SERVICE_ACCOUNT_DIR]
    (volume,) = [v for v in pod["volumes"] if v["name"] == mount["name"]]
    token, ca, namespace = volume["projected"]["sources"]
    assert token["serviceAccountToken"]["expirationSeconds"] <= 3607 and token["serviceAccountToken"]["path"] == "token"
    assert ca["configMap"]["name"] == "kube-root-ca.crt" and ca["configMap"]["items"][0]["path"] == "ca.crt"
    assert namespace["downwardAPI"]["items"][0]["fieldRef"]["fieldPath"] == "metadata.namespace"
    assert mount["readOnly"] is True


@pytest.mark.parametrize(
    ("status", "headers", "backoff", "expected"),
    [
        (429, {"Retry-After": "3"}, 0.1, 3.0),  # the apiserver says when
        (429, {"Retry-After": "1"}, 2.0, 2.0),  # never sooner than our own backoff
        (429, {}, 0.4, 0.4),  # priority and fairness without a hint
        (500, {}, 0.1, None),  # a fault: the reconcile fails and is retried as a whole
        (409, {}, 0.1, None),
        (422, {}, 0.1, None),
    ],
)
def test_only_writes_the_apiserver_turned_away_for_load_are_repeated(
    status: int, headers: dict[str, str], backoff: float, expected: float | None
) -> None:
    from kubernetes.client.exceptions import ApiException

    from bot_operator.kube import retry_delay

    exc = ApiException(status=status, reason="refused")
    exc.headers = headers
    assert retry_delay(exc, backoff) == expected


def test_the_healthy_reset_of_restarts_follows_the_pods_ready_time_not_the_status() -> None:
    forged_ready = set_condition([], "Ready", True, "Trading", "", 1, NOW - timedelta(hours=2))
    previous = {"restarts": 2, "conditions": forged_ready}
    recent = running_pod(ready_since=NOW - timedelta(minutes=1))
    assert decide(observe(pod=recent, previous=previous)).status["restarts"] == 2
    long_ready = running_pod(ready_since=NOW - timedelta(minutes=11))
    assert decide(observe(pod=long_ready, previous=previous)).status["restarts"] == 0


def test_a_restart_record_comes_from_the_operators_annotation_only() -> None:
    from bot_operator.reconcile import restart_record
    from bot_runtime.api import constants as c

    def bot(annotations: dict[str, str], status: dict[str, Any]) -> TradingBot:
        meta = {"name": "b", "namespace": "n", "annotations": annotations}
        return TradingBot.from_resource({"metadata": meta, "spec": FAST_SPEC, "status": status})

    kept = '{"restarts": 3, "nextRestartAt": "2026-11-29T12:00:00Z"}'
    assert restart_record(bot({c.ANNOTATION_RESTARTS: kept}, {"restarts": 0})) == {
        "restarts": 3,
        "nextRestartAt": "2026-11-29T12:00:00Z",
    }
    assert restart_record(bot({}, {"restarts": 5}))["restarts"] == 0
    assert restart_record(bot({c.ANNOTATION_RESTARTS: "not json"}, {}))["restarts"] == 0


def test_the_pod_index_keeps_the_newest_view_and_removes_only_the_pod_deleted() -> None:
    from bot_operator.pod_index import PodIndex

    def pod(uid: str, version: int, phase: str, deleting: bool = False) -> dict[str, Any]:
        meta: dict[str, Any] = {"namespace": "n", "name": "b-runtime", "uid": uid, "resourceVersion": str(version)}
        if deleting:
            meta["deletionTimestamp"] = "2026-12-01T00:00:00Z"
        return {"metadata": meta, "status": {"phase": phase}}

    index = PodIndex()
    assert index.get("n", "b-runtime") is None  # not seeded: the caller reads the pod itself
    index.seed([pod("a", 10, "Running")])
    assert index.get("n", "b-runtime") == PodView.of(pod("a", 10, "Running"), "x")
    index.update(pod("a", 12, "Failed"))
    index.deleting("n", "b-runtime")  # we deleted it: gone at once
    index.update(pod("a", 12, "Failed"))  # the same event again, late: it does not bring the pod back
    assert not index.get("n", "b-runtime").exists
    index.update(pod("a", 14, "Failed", deleting=True))  # the watch: still terminating (a newer version)
    assert index.get("n", "b-runtime").terminating
    index.update(pod("b", 30, "Pending"))  # our own create of the replacement
    index.remove(pod("a", 25, "Failed"))  # the old pod's deletion event, arriving late: older, ignored
    assert index.get("n", "b-runtime").phase == "Pending"
    index.remove(pod("b", 40, "Failed"))
    assert not index.get("n", "b-runtime").exists and index.get("n", "other") == PodView()


def test_a_scheduled_restart_survives_the_failed_pods_termination() -> None:
    due = format_time(NOW + timedelta(seconds=20))
    previous = {"phase": "Pending", "restarts": 1, "nextRestartAt": due, "message": "exited; restart 1/2"}
    terminating = running_pod(phase="Failed", terminating=True, exit_code=2, ready=False)
    stopping = decide(observe(pod=terminating, previous=previous))
    assert stopping.action == "none" and stopping.status["nextRestartAt"] == due
    assert stopping.status["phase"] == "Pending" and stopping.status["message"] == previous["message"]
    gone = decide(observe(pod=PodView(), previous={**previous, **stopping.status}))
    assert gone.action == "none" and gone.status["phase"] == "Pending", gone.status  # not before its time
    later = decide(observe(pod=PodView(), previous={**previous, **stopping.status}, now=NOW + timedelta(seconds=21)))
    assert later.action == "create"


def settled(o: Observation) -> Observation:
    """The observation of the next reconcile: the status just decided is the previous one."""
    return replace(o, previous={**o.previous, **decide(o).status})


REVISITED = {
    "fresh heartbeat goes stale": dict(pod=running_pod(), last_heartbeat=NOW - timedelta(seconds=5), feed_state="LIVE"),
    "no heartbeat yet": dict(pod=running_pod(created=NOW - timedelta(seconds=20))),
    "stale heartbeat gets replaced": dict(pod=running_pod(), last_heartbeat=NOW - timedelta(seconds=90)),
    "restart falls due": dict(previous={"restarts": 1, "nextRestartAt": format_time(NOW + timedelta(seconds=40))}),
    "healthy stretch resets the count": dict(
        pod=running_pod(ready_since=NOW - timedelta(seconds=100)),
        last_heartbeat=NOW - timedelta(seconds=1),
        previous={"restarts": 2},
    ),
    "held rollout's deadline": dict(
        pod=running_pod(spec_hash="old"),
        last_heartbeat=NOW - timedelta(seconds=1),
        rollout="whenFlat",
        rollout_max_wait=120,
        runtime={"position": 1.5},
    ),
}


@pytest.mark.parametrize("situation", REVISITED)
def test_a_decision_holds_until_its_revisit_time_and_no_longer(situation: str) -> None:
    """The periodic pass skips a bot whose inputs did not change until revisit_at: before it, the clock alone
    changes nothing; at it, the decision changes (a stale heartbeat, a due restart, a reset count, a deadline)."""
    o = settled(observe(**REVISITED[situation]))
    decided = decide(o)
    revisit = revisit_at(o, decided.status)
    assert revisit is not None and revisit > NOW
    before = decide(replace(o, now=revisit - timedelta(seconds=1)))
    assert (before.action, before.status) == (decided.action, decided.status), situation
    later = [decide(replace(o, now=revisit + timedelta(seconds=s))) for s in (1, 5)]
    assert any((d.action, d.status) != (decided.action, decided.status) for d in later), situation


def test_a_settled_bot_with_nothing_timed_is_never_revisited_by_the_clock() -> None:
    for o in (observe(valid=False, validation_message="bad"), observe(suspended=True)):
        o = settled(o)
        assert revisit_at(o, decide(o).status) is None
