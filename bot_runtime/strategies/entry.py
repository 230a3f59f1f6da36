"""Built-in entry logic mixins (long-only, spot markets)."""

from __future__ import annotations

from typing import Any

from bot_runtime.btcompat import bt
from bot_runtime.params import logic as schemas
from bot_runtime.strategies.logic import EntryLogic, entry_logics


def _sign(value: float) -> int:
    return 1 if value > 0 else -1 if value < 0 else 0


class _MovingAverageCrossover(EntryLogic):
    average: Any = bt.indicators.SimpleMovingAverage

    def __init__(self, strategy: Any, data: Any, params: Any) -> None:
        super().__init__(strategy, data, params)
        self.fast = self.average(data.close, period=params.fast_period)
        self.slow = self.average(data.close, period=params.slow_period)
        self.cross = bt.indicators.CrossOver(self.fast, self.slow)

    def signal(self) -> int:
        return _sign(self.cross[0])

    def bias(self) -> int:
        return _sign(self.fast[0] - self.slow[0])


@entry_logics.register
class SmaCrossover(_MovingAverageCrossover):
    schema = schemas.SMA_CROSSOVER
    average = bt.indicators.SimpleMovingAverage


@entry_logics.register
class EmaCrossover(_MovingAverageCrossover):
    schema = schemas.EMA_CROSSOVER
    average = bt.indicators.ExponentialMovingAverage


@entry_logics.register
class RsiThreshold(EntryLogic):
    schema = schemas.RSI_THRESHOLD

    def __init__(self, strategy: Any, data: Any, params: Any) -> None:
        super().__init__(strategy, data, params)
        self.rsi = bt.indicators.RSI(data.close, period=params.period, safediv=True)

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


@entry_logics.register
class BollingerBreakout(EntryLogic):
    schema = schemas.BOLLINGER_BREAKOUT

    def __init__(self, strategy: Any, data: Any, params: Any) -> None:
        super().__init__(strategy, data, params)
        self.bands = bt.indicators.BollingerBands(data.close, period=params.period, devfactor=params.devfactor)
        self.cross_top = bt.indicators.CrossOver(data.close, self.bands.top)
        self.cross_mid = bt.indicators.CrossOver(data.close, self.bands.mid)

    def signal(self) -> int:
        if self.cross_top[0] > 0:
            return 1
        if self.cross_mid[0] < 0:
            return -1
        return 0

    def bias(self) -> int:
        return _sign(self.data.close[0] - self.bands.mid[0])


@entry_logics.register
class MacdCross(EntryLogic):
    schema = schemas.MACD_CROSS

    def __init__(self, strategy: Any, data: Any, params: Any) -> None:
        super().__init__(strategy, data, params)
        self.macd = bt.indicators.MACD(
            data.close,
            period_me1=params.fast_period,
            period_me2=params.slow_period,
            period_signal=params.signal_period,
        )
        self.cross = bt.indicators.CrossOver(self.macd.macd, self.macd.signal)

    def signal(self) -> int:
        return _sign(self.cross[0])

    def bias(self) -> int:
        return _sign(self.macd.macd[0] - self.macd.signal[0])
