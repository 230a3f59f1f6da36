"""The Backtest resource: a backtest of a TradingBot's strategy the operator runs as a pod.

A Backtest names a TradingBot of its namespace (`spec.botRef`, whose spec is read when the run starts) or
carries a bot spec (`spec.bot`), a data range and fill options. The pod runs `bot-runtime backtest-job`,
writes the whole result into the database (`backtest_results`) and the operator copies the summary into the
status, where `kubectl get backtests` shows it. A run belongs to one generation of the spec: a changed spec
runs again.
"""

from __future__ import annotations

import json
from datetime import UTC, datetime
from typing import Any, Literal

from pydantic import Field, ValidationError

from bot_runtime.api.models import DNS_LABEL, Model, TradingBotSpec
from bot_runtime.api.results import ValidationResult
from bot_runtime.api.validation import nul_paths, schema_errors, validate_spec

JOB_ENV = "BOTOPS_BACKTEST_JOB"  # the pod's job document (JSON): what to backtest, resolved by the operator
BacktestState = Literal["Pending", "Running", "Succeeded", "Failed"]
FINAL_STATES = ("Succeeded", "Failed")


class BotReference(Model):
    name: str = Field(
        pattern=DNS_LABEL,
        max_length=63,
        description="A TradingBot in the Backtest's namespace; its spec as the run starts is what is backtested.",
    )


class BacktestData(Model):
    source: Literal["synthetic", "history"] = Field(
        default="synthetic",
        description="synthetic (the seeded walk bots use for demos; no network) or history (the venue's candles "
        "for the bot's exchange, symbol and timeframe, downloaded by the pod through ccxt).",
    )
    bars: int = Field(default=10_000, ge=100, le=2_000_000, description="synthetic: how many bars.")
    seed: int | None = Field(default=None, description="synthetic: the series' seed (default: the bot's market.seed).")
    start: str | None = Field(
        default=None, alias="from", description="history: first candle, an ISO 8601 date or time in UTC."
    )
    end: str | None = Field(
        default=None, alias="to", description="history: end of the range (exclusive), an ISO 8601 date or time in UTC."
    )


class FillOptions(Model):
    model: Literal["nextOpen", "close"] | None = Field(
        default=None,
        description="nextOpen (market orders fill at the next bar's open, as live orders can) or close "
        "(cheat-on-close, for comparison); default: the bot's broker.fill.",
    )
    commission: float | None = Field(
        default=None, ge=0, le=0.1, description="Commission rate per fill; default: the bot's broker.commission."
    )
    slippage: float | None = Field(
        default=None, ge=0, le=0.1, description="Slippage rate per fill; default: the bot's broker.slippage."
    )


class BacktestSpec(Model):
    bot_ref: BotReference | None = Field(default=None, description="The TradingBot to backtest (or spec.bot).")
    bot: TradingBotSpec | None = Field(default=None, description="A bot spec to backtest (or spec.botRef).")
    data: BacktestData = Field(default_factory=BacktestData, description="The bars the backtest runs over.")
    fill: FillOptions = Field(default_factory=FillOptions, description="How simulated orders fill.")


class BacktestSummary(Model):
    total_return_pct: float | None = Field(default=None, description="Total return, percent.")
    annualised_return_pct: float | None = Field(default=None, description="Annualised return, percent.")
    max_drawdown_pct: float | None = Field(default=None, description="Largest fall from a peak, percent.")
    max_drawdown_duration: str | None = Field(default=None, description="Longest time under water.")
    sharpe: float | None = Field(default=None, description="Annualised Sharpe ratio (risk-free 0).")
    sortino: float | None = Field(default=None, description="Annualised Sortino ratio (risk-free 0).")
    trades: int | None = Field(default=None, ge=0, description="Closed round trips.")
    win_rate_pct: float | None = Field(default=None, description="Winning trades, percent.")
    profit_factor: float | None = Field(default=None, description="Gross gains over gross losses.")
    exposure_pct: float | None = Field(default=None, description="Bars with a position, percent.")
    fees_paid: float | None = Field(default=None, description="Commission paid, in quote currency.")
    refused_orders: int | None = Field(default=None, ge=0, description="Orders the broker refused.")
    bars: int | None = Field(default=None, ge=0, description="Bars backtested.")
    end_value: float | None = Field(default=None, description="The account's value at the end.")
    fill_model: str | None = Field(default=None, description="The fill model the run used, in words.")

    @classmethod
    def from_metrics(cls, metrics: dict[str, Any], model: str) -> BacktestSummary:
        known = {k: v for k, v in metrics.items() if k in cls._aliases() and v is not None}
        return cls.model_validate({**known, "fillModel": model}, strict=False)

    @classmethod
    def _aliases(cls) -> set[str]:
        return {f.alias or n for n, f in cls.model_fields.items()}


