"""The bot's lifecycle as a pure function: what is observed -> what to do and what to report.

`decide()` sees the spec's validity, the pod, the runtime's heartbeat and feed state (from the
database) and the previous status; it returns one action (create or delete the pod, or nothing) and
the operator-owned status: phase, conditions (kstatus's Ready / Reconciling / Stalled included),
restarts with exponential back-off. No I/O and no clock: `now` is an input.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any, Literal

from bot_operator.builders.conditions import get_condition, set_condition
from bot_runtime.api.models import RestartPolicy

Action = Literal["none", "create", "delete"]


def backoff_delay(policy: RestartPolicy, restart: int) -> float:
    """Seconds to wait before restart number `restart` (1, 2, ...): initial * factor^(n-1), capped."""
    return float(min(policy.initial_delay_seconds * policy.factor ** max(restart - 1, 0), policy.max_delay_seconds))


def parse_time(value: str | None) -> datetime | None:
    if not value:
        return None
    return datetime.fromisoformat(value.replace("Z", "+00:00"))


def format_time(value: datetime | None) -> str | None:
    return value.strftime("%Y-%m-%dT%H:%M:%SZ") if value else None


@dataclass(frozen=True)
class PodView:
    exists: bool = False
    terminating: bool = False
    phase: str | None = None
    ready: bool = False
    spec_hash: str | None = None
    created: datetime | None = None
    exit_code: int | None = None
    reason: str | None = None

    @classmethod
    def of(cls, pod: dict[str, Any] | None, hash_annotation: str) -> PodView:
        if pod is None:
            return cls()
        meta, status = pod.get("metadata") or {}, pod.get("status") or {}
        ready = any(c.get("type") == "Ready" and c.get("status") == "True" for c in status.get("conditions") or [])
        exit_code, reason = None, status.get("reason")
        for cs in status.get("containerStatuses") or []:
            terminated = (cs.get("state") or {}).get("terminated")
            if terminated:
                exit_code = terminated.get("exitCode")
                reason = terminated.get("message") or terminated.get("reason") or reason
        return cls(exists=True, terminating=bool(meta.get("deletionTimestamp")), phase=status.get("phase"),
                   ready=ready, spec_hash=(meta.get("annotations") or {}).get(hash_annotation),
                   created=parse_time(meta.get("creationTimestamp")), exit_code=exit_code, reason=reason)


@dataclass(frozen=True)
class Observation:
    now: datetime
    generation: int
    valid: bool
    validation_message: str
    suspended: bool
    desired_hash: str
    pod: PodView
    policy: RestartPolicy
    heartbeat_interval: float
    stale_after: float
    replace_after: float
    healthy_reset: float
    previous: dict[str, Any] = field(default_factory=dict)  # the current status
    last_heartbeat: datetime | None = None
    feed_state: str | None = None
    runtime: dict[str, Any] = field(default_factory=dict)  # status.runtime
    synced: tuple[bool, str, str] = (True, "Registered", "")
    rollout: str = "immediate"  # or whenFlat
    rollout_max_wait: float = 3600.0


@dataclass
class Decision:
    action: Action
    status: dict[str, Any]
    action_reason: str = ""
    events: list[tuple[str, str, str]] = field(default_factory=list)  # (type, reason, message)
    runtime_dead: bool = False  # the pod's container reported its exit: the runtime is gone for sure


def _hold_for_flat(o: Observation, prev: dict[str, Any]) -> datetime | None:
    """whenFlat: since when a changed spec has been held back, or None to roll out now."""
    if o.rollout != "whenFlat" or not o.pod.exists or o.pod.terminating or o.pod.phase in ("Failed", "Succeeded"):
        return None
    busy = float(o.runtime.get("position") or 0.0) > 0 or int(o.runtime.get("openOrders") or 0) > 0
    since = parse_time(prev.get("rolloutHeldSince")) or o.now
    if not busy or (o.now - since).total_seconds() >= o.rollout_max_wait:
        return None
    return since


def decide(o: Observation) -> Decision:
    prev = o.previous
    restarts = int(prev.get("restarts") or 0)
    next_restart = parse_time(prev.get("nextRestartAt"))
    ready_since = get_condition(prev.get("conditions"), "Ready")
    if (restarts and ready_since and ready_since.get("status") == "True"
            and (o.now - (parse_time(ready_since["lastTransitionTime"]) or o.now)).total_seconds() > o.healthy_reset):
        restarts = 0  # healthy long enough: earlier failures no longer count
    action: Action = "none"
    action_reason = ""
    events: list[tuple[str, str, str]] = []
    pod = o.pod
    held_since = _hold_for_flat(o, prev) if pod.exists and pod.spec_hash != o.desired_hash else None
    healthy: tuple[bool | str, str, str] = ("Unknown", "NoRuntime", "no runtime is running")
    ready: tuple[bool, str, str] = (False, "NotTrading", "")
    stalled: tuple[bool, str, str] = (False, "Progressing", "")
    reconciling: tuple[bool, str, str] = (False, "Reconciled", "")

    def restart(why: str) -> tuple[str, str]:
        nonlocal restarts, next_restart, action, action_reason
        restarts += 1
        if restarts > o.policy.max_restarts:
            return "Error", f"{why}; restarts exhausted ({o.policy.max_restarts} allowed): a person must look"
        delay = backoff_delay(o.policy, restarts)
        next_restart = o.now + timedelta(seconds=delay)
        action, action_reason = "delete", why
        events.append(("Warning", "RestartScheduled",
                       f"{why}; restart {restarts}/{o.policy.max_restarts} in {delay:.0f} s"))
        return "Pending", f"{why}; restart {restarts}/{o.policy.max_restarts} at {format_time(next_restart)}"

    if not o.valid:
        phase, message = "Error", o.validation_message
        stalled = (True, "InvalidSpec", o.validation_message)
        if pod.exists and not pod.terminating:
            action, action_reason = "delete", "the spec is invalid"
    elif o.suspended:
        if pod.exists:
            phase, message = "Stopping", "suspended: stopping the bot pod"
            if not pod.terminating:
                action, action_reason = "delete", "suspended"
            reconciling = (True, "Suspending", message)
        else:
            phase, message = "Suspended", "suspended (spec.suspended is true); nothing runs"
        restarts, next_restart = 0, None
    elif pod.terminating:
        phase, message = "Stopping", "waiting for the old bot pod to stop before starting a new one"
        reconciling = (True, "PodTerminating", message)
    elif not pod.exists:
        if restarts > o.policy.max_restarts:
            phase, message = "Error", prev.get("message") or "restarts exhausted"
            stalled = (True, "RestartsExhausted", message)
        elif next_restart and o.now < next_restart:
            # keep the message that scheduled the restart: it says why, and when
            phase = "Pending"
            message = prev.get("message") or f"restart {restarts} at {format_time(next_restart)}"
            reconciling = (True, "BackingOff", message)
        else:
            action, action_reason = "create", "no bot pod"
            phase, message = "Starting", "creating the bot pod"
            next_restart = None
            reconciling = (True, "PodCreating", message)
    elif pod.spec_hash != o.desired_hash and held_since is None:
        action, action_reason = "delete", f"spec changed (generation {o.generation}): replacing the bot pod"
        phase, message = "Stopping", action_reason
        reconciling = (True, "RollingOut", message)
        events.append(("Normal", "Replacing", action_reason))
    elif pod.phase in ("Failed", "Succeeded"):
        why = f"the runtime exited (code {pod.exit_code})" + (f": {pod.reason}" if pod.reason else "")
        phase, message = restart(why)
        if phase == "Error":
            stalled = (True, "RestartsExhausted", message)
        else:
            reconciling = (True, "BackingOff", message)
    else:
        reference = max(filter(None, [o.last_heartbeat, pod.created]), default=o.now)
        age = (o.now - reference).total_seconds()
        runtime_gen = o.runtime.get("generation")
        halted = bool(o.runtime.get("halted"))
        if o.last_heartbeat is None or (pod.created and o.last_heartbeat < pod.created):
            healthy = ("Unknown", "NoHeartbeat", "waiting for the runtime's first heartbeat")
        elif age <= o.stale_after:
            healthy = (True, "HeartbeatFresh", f"heartbeats arrive (stale after {o.stale_after:.0f} s)")
        if age > o.replace_after:
            phase, message = restart(f"no heartbeat since {format_time(reference)}")
            healthy = (False, "HeartbeatStale", message)
            if phase == "Error":
                stalled = (True, "RestartsExhausted", message)
        elif age > o.stale_after:
            phase = "Degraded"
            message = f"no heartbeat since {format_time(reference)} (stale after {o.stale_after:.0f} s)"
            healthy = (False, "HeartbeatStale", message)
        elif o.feed_state == "CONNBROKEN":
            phase, message = "Degraded", "the market data feed is broken; the runtime is reconnecting"
            healthy = (False, "FeedBroken", message)
        elif halted:
            phase, message = "Degraded", f"trading halted: {o.runtime.get('haltReason') or 'see the runtime'}"
            ready = (False, "TradingHalted", message)
        elif pod.ready and o.feed_state == "LIVE" and healthy[0] is True and runtime_gen == o.generation:
            phase, message = "Running", "trading on a live feed"
            ready = (True, "Trading", message)
        else:
            phase = "Starting"
            waiting = ("the runtime's first heartbeat" if healthy[0] is not True
                       else "the pod to be ready" if not pod.ready
                       else "the live feed" if o.feed_state != "LIVE" else "the runtime of this generation")
            message = f"waiting for {waiting}"
            reconciling = (True, "Starting", message)

    if held_since is not None and action == "none":
        position = float(o.runtime.get("position") or 0.0)
        until = format_time(held_since + timedelta(seconds=o.rollout_max_wait))
        message = (f"spec generation {o.generation} waits until the bot is flat (position {position:.8g}, "
                   f"{int(o.runtime.get('openOrders') or 0)} open orders); rollout at the latest at {until}")
        reconciling = (True, "WaitingForFlat", message)
    else:
        held_since = None
    if phase == "Error" and not stalled[0]:
        stalled = (True, "RestartsExhausted", message)
    if phase == "Suspended":
        ready = (False, "Suspended", message)
    elif not ready[0] and not ready[2]:
        ready = (False, ready[1], message)
    pod_ready = (pod.ready, "PodReady" if pod.ready else "PodNotReady" if pod.exists else "NoPod",
                 "" if pod.exists else "no bot pod")
    valid = (o.valid, "SpecValid" if o.valid else "InvalidSpec", "" if o.valid else o.validation_message)
    suspended = (o.suspended, "Suspended" if o.suspended else "NotSuspended", "")
    conditions = list(prev.get("conditions") or [])
    for type, (value, reason, text) in (("Ready", ready), ("Valid", valid), ("PodReady", pod_ready),
                                        ("Healthy", healthy), ("Synced", o.synced), ("Suspended", suspended),
                                        ("Reconciling", reconciling), ("Stalled", stalled)):
        conditions = set_condition(conditions, type, value, reason, text, o.generation, o.now)

    status: dict[str, Any] = {
        "phase": phase, "message": message, "conditions": conditions, "observedGeneration": o.generation,
        "restarts": restarts, "nextRestartAt": format_time(next_restart) if phase == "Pending" else None,
        "rolloutHeldSince": format_time(held_since),
    }
    if prev.get("phase") != phase:
        kind = "Warning" if phase in ("Error", "Degraded") else "Normal"
        events.insert(0, (kind, phase, message))
    dead = pod.exists and pod.phase in ("Failed", "Succeeded")
    return Decision(action, status, action_reason, events, runtime_dead=dead)
