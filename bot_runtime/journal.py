"""The runtime's durable record of what it did: order intents, order updates, trades, performance,
events. Nothing is lost when the database is away.

Writes go to PostgreSQL from a background thread, so a slow database never delays trading. When a
write fails, the record goes to a local spool file (JSON lines, fsynced) and later records follow it
there, keeping their order; the spool is replayed when the database answers again. Replays are
safe: trades and order intents are idempotent by client order id.
"""

from __future__ import annotations

import json
import logging
import os
import queue
import threading
import time
from dataclasses import asdict
from datetime import date, datetime
from decimal import Decimal
from pathlib import Path
from typing import Any

from bot_runtime.db.engine import DB_ERRORS
from bot_runtime.db.fleet import FleetControls, SavedState
from bot_runtime.db.repository import BotRepository, FillRecord, TradeRecord

log = logging.getLogger(__name__)


def _encode(value: Any) -> Any:
    if isinstance(value, Decimal):
        return {"$dec": str(value)}
    if isinstance(value, datetime):
        return {"$dt": value.isoformat()}
    if isinstance(value, date):
        return {"$date": value.isoformat()}
    return value


def _decode(value: Any) -> Any:
    if isinstance(value, dict) and "$dec" in value:
        return Decimal(value["$dec"])
    if isinstance(value, dict) and "$dt" in value:
        return datetime.fromisoformat(value["$dt"])
    if isinstance(value, dict) and "$date" in value:
        return date.fromisoformat(value["$date"])
    return value


