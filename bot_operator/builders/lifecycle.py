"""The bot's lifecycle as a pure function: what is observed -> what to do and what to report.

`decide()` sees the spec's validity, the pod, the runtime's heartbeat and feed state (from the
database) and the previous status; it returns one action (create or delete the pod, or nothing) and
the operator-owned status: phase, conditions (kstatus's Ready / Reconciling / Stalled included),
restarts with exponential back-off. No I/O and no clock: `now` is an input.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any, Literal

from bot_operator.builders.conditions import get_condition, set_condition
from bot_runtime.api.models import ConditionStatus, Phase, RestartPolicy, TradingBotStatus

Action = Literal["none", "create", "delete"]
# the status fields decide() owns (conditions apart); pod and botId come from the reconcile
DECIDED = {"phase", "message", "observed_generation", "restarts", "next_restart_at", "rollout_held_since"}


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
    ready_since: datetime | None = None  # the kubelet's word, which a bot cannot rewrite

    @classmethod
    def of(cls, pod: dict[str, Any] | None, hash_annotation: str) -> PodView:
        if pod is None:
            return cls()
        meta, status = pod.get("metadata") or {}, pod.get("status") or {}
        ready_condition = get_condition(status.get("conditions"), "Ready") or {}
        ready = ready_condition.get("status") == "True"
        exit_code, reason = None, status.get("reason")
        for cs in status.get("containerStatuses") or []:
            terminated = (cs.get("state") or {}).get("terminated")
            if terminated:
                exit_code = terminated.get("exitCode")
                reason = terminated.get("message") or terminated.get("reason") or reason
        return cls(
            exists=True,
            terminating=bool(meta.get("deletionTimestamp")),
            phase=status.get("phase"),
            ready=ready,
            spec_hash=(meta.get("annotations") or {}).get(hash_annotation),
            created=parse_time(meta.get("creationTimestamp")),
            exit_code=exit_code,
            reason=reason,
            ready_since=parse_time(ready_condition.get("lastTransitionTime")) if ready else None,
        )


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
    invalid_reason: str = "InvalidSpec"  # or why the bot is refused although its spec is valid (NotOwned, ...)
    rollout: str = "immediate"  # or whenFlat
    rollout_max_wait: float = 3600.0
    database_reachable: bool = True  # False: heartbeats cannot be read; no restart is spent on an outage
    database_back_at: datetime | None = None  # when the database answered again: staleness counts from here
    differences: tuple[tuple[str, str], ...] = ()  # (reason, sentence): the spec says one thing, the bot does another


@dataclass
class Decision:
    action: Action
    status: dict[str, Any]
    action_reason: str = ""
    events: list[tuple[str, str, str]] = field(default_factory=list)  # (type, reason, message)
    runtime_dead: bool = False  # the pod's container reported its exit: the runtime is gone for sure


Cond = tuple[bool | ConditionStatus, str, str]  # (status, reason, message) of a condition


@dataclass
class Verdict:
    """What the situation of the bot says: phase and message, the action, the conditions it sets."""

    phase: Phase
    message: str
    action: Action = "none"
    action_reason: str = ""
    healthy: Cond = ("Unknown", "NoRuntime", "no runtime is running")
    ready: Cond = (False, "NotTrading", "")
    stalled: Cond = (False, "Progressing", "")
    reconciling: Cond = (False, "Reconciled", "")


@dataclass
class RestartBudget:
    """Restarts counted against spec.restartPolicy, and when the next may happen."""

    restarts: int
    next_restart: datetime | None
    events: list[tuple[str, str, str]] = field(default_factory=list)

    @classmethod
    def of(cls, o: Observation) -> RestartBudget:
        prev = o.previous  # its restarts and nextRestartAt come from the operator's annotation, not the status
        restarts = int(prev.get("restarts") or 0)
        since = o.pod.ready_since
        if restarts and since and (o.now - since).total_seconds() > o.healthy_reset:
            restarts = 0  # healthy long enough: earlier failures no longer count
        return cls(restarts, parse_time(prev.get("nextRestartAt")))

    def exhausted(self, o: Observation) -> bool:
        return self.restarts > o.policy.max_restarts

    def restart(self, o: Observation, why: str) -> Verdict:
        """Replace the pod after the back-off delay, or give up once the restarts are spent."""
        self.restarts += 1
        limit = o.policy.max_restarts
        if self.exhausted(o):
            message = f"{why}; restarts exhausted ({limit} allowed): a person must look"
            return Verdict("Error", message, stalled=(True, "RestartsExhausted", message))
        delay = backoff_delay(o.policy, self.restarts)
        self.next_restart = o.now + timedelta(seconds=delay)
        self.events.append(("Warning", "RestartScheduled", f"{why}; restart {self.restarts}/{limit} in {delay:.0f} s"))
        message = f"{why}; restart {self.restarts}/{limit} at {format_time(self.next_restart)}"
        return Verdict("Pending", message, "delete", why, reconciling=(True, "BackingOff", message))


def _hold_for_flat(o: Observation) -> datetime | None:
    """whenFlat: since when a changed spec has been held back, or None to roll out now."""
    pod = o.pod
    if not pod.exists or pod.spec_hash == o.desired_hash:
        return None
    if o.rollout != "whenFlat" or pod.terminating or pod.phase in ("Failed", "Succeeded"):
        return None
    busy = float(o.runtime.get("position") or 0.0) > 0 or int(o.runtime.get("openOrders") or 0) > 0
    since = parse_time(o.previous.get("rolloutHeldSince")) or o.now
    if not busy or (o.now - since).total_seconds() >= o.rollout_max_wait:
        return None
    return since


# ------------------------------------------------------------------------------------ situations


def _invalid(o: Observation) -> Verdict:
    verdict = Verdict("Error", o.validation_message, stalled=(True, o.invalid_reason, o.validation_message))
    if o.pod.exists and not o.pod.terminating:
        verdict.action, verdict.action_reason = "delete", o.validation_message
    return verdict


def _suspended(o: Observation, budget: RestartBudget) -> Verdict:
    budget.restarts, budget.next_restart = 0, None
    if not o.pod.exists:
        return Verdict("Suspended", "suspended (spec.suspended is true); nothing runs")
    message = "suspended: stopping the bot pod"
    verdict = Verdict("Stopping", message, reconciling=(True, "Suspending", message))
    if not o.pod.terminating:
        verdict.action, verdict.action_reason = "delete", "suspended"
    return verdict


def _terminating(o: Observation, budget: RestartBudget) -> Verdict:
    if budget.next_restart:  # a failed pod on its way out: still backing off, with the message that says why
        message = o.previous.get("message") or f"restart {budget.restarts} at {format_time(budget.next_restart)}"
        return Verdict("Pending", message, reconciling=(True, "BackingOff", message))
    message = "waiting for the old bot pod to stop before starting a new one"
    return Verdict("Stopping", message, reconciling=(True, "PodTerminating", message))


def _no_pod(o: Observation, budget: RestartBudget) -> Verdict:
    if budget.exhausted(o):
        message = o.previous.get("message") or "restarts exhausted"
        return Verdict("Error", message, stalled=(True, "RestartsExhausted", message))
    if budget.next_restart and o.now < budget.next_restart:
        # keep the message that scheduled the restart: it says why, and when
        message = o.previous.get("message") or f"restart {budget.restarts} at {format_time(budget.next_restart)}"
        return Verdict("Pending", message, reconciling=(True, "BackingOff", message))
    budget.next_restart = None
    message = "creating the bot pod"
    return Verdict("Starting", message, "create", "no bot pod", reconciling=(True, "PodCreating", message))


def _rollout(o: Observation, budget: RestartBudget) -> Verdict:
    why = f"spec changed (generation {o.generation}): replacing the bot pod"
    budget.events.append(("Normal", "Replacing", why))
    return Verdict("Stopping", why, "delete", why, reconciling=(True, "RollingOut", why))


# "2026-11-30 09:11:50,123 ERROR bot_runtime: " (a log line's head) and "exit 2: " (the runtime's last words)
_LOG_HEAD = re.compile(r"^\d{4}-\d\d-\d\d[ T][\d:,.]+Z? +[A-Z]+ +[\w.]+: +")
_EXIT_HEAD = re.compile(r"^exit \d+: +")


def exit_sentence(reason: str | None) -> str:
    """The why of a runtime's exit as a sentence: a termination message taken from the logs loses its timestamp,
    level and logger, and keeps only its last line."""
    lines = [line.strip() for line in (reason or "").splitlines() if line.strip()]
    if not lines:
        return ""
    return _EXIT_HEAD.sub("", _LOG_HEAD.sub("", lines[-1]))


def _exited(o: Observation, budget: RestartBudget) -> Verdict:
    why = f"the runtime exited (code {o.pod.exit_code})"
    if sentence := exit_sentence(o.pod.reason):
        why += f": {sentence}"
    return budget.restart(o, why)


def _database_down(o: Observation) -> Verdict:
    message = (
        "the database is unreachable: heartbeats, halts and trades cannot be read; the runtime adds no "
        "exposure meanwhile and no pod is restarted for it"
    )
    return Verdict(
        "Degraded",
        message,
        healthy=("Unknown", "DatabaseUnreachable", message),
        ready=("Unknown", "DatabaseUnreachable", message),
    )


def _heartbeat(o: Observation, reference: datetime, age: float) -> Cond:
    if o.last_heartbeat is None or (o.pod.created and o.last_heartbeat < o.pod.created):
        return "Unknown", "NoHeartbeat", "waiting for the runtime's first heartbeat"
    if o.database_back_at and o.last_heartbeat < o.database_back_at:
        return "Unknown", "DatabaseRecovered", "the database answers again; waiting for the runtime's next heartbeat"
    if age <= o.stale_after:
        return True, "HeartbeatFresh", f"heartbeats arrive (stale after {o.stale_after:.0f} s)"
    return Verdict.healthy


def _running(o: Observation, budget: RestartBudget) -> Verdict:
    # A heartbeat the runtime could not write during an outage is not the runtime's fault.
    reference = max(filter(None, [o.last_heartbeat, o.pod.created, o.database_back_at]), default=o.now)
    age = (o.now - reference).total_seconds()
    healthy = _heartbeat(o, reference, age)
    if age > o.replace_after:
        verdict = budget.restart(o, f"no heartbeat since {format_time(reference)}")
        verdict.healthy, verdict.reconciling = (False, "HeartbeatStale", verdict.message), Verdict.reconciling
        return verdict
    if age > o.stale_after:
        message = f"no heartbeat since {format_time(reference)} (stale after {o.stale_after:.0f} s)"
        return Verdict("Degraded", message, healthy=(False, "HeartbeatStale", message))
    if o.feed_state == "CONNBROKEN":
        message = "the market data feed is broken; the runtime is reconnecting"
        return Verdict("Degraded", message, healthy=(False, "FeedBroken", message))
    if o.runtime.get("halted"):
        message = f"trading halted: {o.runtime.get('haltReason') or 'see the runtime'}"
        return Verdict("Degraded", message, healthy=healthy, ready=(False, "TradingHalted", message))
    if o.pod.ready and o.feed_state == "LIVE" and healthy[0] is True and o.runtime.get("generation") == o.generation:
        message = "trading on a live feed"
        return Verdict("Running", message, healthy=healthy, ready=(True, "Trading", message))
    waiting = (
        "the runtime's first heartbeat"
        if healthy[0] is not True
        else "the pod to be ready"
        if not o.pod.ready
        else "the live feed"
        if o.feed_state != "LIVE"
        else "the runtime of this generation"
    )
    message = f"waiting for {waiting}"
    return Verdict("Starting", message, healthy=healthy, reconciling=(True, "Starting", message))


def _situation(o: Observation, budget: RestartBudget, held_since: datetime | None) -> Verdict:
    if not o.valid:
        return _invalid(o)
    if o.suspended:
        return _suspended(o, budget)
    if o.pod.terminating:
        return _terminating(o, budget)
    if not o.pod.exists:
        return _no_pod(o, budget)
    if o.pod.spec_hash != o.desired_hash and held_since is None:
        return _rollout(o, budget)
    if not o.database_reachable:
        return _database_down(o)
    if o.pod.phase in ("Failed", "Succeeded"):
        return _exited(o, budget)
    return _running(o, budget)


# -------------------------------------------------------------------------------------- decision


def _hold_message(o: Observation, held_since: datetime) -> str:
    position = float(o.runtime.get("position") or 0.0)
    until = format_time(held_since + timedelta(seconds=o.rollout_max_wait))
    return (
        f"spec generation {o.generation} waits until the bot is flat (position {position:.8g}, "
        f"{int(o.runtime.get('openOrders') or 0)} open orders); rollout at the latest at {until}"
    )


def _drift(o: Observation) -> Cond:
    """Live: the account holds less than the bot's own fills add up to (the runtime says so)."""
    drift = o.runtime.get("drift")
    return (True, "AccountHoldsLess", str(drift)) if drift else (False, "NoDrift", "")


