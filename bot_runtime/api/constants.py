"""Fixed names of the TradingBot API (DESIGN.md, "Fixed names")."""

from typing import Final

GROUP: Final = "botops.io"
VERSION: Final = "v1alpha1"
API_VERSION: Final = f"{GROUP}/{VERSION}"
KIND: Final = "TradingBot"
PLURAL: Final = "tradingbots"
SINGULAR: Final = "tradingbot"
SHORT_NAME: Final = "tb"
CATEGORY: Final = "botops"
CRD_NAME: Final = f"{PLURAL}.{GROUP}"
BACKTEST_KIND: Final = "Backtest"
BACKTEST_PLURAL: Final = "backtests"
BACKTEST_SHORT_NAME: Final = "bkt"

MANAGER: Final = "tradingbot-operator"

LABEL_NAME: Final = "app.kubernetes.io/name"
LABEL_MANAGED_BY: Final = "app.kubernetes.io/managed-by"
LABEL_BOT: Final = "botops.io/bot"
LABEL_BOT_ID: Final = "botops.io/bot-id"
LABEL_USER_ID: Final = "botops.io/user-id"
LABEL_SOURCE: Final = "botops.io/source"

SOURCE_DATABASE: Final = "database"
SOURCE_KUBERNETES: Final = "kubernetes"

ANNOTATION_SPEC_HASH: Final = "botops.io/spec-hash"
# the restart count and the next restart's time, kept where a bot's Role cannot write (metadata, not status)
ANNOTATION_RESTARTS: Final = "botops.io/restarts"

# Live trading is limited to the venues the exchange double reproduces and the suite covers
# (docs/venues.md); paper mode takes any ccxt venue.
LIVE_VENUES: Final = ("binance", "bybit", "okx")
