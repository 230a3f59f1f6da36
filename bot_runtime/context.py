"""What a run knows once it has started: fixed for its whole life, shared by every part of it."""

from __future__ import annotations

from dataclasses import dataclass

from bot_runtime.api.models import TradingBotSpec
from bot_runtime.db.fleet import BotRef, FleetControls
from bot_runtime.db.repository import BotRepository
from bot_runtime.feeds import timeframe_ms
from bot_runtime.health import RuntimeMetrics
from bot_runtime.journal import Journal
from bot_runtime.lease import LeaseGuard
from bot_runtime.resource import BotResource
from bot_runtime.settings import RuntimeSettings


@dataclass(frozen=True)
class RunContext:
    settings: RuntimeSettings
    holder: str  # "<pod>/<random>": this runtime, as the lease knows it
    resource: BotResource
    spec: TradingBotSpec
    generation: int | None
    bot: BotRef
    repo: BotRepository
    fleet: FleetControls
    lease: LeaseGuard
    run_id: int
    journal: Journal
    metrics: RuntimeMetrics
    trades_at_start: int  # trading_bots.trade_count when the run began: counts continue across runs

    @property
    def bot_id(self) -> int:
        return self.bot.bot_id

    @property
    def tf_seconds(self) -> float:
        return timeframe_ms(self.spec.market.timeframe) / 1000

    @property
    def heartbeat_interval(self) -> float:
        return float(self.spec.runtime.heartbeat_interval_seconds or self.settings.heartbeat_seconds)