def _differs(o: Observation) -> Cond:
    """What runs other than the spec says: found by the operator (a strategy fallback) or said by the runtime
    (a paper account kept across a spec change), each with what to do."""
    found = list(o.differences)
    if o.runtime.get("differs"):
        found.append(("RuntimeDiffers", str(o.runtime["differs"])))
    if not found:
        return False, "AsSpecified", ""
    return True, found[0][0], " ".join(sentence for _, sentence in found)


FLATTEN_FAILED = " failed: "  # in the runtime's flatten text once an attempt failed (FlattenState.describe)


def _flattening(o: Observation) -> Cond:
    """A flatten the runtime is carrying out; CloseFailing while the venue refuses the close."""
    text = o.runtime.get("flatten")
    if not text:
        return False, "NotFlattening", ""
    return True, "CloseFailing" if FLATTEN_FAILED in str(text) else "ClosingPosition", str(text)


def _flatten_failure(o: Observation) -> str | None:
    """The flatten's error when it is new (one event per distinct error, not one per retry)."""
    text = str(o.runtime.get("flatten") or "")
    if FLATTEN_FAILED not in text:
        return None
    before = str((get_condition(o.previous.get("conditions"), "Flattening") or {}).get("message") or "")
    error = text.split(FLATTEN_FAILED, 1)[1]
    return None if before.split(FLATTEN_FAILED, 1)[-1] == error else text


