"""The generated CRD on the real control plane: schema rejections, explain, printer columns, pruning."""

from __future__ import annotations

import os
import subprocess
from typing import Any

import pytest

from botops_dev.controlplane import ControlPlane
from tests.corpus import BASE_SPEC, CASES, Case
from tests.support.kube import table_view, wait_for

pytestmark = pytest.mark.cluster

BOTS = "/apis/botops.io/v1alpha1/namespaces/{ns}/tradingbots"


def manifest(name: str, spec: dict[str, Any]) -> dict[str, Any]:
    return {"apiVersion": "botops.io/v1alpha1", "kind": "TradingBot", "metadata": {"name": name}, "spec": spec}


@pytest.mark.parametrize("case", [c for c in CASES if c.layer == "apiserver"], ids=lambda c: c.id)
def test_apiserver_rejects_bad_manifest_naming_the_field(
    control_plane: ControlPlane, namespace: str, case: Case
) -> None:
    status, body = control_plane.request("POST", BOTS.format(ns=namespace), manifest(case.id, case.spec()))
    assert status == 422, body
    for part in case.expect:
        assert part in body["message"], body["message"]


def test_valid_manifest_is_defaulted_and_shown_in_columns(control_plane: ControlPlane, namespace: str) -> None:
    status, body = control_plane.request("POST", BOTS.format(ns=namespace), manifest("good", BASE_SPEC))
    assert status == 201, body
    assert body["spec"]["broker"] == {"cash": 10000.0, "commission": 0.001, "slippage": 0.0, "fill": "nextOpen"}
    assert body["spec"]["risk"] == {"maxOpenOrders": 5}
    assert body["spec"]["restartPolicy"]["maxRestarts"] == 5
    table = table_view(control_plane, BOTS.format(ns=namespace))
    columns = [c["name"] for c in table["columnDefinitions"]]
    assert columns == ["Name", "Ready", "Phase", "Strategy", "Symbol", "Mode", "PnL", "Trading", "Heartbeat", "Age"]
    cells = dict(zip(columns, table["rows"][0]["cells"], strict=True))
    # STRATEGY is what runs (status.strategy, written by the operator): nothing before its first reconcile
    assert (cells["Strategy"], cells["Symbol"], cells["Mode"]) == (None, "BTC/USDT", "paper")


def test_ready_column_reads_the_ready_condition(control_plane: ControlPlane, namespace: str) -> None:
    control_plane.request("POST", BOTS.format(ns=namespace), manifest("cond", BASE_SPEC))
    status_patch = {
        "status": {
            "phase": "Running",
            "conditions": [
                {
                    "type": "Valid",
                    "status": "True",
                    "reason": "SpecValid",
                    "lastTransitionTime": "2026-01-01T00:00:00Z",
                },
                {
                    "type": "Ready",
                    "status": "False",
                    "reason": "FeedDelayed",
                    "lastTransitionTime": "2026-01-01T00:00:00Z",
                },
            ],
        }
    }
    status, body = control_plane.request(
        "PATCH", BOTS.format(ns=namespace) + "/cond/status", status_patch, content_type="application/merge-patch+json"
    )
    assert status == 200, body
    table = table_view(control_plane, BOTS.format(ns=namespace) + "/cond")
    cells = table["rows"][0]["cells"]
    assert cells[1:3] == ["False", "Running"]  # Ready from the condition, not from the phase


def test_unknown_fields_are_pruned_on_1_20(control_plane: ControlPlane, namespace: str) -> None:
    spec = {**BASE_SPEC, "leverage": 100, "market": {**BASE_SPEC["market"], "margin": True}}
    status, body = control_plane.request("POST", BOTS.format(ns=namespace), manifest("pruned", spec))
    assert status == 201, body  # 1.20 has no strict field validation: unknown fields are dropped
    assert "leverage" not in body["spec"] and "margin" not in body["spec"]["market"]


def test_kubectl_explain_shows_field_descriptions(control_plane: ControlPlane) -> None:
    kubectl = control_plane.assets / "kubectl"
    if not kubectl.exists():
        pytest.fail(f"kubectl is missing from KUBEBUILDER_ASSETS={control_plane.assets}", pytrace=False)
    env = {**os.environ, "KUBECONFIG": str(control_plane.kubeconfig_path)}

    def explain(path: str) -> str | None:
        # the apiserver publishes a CRD's OpenAPI a moment after the CRD is established (more CRDs, longer)
        done = subprocess.run([str(kubectl), "explain", path], env=env, capture_output=True, text=True, timeout=60)
        return done.stdout if done.returncode == 0 else None

    out = wait_for(lambda: explain("tb.spec.risk"), 30, "kubectl explain tb.spec.risk")
    assert "Limits checked before every order." in out
    assert "maxDailyLoss" in out and "Largest loss per UTC day" in out
    out = wait_for(lambda: explain("tradingbots.status.runtime.leaseToken"), 30, "kubectl explain leaseToken")
    assert "fencing token" in out
    out = wait_for(lambda: explain("backtests.spec.data.from"), 30, "kubectl explain backtests.spec.data.from")
    assert "first candle" in out
