"""The Argo CD health check, run through a real Lua interpreter with Argo CD's own test layout."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import lupa
import pytest
import yaml

from bot_operator.builders.lifecycle import Observation, PodView, decide
from bot_runtime.api.models import RestartPolicy

REPO = Path(__file__).resolve().parents[2]
CHECK = REPO / "deploy" / "argocd" / "resource_customizations" / "botops.io" / "TradingBot"
TESTS = yaml.safe_load((CHECK / "health_test.yaml").read_text())["tests"]


def health(obj: dict[str, Any]) -> dict[str, str]:
    lua = lupa.LuaRuntime(unpack_returned_tuples=True)
    lua.globals().obj = lua.table_from(obj, recursive=True)
    result = lua.execute((CHECK / "health.lua").read_text())
    return {"status": result["status"], "message": result["message"]}


@pytest.mark.parametrize("case", TESTS, ids=[Path(t["inputPath"]).stem for t in TESTS])
def test_argocd_health_cases(case: dict[str, Any]) -> None:
    obj = yaml.safe_load((CHECK / case["inputPath"]).read_text())
    assert health(obj) == case["healthStatus"]


def test_every_phase_the_operator_reports_maps_to_an_argocd_status() -> None:
    from datetime import UTC, datetime

    now = datetime(2026, 11, 29, 12, tzinfo=UTC)
    base: dict[str, Any] = dict(
        now=now,
        generation=1,
        valid=True,
        validation_message="",
        suspended=False,
        desired_hash="h",
        pod=PodView(),
        policy=RestartPolicy(),
        heartbeat_interval=10,
        stale_after=60,
        replace_after=300,
        healthy_reset=600,
    )
    running = PodView(exists=True, phase="Running", ready=True, spec_hash="h", created=now)
    scenarios = {
        "Healthy": dict(pod=running, last_heartbeat=now, feed_state="LIVE", runtime={"generation": 1}),
        "Progressing": {},
        "Degraded": dict(valid=False, validation_message="spec.mode: bad"),
        "Suspended": dict(suspended=True),
    }
    for expected, changes in scenarios.items():
        status = decide(Observation(**{**base, **changes})).status
        obj = {"metadata": {"generation": 1}, "status": status}
        assert health(obj)["status"] == expected, (expected, status["phase"])
