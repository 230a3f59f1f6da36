"""The webhook's answers (pure): every semantic refusal of the corpus, the image policy, database bots written
by the operator only, and what is never held up."""

from __future__ import annotations

from typing import Any

import pytest

from bot_operator.admission import review
from bot_operator.builders.webhook import build_webhook_configuration
from bot_operator.settings import OperatorSettings
from bot_runtime.api import constants as c
from tests.corpus import CASES, Case
from tests.support.bots import FAST_SPEC

SETTINGS = OperatorSettings(database_url="postgresql://unused/x", runtime_image="registry.example/bots/runtime:1")
OPERATOR = "system:serviceaccount:botops:tradingbot-operator"


def admission(
    spec: dict[str, Any],
    operation: str = "CREATE",
    user: str = "alice",
    labels: dict[str, str] | None = None,
    old: dict[str, Any] | None = None,
    deleting: bool = False,
) -> dict[str, Any]:
    meta: dict[str, Any] = {"name": "b", "namespace": "n", "labels": labels or {}}
    if deleting:
        meta["deletionTimestamp"] = "2026-12-01T00:00:00Z"
    request = {
        "uid": "u-1",
        "operation": operation,
        "userInfo": {"username": user},
        "object": {"metadata": meta, "spec": spec},
        "oldObject": old,
    }
    body = {"apiVersion": "admission.k8s.io/v1", "kind": "AdmissionReview", "request": request}
    answer = review(body, SETTINGS, frozenset({OPERATOR}))
    assert answer["response"]["uid"] == "u-1" and answer["kind"] == "AdmissionReview"
    return dict(answer["response"])


@pytest.mark.parametrize("case", [c for c in CASES if c.layer == "semantic"], ids=lambda c: c.id)
def test_every_semantic_refusal_is_refused_at_admission_naming_the_field(case: Case) -> None:
    response = admission(case.spec())
    assert not response["allowed"] and response["status"]["code"] == 422
    for part in case.semantic_expect or case.expect:
        assert part in response["status"]["message"]


def test_a_valid_bot_is_allowed_and_its_warnings_reach_kubectl() -> None:
    assert admission(FAST_SPEC)["allowed"]
    live_without_limit = {
        **FAST_SPEC,
        "mode": "live",
        "market": {**FAST_SPEC["market"], "exchange": "binance", "feed": "ccxt"},
        "broker": {"credentialsSecretRef": {"name": "keys"}},
    }
    response = admission(live_without_limit)
    assert response["allowed"], response
    assert any("spec.risk.maxDailyLoss" in w for w in response["warnings"])


def test_an_image_outside_the_allowed_prefixes_is_refused() -> None:
    response = admission({**FAST_SPEC, "runtime": {"image": "evil.example/miner:1"}})
    assert not response["allowed"] and "spec.runtime.image" in response["status"]["message"]
    assert admission({**FAST_SPEC, "runtime": {"image": "registry.example/bots/runtime:2"}})["allowed"]


def test_database_bots_are_written_by_the_operator_only() -> None:
    database = {c.LABEL_SOURCE: c.SOURCE_DATABASE}
    refused = admission(FAST_SPEC, labels=database)
    assert not refused["allowed"] and refused["status"]["code"] == 403
    assert "change the trading_bots row instead" in refused["status"]["message"]
    assert admission(FAST_SPEC, labels=database, user=OPERATOR)["allowed"]
    old = {"metadata": {"name": "b", "labels": database}, "spec": FAST_SPEC}
    unlabelled = admission(FAST_SPEC, operation="UPDATE", old=old)  # taking the label off is an edit too
    assert not unlabelled["allowed"]


def test_nothing_holds_up_a_bot_on_its_way_out_or_a_metadata_change() -> None:
    bad = {**FAST_SPEC, "market": {**FAST_SPEC["market"], "exchange": "binanse"}}
    assert admission(bad, operation="UPDATE", deleting=True)["allowed"]
    old = {"metadata": {"name": "b", "labels": {}}, "spec": bad}
    assert admission(bad, operation="UPDATE", old=old)["allowed"]  # created before the webhook; a label added
    assert not admission(bad, operation="UPDATE", old={"metadata": {}, "spec": FAST_SPEC})["allowed"]


def test_the_webhook_never_sees_deletes_and_an_outage_is_ignored() -> None:
    webhook = build_webhook_configuration("x", {"url": "https://127.0.0.1:1/tradingbots"})["webhooks"][0]
    assert webhook["failurePolicy"] == "Ignore" and webhook["timeoutSeconds"] <= 5
    assert webhook["rules"][0]["operations"] == ["CREATE", "UPDATE"]
