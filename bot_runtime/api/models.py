"""Spec and status of a TradingBot: the single source of truth for the CRD schema.

Field names are snake_case in Python and camelCase in the resource (an alias generator). Every field
carries a description: `kubectl explain tb.spec.<field>` shows it. The apiserver checks the structural
rules (types, enums, ranges, patterns); `bot_runtime.api.validation` adds the semantic ones (registry,
cross-field rules) with messages that name the field.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping
from typing import Annotated, Any, Literal, get_args

from pydantic import BaseModel, ConfigDict, Field, ValidationError
from pydantic.alias_generators import to_camel

from bot_runtime.api.constants import API_VERSION, KIND

log = logging.getLogger(__name__)

DNS_LABEL = r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?$"
QUANTITY = r"^[0-9]+(\.[0-9]+)?(m|k|Ki|M|Mi|G|Gi|T|Ti)?$"
Timeframe = Literal["1s", "1m", "3m", "5m", "15m", "30m", "1h", "2h", "4h", "6h", "8h", "12h", "1d", "3d", "1w", "1M"]
TIMEFRAMES: tuple[str, ...] = get_args(Timeframe)


class Model(BaseModel):
    model_config = ConfigDict(
        alias_generator=to_camel,
        populate_by_name=True,
        extra="forbid",
        frozen=True,
        strict=True,  # like the apiserver: "yes" is not a boolean, "5" is not a number
        validate_default=True,
    )

    def to_resource(self) -> dict[str, Any]:
        """The camelCase form stored in the resource (unset optional fields left out)."""
        return self.model_dump(by_alias=True, exclude_none=True, mode="json")


# ------------------------------------------------------------------------------------------ spec


Mode = Literal["paper", "live"]
FeedType = Literal["ccxt", "synthetic", "csv"]


class StrategySpec(Model):
    type: str = Field(
        pattern=r"^[A-Za-z][A-Za-z0-9_]{0,62}$",
        description="Registered strategy name, e.g. CustomStrategy or AdvancedStrategyFramework "
        "(`bot-runtime strategies` lists them). An unknown name falls back to CustomStrategy in "
        "paper mode and is refused in live mode.",
    )
    params: dict[str, Any] = Field(
        default_factory=dict,
        description="Strategy parameters, checked against the strategy's parameter schema. For "
        "CustomStrategy: entry_logic and exit_logic name registered logic mixins, each as "
        "{name, params}; exit_logic may be a list.",
    )


class MarketSpec(Model):
    exchange: str = Field(
        pattern=r"^[a-z][a-z0-9_]{1,31}$",
        description="ccxt exchange id, e.g. binance, kraken, coinbase.",
    )
    symbol: str = Field(
        pattern=r"^[A-Z0-9]{1,20}/[A-Z0-9]{1,20}(:[A-Z0-9]{1,20})?$",
        description="Unified ccxt market symbol, BASE/QUOTE (e.g. BTC/USDT), or BASE/QUOTE:SETTLE for swaps.",
    )
    timeframe: Timeframe = Field(
        default="1m",
        description="Candle timeframe the strategy trades on; only closed candles reach the strategy.",
    )
    warmup_bars: int = Field(
        default=100,
        ge=0,
        le=5000,
        description="Closed candles loaded before trading starts, so indicators are ready (0 to 5000).",
    )
    feed: FeedType = Field(
        default="ccxt",
        description="Market data source: ccxt (the exchange's REST API), synthetic (a seeded random "
        "walk, for demos) or csv (a replay of csvPath, paper mode only).",
    )
    csv_path: str | None = Field(
        default=None,
        min_length=1,
        max_length=1024,
        description="CSV file with timestamp,open,high,low,close,volume rows; required when feed is csv.",
    )
    seed: int | None = Field(
        default=None,
        ge=0,
        le=2**31 - 1,
        description="Random seed of the synthetic feed (default: the bot id).",
    )
    sandbox: bool = Field(
        default=False,
        description="Use the exchange's testnet/sandbox endpoints (ccxt set_sandbox_mode).",
    )


class CredentialsSecretRef(Model):
    name: str = Field(
        pattern=DNS_LABEL,
        max_length=253,
        description="Secret in the bot's namespace holding the exchange API credentials.",
    )
    api_key_key: str = Field(default="apiKey", min_length=1, max_length=253, description="Key of the API key.")
    secret_key: str = Field(default="secret", min_length=1, max_length=253, description="Key of the API secret.")
    password_key: str | None = Field(
        default=None,
        min_length=1,
        max_length=253,
        description="Key of the API password/passphrase, for exchanges that need one (e.g. kucoin, okx).",
    )


class BrokerSpec(Model):
    cash: float = Field(
        default=10_000.0,
        gt=0,
        le=1e12,
        description="Paper mode: starting cash in the quote currency.",
    )
    commission: float = Field(
        default=0.001,
        ge=0,
        le=0.1,
        description="Paper mode: commission per trade as a fraction (0.001 = 0.1 %).",
    )
    slippage: float = Field(
        default=0.0,
        ge=0,
        le=0.1,
        description="Paper mode: slippage applied to fills as a fraction of price.",
    )
    fill: Literal["nextOpen", "close"] = Field(
        default="nextOpen",
        description="Paper mode and backtests: a market order fills at the next bar's open (nextOpen, what a "
        "live order gets) or at the close of the bar that signalled it (close: cheat-on-close, for comparison).",
    )
    credentials_secret_ref: CredentialsSecretRef | None = Field(
        default=None,
        description="Live mode: the Secret with the exchange credentials. They reach the bot pod as "
        "environment variables only; never the database, a log line or the resource.",
    )


class RiskSpec(Model):
    max_position_size: float | None = Field(
        default=None,
        gt=0,
        description="Largest position, in base currency units; orders beyond it are refused.",
    )
    max_daily_loss: float | None = Field(
        default=None,
        gt=0,
        description="Largest loss per UTC day, in quote currency (realised plus unrealised); reaching it "
        "halts trading for the day and says so in status.",
    )
    max_open_orders: int = Field(
        default=5,
        ge=1,
        le=100,
        description="Most orders open at once; further orders are refused.",
    )


# A Kubernetes quantity: 2, "500m", "256Mi" (int-or-string in the CRD; the pattern is checked here).
QuantityValue = Annotated[str, Field(pattern=QUANTITY)] | int


class ResourceRequirements(Model):
    requests: dict[str, QuantityValue] | None = Field(
        default=None,
        description="Minimum cpu and memory for the bot container, e.g. {cpu: 100m, memory: 256Mi}.",
    )
    limits: dict[str, QuantityValue] | None = Field(
        default=None,
        description="Maximum cpu and memory for the bot container, e.g. {memory: 512Mi}.",
    )


class RuntimeSpec(Model):
    image: str | None = Field(
        default=None,
        min_length=1,
        max_length=512,
        description="Bot runtime image; default: the operator's configured runtime image.",
    )
    image_pull_policy: Literal["Always", "IfNotPresent", "Never"] | None = Field(
        default=None,
        description="Image pull policy of the bot container.",
    )
    resources: ResourceRequirements | None = Field(
        default=None,
        description="Container resources; default: the operator's configured runtime resources.",
    )
    heartbeat_interval_seconds: int | None = Field(
        default=None,
        ge=1,
        le=300,
        description="Seconds between heartbeats to the database (default: the operator's, 10); status.runtime "
        "is patched on change and otherwise at most once a minute.",
    )


class RestartPolicy(Model):
    max_restarts: int = Field(
        default=5,
        ge=0,
        le=1000,
        description="Pod restarts allowed before the bot goes to Error; the count resets after "
        "10 minutes of healthy running.",
    )
    initial_delay_seconds: float = Field(default=10.0, ge=0, le=3600, description="Delay before the first restart.")
    factor: float = Field(default=2.0, ge=1, le=10, description="Each further delay is the previous one times this.")
    max_delay_seconds: float = Field(default=300.0, ge=1, le=86400, description="Upper bound of the delay.")


class SecretKeyRef(Model):
    name: str = Field(pattern=DNS_LABEL, max_length=253, description="Secret in the bot's namespace.")
    key: str = Field(default="urls", min_length=1, max_length=253, description="Key within the Secret.")


NotificationEvent = Literal[
    "started",
    "stopped",
    "order_filled",
    "position_opened",
    "position_closed",
    "order_rejected",
    "feed_lost",
    "feed_recovered",
    "risk_limit",
    "daily_loss_halt",
    "lease_lost",
    "fatal_error",
    "daily_summary",
    "bot_error",
    "bot_degraded",
    "bot_recovered",
    "pod_replaced",
]
NOTIFICATION_EVENTS: tuple[str, ...] = get_args(NotificationEvent)


class NotificationsSpec(Model):
    secret_ref: SecretKeyRef = Field(
        description="Secret key holding one or more apprise URLs (one per line), e.g. tgram://TOKEN/CHAT.",
    )
    events: list[NotificationEvent] | None = Field(
        default=None,
        max_length=len(NOTIFICATION_EVENTS),
        description="Event types to send; default: all but daily_summary (which is sent only when listed).",
    )
    min_severity: Literal["info", "warning", "error"] = Field(
        default="info",
        description="Lowest severity sent.",
    )


class RolloutSpec(Model):
    strategy: Literal["immediate", "whenFlat"] = Field(
        default="immediate",
        description="immediate: a changed spec replaces the pod at once. whenFlat: it waits until the bot "
        "holds no position and no open order (at most maxWaitSeconds, then as immediate).",
    )
    max_wait_seconds: int = Field(
        default=3600,
        ge=0,
        le=7 * 86400,
        description="Longest a whenFlat rollout waits for the bot to be flat.",
    )


class TradingBotSpec(Model):
    description: str | None = Field(default=None, max_length=1000, description="Free text for people.")
    strategy: StrategySpec = Field(description="Which strategy trades, and its parameters.")
    market: MarketSpec = Field(description="Exchange, market and candle timeframe.")
    mode: Mode = Field(default="paper", description="paper (simulated fills) or live (real orders).")
    broker: BrokerSpec = Field(default_factory=BrokerSpec, description="Paper broker settings or live credentials.")
    risk: RiskSpec = Field(default_factory=RiskSpec, description="Limits checked before every order.")
    runtime: RuntimeSpec = Field(default_factory=RuntimeSpec, description="Bot pod image, resources, heartbeat.")
    restart_policy: RestartPolicy = Field(
        default_factory=RestartPolicy,
        description="Exponential back-off for replacing a failed bot pod.",
    )
    suspended: bool = Field(default=False, description="true removes the bot pod and keeps everything else.")
    notifications: NotificationsSpec | None = Field(
        default=None,
        description="Where and what to notify (Telegram, Discord, webhooks... through apprise).",
    )
    on_start: Literal["adopt", "flatten", "halt"] = Field(
        default="adopt",
        description="What a (re)starting runtime does with a position it finds (restored from the database "
        "in paper mode, reconciled with the exchange in live mode): adopt it and protect it with the "
        "strategy's exits, flatten (close) it, or halt until a person resumes the bot "
        "(bot-operator fleet resume --bot NAMESPACE/NAME).",
    )
    rollout: RolloutSpec = Field(default_factory=RolloutSpec, description="How a changed spec is rolled out.")
    allow_shared_account: bool = Field(
        default=False,
        description="Live mode: allow another bot on the same exchange account to trade the same symbol "
        "(both bots must allow it). Without it the second bot is refused.",
    )


# ---------------------------------------------------------------------------------------- status


Phase = Literal["Pending", "Starting", "Running", "Degraded", "Suspended", "Error", "Stopping"]
ConditionStatus = Literal["True", "False", "Unknown"]
FeedState = Literal["DELAYED", "LIVE", "CONNBROKEN", "DISCONNECTED", "UNKNOWN"]


class Condition(Model):
    type: str = Field(
        pattern=r"^[A-Z][A-Za-z]{0,63}$",
        description="Valid, PodReady, Healthy, Ready, Synced, Suspended, Reconciling or Stalled.",
    )
    status: ConditionStatus = Field(description="True, False or Unknown.")
    reason: str = Field(
        pattern=r"^[A-Za-z]([A-Za-z0-9_,:]*[A-Za-z0-9_])?$",
        max_length=1024,
        description="CamelCase reason.",
    )
    message: str = Field(default="", max_length=32768, description="Human readable details.")
    last_transition_time: str = Field(
        json_schema_extra={"format": "date-time"},
        description="When the status last changed.",
    )
    observed_generation: int | None = Field(
        default=None,
        ge=0,
        description="The spec generation this condition was computed for.",
    )

    def to_resource(self) -> dict[str, Any]:
        data = super().to_resource()
        if not data.get("message"):  # an empty message is left out: the 1.20 test apiserver reads "" as null here
            data.pop("message", None)
        return data


class RuntimeStatus(Model):
    last_heartbeat: str | None = Field(
        default=None,
        json_schema_extra={"format": "date-time"},
        description="Last heartbeat the runtime reported.",
    )
    feed_state: FeedState | None = Field(default=None, description="Market data feed state.")
    equity: float | None = Field(default=None, description="Cash plus position value, in quote currency.")
    cash: float | None = Field(default=None, description="Free cash, in quote currency.")
    pnl: float | None = Field(default=None, description="Profit and loss since the bot started, in quote currency.")
    position: float | None = Field(default=None, description="Open position, in base currency units.")
    trade_count: int | None = Field(default=None, ge=0, description="Trades made.")
    open_orders: int | None = Field(default=None, ge=0, description="Orders open now.")
    generation: int | None = Field(default=None, ge=0, description="The spec generation the runtime runs.")
    lease_token: int | None = Field(default=None, ge=0, description="The runtime's fencing token (database lease).")
    run_id: int | None = Field(default=None, ge=0, description="The bot_runs row of this runtime.")
    pod: str | None = Field(default=None, description="The pod the runtime runs in.")
    halted: bool | None = Field(
        default=None, description="true while trading is not active (reducing or halted: see tradingState)."
    )
    trading_state: Literal["active", "reducing", "halted"] | None = Field(
        default=None,
        description="active; reducing: only orders that reduce the position (exits, stop-losses) go, after a fleet "
        "halt, onStart: halt, the daily-loss limit or while the database is unreachable; halted: nothing goes "
        "(a fleet halt asked as a full stop).",
    )
    flatten: str | None = Field(
        default=None, description="While a flatten closes the position: its reason, attempts and last error."
    )
    unsaved: list[str] | None = Field(
        default=None,
        max_length=500,
        description="Records (trades, fills, state) a runtime stopped with before the database took them, kept "
        "here so the next runtime of the bot writes them (its pod's spool went with the pod).",
    )
    halt_reason: str | None = Field(default=None, description="Why trading is halted.")
    message: str | None = Field(default=None, description="The runtime's last notable message.")
    differs: str | None = Field(
        default=None,
        description="Where the runtime does other than the spec says, why, and what to do (paper: a saved account "
        "kept although spec.broker.cash changed).",
    )
    drift: str | None = Field(
        default=None,
        description="Live: the exchange account holds less of the base asset than this bot's own fills add up "
        "to (another bot or a person sold it); the bot sells no more than the account holds.",
    )


class TradingBotStatus(Model):
    phase: Phase | None = Field(default=None, description="A summary for people; the conditions are the contract.")
    conditions: list[Condition] | None = Field(default=None, description="Standard conditions; Ready is the contract.")
    observed_generation: int | None = Field(default=None, ge=0, description="The spec generation last reconciled.")
    pod: str | None = Field(default=None, description="The bot pod.")
    bot_id: int | None = Field(default=None, ge=0, description="The bot's trading_bots row id.")
    message: str | None = Field(default=None, description="What the operator last had to say.")
    strategy: str | None = Field(
        default=None,
        description="The strategy that runs: spec.strategy.type, or CustomStrategy where paper mode falls back "
        "from an unknown name.",
    )
    restarts: int | None = Field(default=None, ge=0, description="Pod replacements counted against restartPolicy.")
    rollout_held_since: str | None = Field(
        default=None,
        json_schema_extra={"format": "date-time"},
        description="Since when a whenFlat rollout waits for the bot to be flat.",
    )
    next_restart_at: str | None = Field(
        default=None,
        json_schema_extra={"format": "date-time"},
        description="When the next restart may happen.",
    )
    runtime: RuntimeStatus | None = Field(default=None, description="Written by the bot runtime only.")

    def to_resource(self) -> dict[str, Any]:
        data = super().to_resource()
        if self.conditions is not None:
            data["conditions"] = [c.to_resource() for c in self.conditions]
        return data

    @classmethod
    def from_resource(cls, raw: Mapping[str, Any] | None) -> TradingBotStatus:
        """The status as stored; what the schema no longer knows is dropped, a corrupt status reads as empty."""
        try:
            return cls.model_validate(_known(cls, raw or {}), strict=False)
        except ValidationError as exc:
            log.warning("ignoring an unreadable TradingBot status: %s", exc.errors()[0].get("msg"))
            return cls()


def _known(model: type[BaseModel], data: Mapping[str, Any]) -> dict[str, Any]:
    """`data` without None values and keys `model` does not have (nested models and lists included)."""
    out: dict[str, Any] = {}
    for name, field in model.model_fields.items():
        key = field.alias or name
        value = data.get(key)
        if value is None:
            continue
        nested = _model_of(field.annotation)
        if nested is not None and isinstance(value, Mapping):
            value = _known(nested, value)
        elif nested is not None and isinstance(value, list):
            value = [_known(nested, v) if isinstance(v, Mapping) else v for v in value]
        out[key] = value
    return out


def _model_of(annotation: Any) -> type[BaseModel] | None:
    candidates = [annotation, *get_args(annotation)]
    candidates += [inner for c in get_args(annotation) for inner in get_args(c)]
    return next((c for c in candidates if isinstance(c, type) and issubclass(c, BaseModel)), None)


# -------------------------------------------------------------------------------------- resource


class ObjectMeta(BaseModel):
    """The metadata the operator reads (written by the apiserver, so read leniently)."""

    model_config = ConfigDict(alias_generator=to_camel, populate_by_name=True, extra="ignore", frozen=True)

    name: str
    namespace: str = ""
    uid: str = ""
    generation: int = 0
    resource_version: str = ""
    labels: dict[str, str] = Field(default_factory=dict)
    annotations: dict[str, str] = Field(default_factory=dict)
    creation_timestamp: str | None = None
    deletion_timestamp: str | None = None


class TradingBot(BaseModel):
    """A TradingBot as the operator passes it around. The spec stays raw: an invalid spec is still a bot,
    and `bot_runtime.api.validation` says what is wrong with it."""

    model_config = ConfigDict(alias_generator=to_camel, populate_by_name=True, extra="ignore", frozen=True)

    api_version: str = API_VERSION
    kind: str = KIND
    metadata: ObjectMeta
    spec: dict[str, Any] = Field(default_factory=dict)
    status: TradingBotStatus = Field(default_factory=TradingBotStatus)

    @classmethod
    def from_resource(cls, body: Mapping[str, Any]) -> TradingBot:
        metadata = {k: v for k, v in (body.get("metadata") or {}).items() if v is not None}
        return cls(
            metadata=ObjectMeta.model_validate(metadata),
            spec=dict(body.get("spec") or {}),
            status=TradingBotStatus.from_resource(body.get("status")),
        )

    @classmethod
    def named(cls, namespace: str, name: str) -> TradingBot:
        """A reference to a bot by name only (its events are posted without a uid)."""
        return cls(metadata=ObjectMeta(name=name, namespace=namespace))

    @property
    def name(self) -> str:
        return self.metadata.name

    @property
    def namespace(self) -> str:
        return self.metadata.namespace

    @property
    def ref(self) -> str:
        return f"{self.metadata.namespace}/{self.metadata.name}"

    def stored_status(self) -> dict[str, Any]:
        """The status as the apiserver holds it (camelCase, unset fields left out)."""
        return self.status.to_resource()
