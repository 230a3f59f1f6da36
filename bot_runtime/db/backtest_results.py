"""Backtest results in the database: the pod writes a run's whole result, the operator reads its summary."""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any

import sqlalchemy as sa
from sqlalchemy.dialects.postgresql import insert as pg_insert

from bot_runtime.db.schema import BacktestResult


@dataclass(frozen=True)
class StoredResult:
    id: int
    fill_model: str
    metrics: dict[str, Any]


class BacktestStore:
    def __init__(self, engine: sa.Engine) -> None:
        self.engine = engine

    def save(self, job: dict[str, Any], fill_model: str, result_json: str) -> int:
        """Write a run's result (a retried run of the same generation replaces it); its row id."""
        result = json.loads(result_json)
        values = {
            "namespace": job["namespace"],
            "name": job["name"],
            "uid": job["uid"],
            "generation": job["generation"],
            "bot_name": job.get("botName"),
            "fill_model": fill_model,
            "metrics": result["metrics"],
            "result": result,
        }
        insert = pg_insert(BacktestResult).values(**values)
        upsert = insert.on_conflict_do_update(
            constraint="uq_backtest_results_run",
            set_={k: insert.excluded[k] for k in ("fill_model", "metrics", "result", "bot_name")},
        ).returning(BacktestResult.id)
        with self.engine.begin() as conn:
            return int(conn.execute(upsert).scalar_one())

    def find(self, uid: str, generation: int) -> StoredResult | None:
        query = sa.select(BacktestResult.id, BacktestResult.fill_model, BacktestResult.metrics).where(
            BacktestResult.uid == uid, BacktestResult.generation == generation
        )
        with self.engine.connect() as conn:
            row = conn.execute(query).one_or_none()
        return None if row is None else StoredResult(row.id, row.fill_model, dict(row.metrics))

    def result(self, result_id: int) -> dict[str, Any] | None:
        with self.engine.connect() as conn:
            value = conn.execute(sa.select(BacktestResult.result).where(BacktestResult.id == result_id)).scalar()
        return None if value is None else dict(value)
