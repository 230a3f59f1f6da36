"""status.runtime is patched on visible change, otherwise at most once per quiet period."""

from __future__ import annotations

from datetime import UTC, datetime

from bot_runtime.status import PatchCadence, build_runtime_status


def status(**changes: object) -> dict[str, object]:
    base = build_runtime_status(
        heartbeat=datetime(2026, 1, 1, tzinfo=UTC),
        feed_state="LIVE",
        equity=100.0,
        cash=50.0,
        pnl=0.0,
        position=0.5,
        trade_count=3,
        open_orders=0,
        generation=1,
        lease_token=2,
        run_id=9,
        pod="p",
        halted=False,
        halt_reason=None,
        message=None,
    )
    return {**base, **changes}


def test_first_status_is_sent_then_quiet_heartbeats_are_not() -> None:
    cadence = PatchCadence(quiet_seconds=60)
    assert cadence.due(status(), 0.0)
    cadence.sent(status(), 0.0)
    for t in range(1, 60):  # a heartbeat a second, equity and pnl moving: no patch
        assert not cadence.due(status(lastHeartbeat=f"t{t}", equity=100.0 + t, pnl=float(t)), float(t))
    assert cadence.due(status(lastHeartbeat="t60"), 60.0)


def test_visible_changes_are_sent_at_once() -> None:
    for change in (
        {"feedState": "CONNBROKEN"},
        {"position": 0.0},
        {"tradeCount": 4},
        {"halted": True},
        {"openOrders": 1},
        {"generation": 2},
        {"message": "order rejected"},
    ):
        cadence = PatchCadence(quiet_seconds=60)
        cadence.sent(status(), 0.0)
        assert cadence.due(status(**change), 1.0), change


def test_a_fleet_of_1000_quiet_bots_patches_at_most_once_a_minute_each() -> None:
    cadences = [PatchCadence(quiet_seconds=60) for _ in range(1000)]
    patches = 0
    for second in range(600):  # ten minutes of 1 s heartbeats
        for cadence in cadences:
            current = status(lastHeartbeat=str(second), equity=100.0 + second % 7)
            if cadence.due(current, float(second)):
                cadence.sent(current, float(second))
                patches += 1
    assert patches == 1000 * 10