def _conditions(o: Observation, v: Verdict) -> list[dict[str, Any]]:
    ready = v.ready
    if v.phase == "Suspended":
        ready = (False, "Suspended", v.message)
    elif not ready[0] and not ready[2]:
        ready = (False, ready[1], v.message)
    pod = o.pod
    values: dict[str, Cond] = {
        "Ready": ready,
        "Valid": (o.valid, "SpecValid" if o.valid else o.invalid_reason, "" if o.valid else o.validation_message),
        "PodReady": (
            pod.ready,
            "PodReady" if pod.ready else "PodNotReady" if pod.exists else "NoPod",
            "" if pod.exists else "no bot pod",
        ),
        "Healthy": v.healthy,
        "Synced": o.synced,
        "Suspended": (o.suspended, "Suspended" if o.suspended else "NotSuspended", ""),
        "PositionDrift": _drift(o),
        "SpecDiffers": _differs(o),
        "Flattening": _flattening(o),
        "Reconciling": v.reconciling,
        "Stalled": v.stalled,
    }
    conditions = list(o.previous.get("conditions") or [])
    for type, (value, reason, text) in values.items():
        conditions = set_condition(conditions, type, value, reason, text, o.generation, o.now)
    return conditions


def decide(o: Observation) -> Decision:
    budget = RestartBudget.of(o)
    held_since = _hold_for_flat(o)
    verdict = _situation(o, budget, held_since)
    if held_since is not None and verdict.action == "none":
        verdict.message = _hold_message(o, held_since)
        verdict.reconciling = (True, "WaitingForFlat", verdict.message)
    else:
        held_since = None
    if verdict.phase == "Error" and not verdict.stalled[0]:
        verdict.stalled = (True, "RestartsExhausted", verdict.message)
    status = TradingBotStatus(
        phase=verdict.phase,
        message=verdict.message,
        observed_generation=o.generation,
        restarts=budget.restarts,
        next_restart_at=format_time(budget.next_restart) if verdict.phase == "Pending" else None,
        rollout_held_since=format_time(held_since),
    ).model_dump(by_alias=True, mode="json", include=DECIDED)  # None kept: a merge patch clears the field
    status["conditions"] = _conditions(o, verdict)
    events = budget.events
    was_drifting = (get_condition(o.previous.get("conditions"), "PositionDrift") or {}).get("status") == "True"
    if o.runtime.get("drift") and not was_drifting:
        events.append(("Warning", "PositionDrift", str(o.runtime["drift"])))
    differs, before = _differs(o), get_condition(o.previous.get("conditions"), "SpecDiffers") or {}
    if differs[0] is True and differs[2] != before.get("message"):  # one event per new difference, not per pass
        events.append(("Warning", "SpecDiffers", differs[2]))
    if failure := _flatten_failure(o):
        events.append(("Warning", "FlattenFailed", failure))
    said = {text for _, _, text in events}
    new_bot = o.previous.get("phase") is None and verdict.phase == "Starting"  # its status says it: no event
    if o.previous.get("phase") != verdict.phase and verdict.message not in said and not new_bot:  # one per transition
        kind = "Warning" if verdict.phase in ("Error", "Degraded") else "Normal"
        events.insert(0, (kind, verdict.phase, verdict.message))
    dead = o.pod.exists and o.pod.phase in ("Failed", "Succeeded")
    return Decision(verdict.action, status, verdict.action_reason, events, runtime_dead=dead)


def revisit_at(o: Observation, decided: dict[str, Any]) -> datetime | None:
    """The earliest time `decide` could answer otherwise than `decided` (the status it gave for `o`) with only the
    clock moved on: a heartbeat going stale, a restart falling due, a healthy stretch resetting the count, a held
    rollout's deadline. None: never by the clock alone."""
    times = [parse_time(decided.get("nextRestartAt"))]
    if o.pod.exists and not o.pod.terminating:
        reference = max(filter(None, [o.last_heartbeat, o.pod.created, o.database_back_at]), default=None)
        if reference is not None:
            times += [reference + timedelta(seconds=o.stale_after), reference + timedelta(seconds=o.replace_after)]
    if o.pod.ready_since is not None:
        times.append(o.pod.ready_since + timedelta(seconds=o.healthy_reset))
    if held := parse_time(decided.get("rolloutHeldSince")):
        times.append(held + timedelta(seconds=o.rollout_max_wait))
    return min((t for t in times if t is not None and t > o.now), default=None)
