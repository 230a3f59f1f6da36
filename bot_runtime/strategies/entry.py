"""Built-in entry logic mixins (long-only, spot markets)."""

from __future__ import annotations

from typing import Any

from pydantic import Field, model_validator

from bot_runtime.btcompat import bt
from bot_runtime.strategies.logic import EntryLogic, entry_logics
from bot_runtime.strategies.params import ParamsModel


def _sign(value: float) -> int:
    return 1 if value > 0 else -1 if value < 0 else 0


class CrossoverParams(ParamsModel):
    fast_period: int = Field(10, ge=1, le=500, description="Bars of the fast moving average.")
    slow_period: int = Field(30, ge=2, le=1000, description="Bars of the slow moving average.")

    @model_validator(mode="after")
    def _fast_below_slow(self) -> CrossoverParams:
        if self.fast_period >= self.slow_period:
            raise ValueError(
                f"fast_period ({self.fast_period}) must be less than slow_period ({self.slow_period})"
            )
        return self


class _MovingAverageCrossover(EntryLogic):
    Params = CrossoverParams
    average: Any = bt.indicators.SimpleMovingAverage

    def __init__(self, strategy: Any, data: Any, params: Any) -> None:
        super().__init__(strategy, data, params)
        self.fast = self.average(data.close, period=params.fast_period)
        self.slow = self.average(data.close, period=params.slow_period)
        self.cross = bt.indicators.CrossOver(self.fast, self.slow)

    @classmethod
    def lookback(cls, params: Any) -> int:
        return int(params.slow_period) + 1

    def signal(self) -> int:
        return _sign(self.cross[0])

    def bias(self) -> int:
        return _sign(self.fast[0] - self.slow[0])


@entry_logics.register
class SmaCrossover(_MovingAverageCrossover):
    name = "sma_crossover"
    description = "Enter when the fast simple moving average crosses above the slow one."
    average = bt.indicators.SimpleMovingAverage


@entry_logics.register
class EmaCrossover(_MovingAverageCrossover):
    name = "ema_crossover"
    description = "Enter when the fast exponential moving average crosses above the slow one."
    average = bt.indicators.ExponentialMovingAverage


class RsiParams(ParamsModel):
    period: int = Field(14, ge=2, le=200, description="RSI period in bars.")
    oversold: float = Field(30.0, gt=0, lt=100, description="Enter when RSI crosses up through this level.")
    overbought: float = Field(70.0, gt=0, lt=100, description="Bearish when RSI crosses down through this level.")

    @model_validator(mode="after")
    def _levels_ordered(self) -> RsiParams:
        if self.oversold >= self.overbought:
            raise ValueError(f"oversold ({self.oversold}) must be below overbought ({self.overbought})")
        return self


@entry_logics.register
class RsiThreshold(EntryLogic):
    name = "rsi_threshold"
    description = "Enter when RSI recovers from oversold (crosses up through `oversold`)."
    Params = RsiParams

    def __init__(self, strategy: Any, data: Any, params: Any) -> None:
        super().__init__(strategy, data, params)
        self.rsi = bt.indicators.RSI(data.close, period=params.period, safediv=True)

    @classmethod
    def lookback(cls, params: Any) -> int:
        return int(params.period) + 2

    def signal(self) -> int:
        now, before = self.rsi[0], self.rsi[-1]
        if before <= self.p.oversold < now:
            return 1
        if before >= self.p.overbought > now:
            return -1
        return 0

    def bias(self) -> int:
        if self.rsi[0] <= self.p.oversold:
            return 1
        if self.rsi[0] >= self.p.overbought:
            return -1
        return 0


class BollingerParams(ParamsModel):
    period: int = Field(20, ge=2, le=500, description="Bars of the middle band (SMA).")
    devfactor: float = Field(2.0, gt=0, le=10, description="Band width in standard deviations.")


@entry_logics.register
class BollingerBreakout(EntryLogic):
    name = "bollinger_breakout"
    description = "Enter when the close breaks above the upper Bollinger band."
    Params = BollingerParams

    def __init__(self, strategy: Any, data: Any, params: Any) -> None:
        super().__init__(strategy, data, params)
        self.bands = bt.indicators.BollingerBands(data.close, period=params.period, devfactor=params.devfactor)
        self.cross_top = bt.indicators.CrossOver(data.close, self.bands.top)
        self.cross_mid = bt.indicators.CrossOver(data.close, self.bands.mid)

    @classmethod
    def lookback(cls, params: Any) -> int:
        return int(params.period) + 1

    def signal(self) -> int:
        if self.cross_top[0] > 0:
            return 1
        if self.cross_mid[0] < 0:
            return -1
        return 0

    def bias(self) -> int:
        return _sign(self.data.close[0] - self.bands.mid[0])


class MacdParams(ParamsModel):
    fast_period: int = Field(12, ge=1, le=500, description="Fast EMA period.")
    slow_period: int = Field(26, ge=2, le=1000, description="Slow EMA period.")
    signal_period: int = Field(9, ge=1, le=500, description="Signal line EMA period.")

    @model_validator(mode="after")
    def _fast_below_slow(self) -> MacdParams:
        if self.fast_period >= self.slow_period:
            raise ValueError(
                f"fast_period ({self.fast_period}) must be less than slow_period ({self.slow_period})"
            )
        return self


@entry_logics.register
class MacdCross(EntryLogic):
    name = "macd_cross"
    description = "Enter when the MACD line crosses above its signal line."
    Params = MacdParams

    def __init__(self, strategy: Any, data: Any, params: Any) -> None:
        super().__init__(strategy, data, params)
        self.macd = bt.indicators.MACD(
            data.close, period_me1=params.fast_period, period_me2=params.slow_period,
            period_signal=params.signal_period,
        )
        self.cross = bt.indicators.CrossOver(self.macd.macd, self.macd.signal)

    @classmethod
    def lookback(cls, params: Any) -> int:
        return int(params.slow_period) + int(params.signal_period) + 1

    def signal(self) -> int:
        return _sign(self.cross[0])

    def bias(self) -> int:
        return _sign(self.macd.macd[0] - self.macd.signal[0])