class BacktestStatus(Model):
    state: BacktestState | None = Field(
        default=None, description="Pending, Running, Succeeded or Failed (of the observed generation)."
    )
    message: str | None = Field(default=None, description="What the operator last had to say.")
    observed_generation: int | None = Field(default=None, ge=0, description="The spec generation of this run.")
    pod: str | None = Field(default=None, description="The pod that runs the backtest.")
    started_at: str | None = Field(default=None, description="When the run's pod was created.")
    finished_at: str | None = Field(default=None, description="When the run ended.")
    result_id: int | None = Field(default=None, ge=0, description="The backtest_results row of the whole result.")
    summary: BacktestSummary | None = Field(default=None, description="The result's main figures.")


def parse_time(text: str, field: str) -> datetime:
    """An ISO 8601 date or time as UTC (naive means UTC); ValueError names the field."""
    try:
        moment = datetime.fromisoformat(text.replace("Z", "+00:00"))
    except ValueError:
        raise ValueError(
            f"{field}: {text!r} is not an ISO 8601 date or time (like 2026-03-01 or 2026-03-01T12:00Z)"
        ) from None
    return moment if moment.tzinfo else moment.replace(tzinfo=UTC)


def validate_backtest(raw: dict[str, Any]) -> tuple[BacktestSpec | None, ValidationResult]:
    """Parse and check a Backtest spec; the spec is returned only when it has no errors. A named TradingBot is
    checked when the run starts (it may be applied after the Backtest)."""
    nul = sorted(set(nul_paths(raw)))
    if nul:
        return None, ValidationResult(errors=[f"{p}: contains a NUL character (\\u0000)" for p in nul])
    try:
        spec = BacktestSpec.model_validate(raw)
    except ValidationError as exc:
        return None, ValidationResult(errors=schema_errors(exc))
    result = ValidationResult()
    if (spec.bot_ref is None) == (spec.bot is None):
        result.errors.append(
            "spec: name the TradingBot to backtest in spec.botRef.name or carry its spec in spec.bot (exactly one)"
        )
    if spec.bot is not None:
        _, bot_result = validate_spec(spec.bot)
        result.errors += [_under_bot(e) for e in bot_result.errors]
        result.warnings += [_under_bot(w) for w in bot_result.warnings]
    _data_checks(spec.data, result)
    return (spec if result.ok else None), result


def _under_bot(message: str) -> str:
    return "spec.bot." + message.removeprefix("spec.") if message.startswith("spec.") else message


def _data_checks(data: BacktestData, result: ValidationResult) -> None:
    if data.source == "synthetic":
        if data.start or data.end:
            result.warnings.append("spec.data.from/to: ignored because spec.data.source is synthetic (use bars)")
        return
    times = {}
    for field, text in (("from", data.start), ("to", data.end)):
        if not text:
            result.errors.append(f"spec.data.{field}: required when spec.data.source is history (an ISO 8601 date)")
            continue
        try:
            times[field] = parse_time(text, f"spec.data.{field}")
        except ValueError as exc:
            result.errors.append(str(exc))
    if len(times) == 2 and times["from"] >= times["to"]:
        result.errors.append(f"spec.data.to: {data.end!r} must be after spec.data.from ({data.start!r})")


def bot_for_run(spec: BacktestSpec, bot: TradingBotSpec) -> TradingBotSpec:
    """The bot spec a run backtests: the fill options applied, and nothing a simulation must not hold (its
    credentials, notifications)."""
    fill = spec.fill
    broker = bot.broker.model_copy(
        update={
            "fill": fill.model or bot.broker.fill,
            "commission": bot.broker.commission if fill.commission is None else fill.commission,
            "slippage": bot.broker.slippage if fill.slippage is None else fill.slippage,
            "credentials_secret_ref": None,
        }
    )
    return bot.model_copy(update={"broker": broker, "mode": "paper", "notifications": None})


def job_document(namespace: str, name: str, uid: str, generation: int, spec: BacktestSpec, bot: TradingBotSpec) -> str:
    """What the pod runs, resolved (a named bot's spec read by the operator): the pod needs no API access."""
    return json.dumps(
        {
            "namespace": namespace,
            "name": name,
            "uid": uid,
            "generation": generation,
            "botName": spec.bot_ref.name if spec.bot_ref else None,
            "bot": bot_for_run(spec, bot).to_resource(),
            "data": spec.data.to_resource(),
        },
        sort_keys=True,
        separators=(",", ":"),
    )
