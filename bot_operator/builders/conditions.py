"""Standard conditions: one pure setter, a fixed order, times kept unless the status flips."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from bot_runtime.api.models import Condition, ConditionStatus

ORDER = (
    "Ready",
    "Valid",
    "PodReady",
    "Healthy",
    "Synced",
    "Suspended",
    "PositionDrift",
    "SpecDiffers",
    "Flattening",
    "Reconciling",
    "Stalled",
)


def _stamp(now: datetime) -> str:
    return now.strftime("%Y-%m-%dT%H:%M:%SZ")


def set_condition(
    conditions: list[dict[str, Any]],
    type: str,
    status: bool | ConditionStatus,
    reason: str,
    message: str,
    generation: int | None,
    now: datetime,
) -> list[dict[str, Any]]:
    """Return a new list with `type` set; lastTransitionTime moves only when the status changes."""
    value: ConditionStatus = status if isinstance(status, str) else ("True" if status else "False")
    previous = next((c for c in conditions if c.get("type") == type), None)
    since = previous["lastTransitionTime"] if previous and previous.get("status") == value else _stamp(now)
    updated = Condition(
        type=type,
        status=value,
        reason=reason,
        message=message[:32768],
        last_transition_time=since,
        observed_generation=generation,
    ).to_resource()
    others = [c for c in conditions if c.get("type") != type]
    return sorted([*others, updated], key=lambda c: ORDER.index(c["type"]) if c["type"] in ORDER else len(ORDER))


def get_condition(conditions: list[dict[str, Any]] | None, type: str) -> dict[str, Any] | None:
    return next((c for c in conditions or [] if c.get("type") == type), None)