class Journal:
    def __init__(
        self,
        repo: BotRepository,
        bot_id: int,
        run_id: int | None,
        symbol: str,
        spool_path: Path,
        retry_interval: float = 2.0,
    ) -> None:
        self.repo, self.bot_id, self.run_id, self.symbol = repo, bot_id, run_id, symbol
        self.spool_path = spool_path
        self.spool_path.parent.mkdir(parents=True, exist_ok=True)
        self.retry_interval = retry_interval
        # A spool left by an earlier container of this pod is replayed first.
        self._spool_count = self._count_spool_lines()
        self._queue: queue.Queue[tuple[str, dict[str, Any]] | None] = queue.Queue()
        self._spool_lock = threading.Lock()
        self.database_ok = True
        self._thread = threading.Thread(target=self._run, name="journal-writer", daemon=True)
        self._thread.start()

    # ------------------------------------------------------------------------------- producers

    def intent(self, client_order_id: str, side: str, order_type: str, amount: float, price: float | None) -> None:
        """Synchronous: the intent is durable (database or spool) before the order is sent."""
        record = {
            "client_order_id": client_order_id,
            "side": side,
            "order_type": order_type,
            "amount": amount,
            "price": price,
        }
        if not self.spooled() and self._write("intent", record):
            return
        self._append_spool("intent", record)

    def update(self, client_order_id: str, **values: Any) -> None:
        self._put("order_update", {"client_order_id": client_order_id, **values})

    def trade(self, trade: TradeRecord) -> None:
        self._put("trade", asdict(trade))

    def fill(self, fill: FillRecord) -> None:
        self._put("fill", asdict(fill))

    def performance(self, **values: Any) -> None:
        self._put("performance", values)

    def state_now(self, lease_token: int, state: SavedState) -> None:
        """The bot's trading state (latest wins; fenced by the lease token). Synchronous, like an intent:
        durable (database or spool) before the caller goes on, so no older state can overtake it."""
        record = {**asdict(state), "lease_token": lease_token}
        if not self.spooled() and self._write("state", record):
            return
        self._append_spool("state", record)

    def event(self, type: str, message: str, severity: str = "info", details: dict[str, Any] | None = None) -> None:
        self._put("event", {"type": type, "message": message, "severity": severity, "details": details})

    def _put(self, kind: str, record: dict[str, Any]) -> None:
        self._queue.put((kind, record))

    # ---------------------------------------------------------------------------------- writer

    def _apply(self, kind: str, record: dict[str, Any]) -> None:
        rec = {k: _decode(v) for k, v in record.items()}
        if kind == "intent":
            self.repo.record_order_intent(
                self.bot_id,
                self.run_id,
                client_order_id=rec["client_order_id"],
                symbol=self.symbol,
                side=rec["side"],
                order_type=rec["order_type"],
                amount=rec["amount"],
                price=rec["price"],
            )
        elif kind == "order_update":
            cid = rec.pop("client_order_id")
            self.repo.update_order(self.bot_id, cid, **{k: v for k, v in rec.items() if v is not None})
        elif kind == "trade":
            self.repo.record_trade(self.bot_id, TradeRecord(**rec))
        elif kind == "fill":
            self.repo.record_fill(self.bot_id, FillRecord(**rec))
        elif kind == "performance":
            self.repo.record_performance(self.bot_id, self.run_id, **rec)
        elif kind == "state":
            token = rec.pop("lease_token")
            FleetControls(self.repo).save_state(self.bot_id, token, SavedState(**rec))
        elif kind == "event":
            self.repo.record_event(
                self.bot_id, "runtime", rec["type"], rec["message"], severity=rec["severity"], details=rec["details"]
            )
        else:
            raise ValueError(f"unknown journal record kind {kind!r}")

    def _write(self, kind: str, record: dict[str, Any]) -> bool:
        try:
            self._apply(kind, {k: _encode(v) for k, v in record.items()})
        except DB_ERRORS as exc:
            if self.database_ok:
                log.warning("database unreachable (%s): spooling to %s", type(exc).__name__, self.spool_path)
            self.database_ok = False
            return False
        return True

    def _append_spool(self, kind: str, record: dict[str, Any]) -> None:
        line = json.dumps({"kind": kind, "record": {k: _encode(v) for k, v in record.items()}})
        with self._spool_lock, self.spool_path.open("a") as handle:
            handle.write(line + "\n")
            handle.flush()
            os.fsync(handle.fileno())
            self._spool_count += 1

    def _count_spool_lines(self) -> int:
        if not self.spool_path.exists():
            return 0
        with self.spool_path.open() as handle:
            return sum(1 for line in handle if line.strip())

    def spool_lines(self) -> list[str]:
        """What waits in the spool, in order (JSON lines)."""
        with self._spool_lock:
            if not self.spool_path.exists():
                return []
            return [line for line in self.spool_path.read_text().splitlines() if line.strip()]

    def adopt(self, lines: list[str]) -> None:
        """Records an earlier runtime could not write: they go to the database first, in their order."""
        if not lines:
            return
        with self._spool_lock:
            earlier = self.spool_path.read_text() if self.spool_path.exists() else ""
            self.spool_path.write_text("".join(f"{line}\n" for line in lines) + earlier)
            self._spool_count += len(lines)
        log.info("%d records an earlier runtime left unsaved go to the database first", len(lines))

    def spooled(self) -> int:
        """Records waiting in the spool for the database."""
        return self._spool_count

    def _replay_spool(self) -> bool:
        """Write spooled records in order; keep what could not be written. True when empty."""
        with self._spool_lock:
            if not self.spool_path.exists():
                return True
            lines = [line for line in self.spool_path.read_text().splitlines() if line.strip()]
            done = 0
            for line in lines:
                item = json.loads(line)
                if not self._write(item["kind"], item["record"]):
                    break
                done += 1
            remaining = lines[done:]
            self._spool_count = len(remaining)
            if remaining:
                tmp = self.spool_path.with_suffix(".tmp")
                tmp.write_text("".join(f"{line}\n" for line in remaining))
                os.replace(tmp, self.spool_path)
            else:
                self.spool_path.unlink()
        if done:
            log.info("replayed %d spooled records into the database (%d left)", done, len(remaining))
        if not remaining and not self.database_ok:
            log.info("database reachable again")
            self.database_ok = True
        return not remaining

    def _run(self) -> None:
        last_retry = 0.0
        while True:
            try:
                item = self._queue.get(timeout=self.retry_interval)
            except queue.Empty:
                item = None
            if self.spooled() and time.monotonic() - last_retry >= self.retry_interval:
                last_retry = time.monotonic()
                self._replay_spool()
            if item is not None:
                kind, record = item
                if self.spooled() or not self._write(kind, record):
                    self._append_spool(kind, record)
                self._queue.task_done()  # counted only once written or spooled: flush() waits for that

    def flush(self, timeout: float) -> bool:
        """Wait until everything reached the database (or the spool, if it is still away). A record the writer
        has taken from the queue but not yet written still counts (unfinished_tasks), so none is lost at exit."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self._queue.unfinished_tasks == 0:
                return True if not self.spooled() else self._replay_spool()
            time.sleep(0.05)
        return False
