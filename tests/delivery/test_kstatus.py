"""Flux (kstatus) reads a TradingBot's status correctly.

`kstatus` below follows the generic rules of sigs.k8s.io/cli-utils pkg/kstatus/status (generic.go),
the ones Flux applies to custom resources: deletion -> Terminating; observedGeneration behind ->
InProgress; Reconciling=True -> InProgress; Stalled=True -> Failed; then a Ready condition decides
(False -> InProgress), which is what kstatus answered on the live objects of a newcomer's walk (issue 18:
a suspended and a Degraded bot read InProgress, where docs/gitops.md had claimed Current).
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from bot_operator.builders.lifecycle import Observation, PodView, decide
from bot_runtime.api.models import RestartPolicy

NOW = datetime(2026, 11, 29, 12, tzinfo=UTC)


def kstatus(obj: dict[str, Any]) -> str:
    meta, status = obj.get("metadata", {}), obj.get("status") or {}
    if meta.get("deletionTimestamp"):
        return "Terminating"
    if "observedGeneration" in status and status["observedGeneration"] != meta.get("generation"):
        return "InProgress"
    for cond in status.get("conditions") or []:
        if cond["type"] == "Reconciling" and cond["status"] == "True":
            return "InProgress"
        if cond["type"] == "Stalled" and cond["status"] == "True":
            return "Failed"
    ready = next((c for c in status.get("conditions") or [] if c["type"] == "Ready"), None)
    return "InProgress" if ready is not None and ready["status"] == "False" else "Current"


def observe(**changes: Any) -> Observation:
    base: dict[str, Any] = dict(
        now=NOW,
        generation=2,
        valid=True,
        validation_message="",
        suspended=False,
        desired_hash="h",
        pod=PodView(),
        policy=RestartPolicy(max_restarts=1),
        heartbeat_interval=10,
        stale_after=60,
        replace_after=300,
        healthy_reset=600,
    )
    return Observation(**{**base, **changes})


RUNNING_POD = PodView(exists=True, phase="Running", ready=True, spec_hash="h", created=NOW - timedelta(minutes=1))
LIVE = dict(pod=RUNNING_POD, last_heartbeat=NOW, feed_state="LIVE", runtime={"generation": 2})


@pytest.mark.parametrize(
    ("scenario", "changes", "expected"),
    [
        ("no pod yet", {}, "InProgress"),
        ("pod starting", dict(pod=PodView(exists=True, phase="Pending", spec_hash="h", created=NOW)), "InProgress"),
        ("trading", LIVE, "Current"),
        ("old generation still running", {**LIVE, "runtime": {"generation": 1}}, "InProgress"),
        ("rolling out a new spec", dict(pod=PodView(exists=True, phase="Running", spec_hash="old")), "InProgress"),
        ("invalid spec", dict(valid=False, validation_message="spec.mode: bad"), "Failed"),
        (
            "restarts exhausted",
            dict(pod=PodView(exists=True, phase="Failed", spec_hash="h", exit_code=2), previous={"restarts": 1}),
            "Failed",
        ),
        ("suspended", dict(suspended=True), "InProgress"),  # Ready=False: Flux's wait keeps waiting
        ("degraded: stale heartbeat", {**LIVE, "last_heartbeat": NOW - timedelta(seconds=120)}, "InProgress"),
        ("halted", {**LIVE, "runtime": {"generation": 2, "halted": True, "haltReason": "desk"}}, "InProgress"),
    ],
)
def test_kstatus_reads_our_status(scenario: str, changes: dict[str, Any], expected: str) -> None:
    status = decide(observe(**changes)).status
    assert kstatus({"metadata": {"generation": 2}, "status": status}) == expected, scenario


def test_unobserved_generation_is_in_progress_and_ready_waits_for_the_runtime() -> None:
    status = decide(observe(**LIVE)).status
    assert kstatus({"metadata": {"generation": 3}, "status": status}) == "InProgress"
    ready = next(c for c in status["conditions"] if c["type"] == "Ready")
    assert ready["status"] == "True" and ready["observedGeneration"] == 2
