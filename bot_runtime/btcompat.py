"""Backtrader 1.9.78.123 on Python 3.11+: the two fixes docs/research/backtrader-ccxt.md (§5) measured as needed.

Import `bt` from here, never `backtrader` directly, so the shim always runs first.
"""

import collections
import collections.abc
import warnings

# lineiterator.bindlines() still uses collections.Iterable (removed in Python 3.10).
collections.Iterable = collections.abc.Iterable  # type: ignore[attr-defined]
# cerebro._runnext calls datetime.utcnow(), deprecated since 3.12.
warnings.filterwarnings("ignore", category=DeprecationWarning, module=r"backtrader\..*")

import backtrader as bt  # noqa: E402

__all__ = ["bt"]
