"""Market data feeds: ccxt polling (live), synthetic and CSV replay, built by DataFeedFactory."""

from bot_runtime.feeds.base import Bar, FeedState, ListFeed, QueueFeed
from bot_runtime.feeds.factory import DataFeedFactory, timeframe_ms

__all__ = ["Bar", "DataFeedFactory", "FeedState", "ListFeed", "QueueFeed", "timeframe_ms"]
