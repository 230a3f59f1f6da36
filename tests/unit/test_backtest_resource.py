"""The Backtest resource's pure parts (issue 19): its validation (a corpus of bad specs, each message naming
the field), the job a pod runs, the pod, the status a pod's state gives; and the chart and progress bar of
`bot-runtime backtest`."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from bot_operator.builders.backtest_pod import BacktestObject, build_backtest_pod, observed_status
from bot_operator.settings import OperatorSettings
from bot_runtime.api.backtest_resource import JOB_ENV, BacktestSpec, BacktestStatus, job_document, validate_backtest
from bot_runtime.api.models import TradingBotSpec
from bot_runtime.cli import main
from tests.support.bots import spec_with

BOT = spec_with(market__feed="synthetic")
LIVE = spec_with(
    mode="live",
    broker__credentialsSecretRef={"name": "keys"},
    notifications={"secretRef": {"name": "hooks"}},
)

BAD_SPECS: list[tuple[str, dict[str, Any], str]] = [
    ("neither bot nor botRef", {}, "spec: name the TradingBot to backtest in spec.botRef.name"),
    ("both bot and botRef", {"bot": BOT, "botRef": {"name": "a"}}, "(exactly one)"),
    ("unknown field", {"bot": BOT, "range": "1y"}, "spec.range: unknown field"),
    ("botRef not a name", {"botRef": {"name": "Not_A_Name"}}, "spec.botRef.name:"),
    ("too few bars", {"bot": BOT, "data": {"bars": 10}}, "spec.data.bars: Input should be greater than or equal"),
    ("unknown source", {"bot": BOT, "data": {"source": "s3"}}, "spec.data.source: Input should be 'synthetic'"),
    (
        "history without from",
        {"bot": BOT, "data": {"source": "history", "to": "2026-03-01"}},
        "spec.data.from: required",
    ),
    ("history without to", {"bot": BOT, "data": {"source": "history", "from": "2026-03-01"}}, "spec.data.to: required"),
    (
        "a date that is not one",
        {"bot": BOT, "data": {"source": "history", "from": "March 1st", "to": "2026-04-01"}},
        "spec.data.from: 'March 1st' is not an ISO 8601 date",
    ),
    (
        "a range ending before it starts",
        {"bot": BOT, "data": {"source": "history", "from": "2026-04-01", "to": "2026-03-01"}},
        "spec.data.to: '2026-03-01' must be after spec.data.from",
    ),
    ("unknown fill model", {"bot": BOT, "fill": {"model": "mid"}}, "spec.fill.model: Input should be 'nextOpen'"),
    ("commission above 10 %", {"bot": BOT, "fill": {"commission": 0.5}}, "spec.fill.commission:"),
    ("an invalid bot", {"bot": spec_with(market__exchange="binanse")}, "spec.bot.market.exchange: 'binanse' is not"),
    ("a bot field the API lacks", {"bot": {**BOT, "leverage": 3}}, "spec.bot.leverage: unknown field"),
    ("a NUL", {"botRef": {"name": "a"}, "data": {"source": "synthetic\x00"}}, "spec.data.source: contains a NUL"),
]


@pytest.mark.parametrize(("case", "raw", "said"), BAD_SPECS, ids=[c[0] for c in BAD_SPECS])
def test_a_bad_backtest_spec_is_refused_with_the_field_and_why(case: str, raw: dict[str, Any], said: str) -> None:
    spec, result = validate_backtest(raw)
    assert spec is None and any(said in e for e in result.errors), result.errors


def test_the_job_backtests_a_paper_copy_without_credentials_with_the_fill_options() -> None:
    raw = {"botRef": {"name": "live-bot"}, "fill": {"model": "close", "slippage": 0.002}}
    spec, result = validate_backtest(raw)
    assert spec is not None and result.errors == [], result
    job = json.loads(job_document("ns", "bt", "uid-1", 3, spec, TradingBotSpec.model_validate(LIVE)))
    assert (job["namespace"], job["name"], job["uid"], job["generation"], job["botName"]) == (
        "ns",
        "bt",
        "uid-1",
        3,
        "live-bot",
    )
    bot = job["bot"]
    assert bot["mode"] == "paper" and "credentialsSecretRef" not in bot["broker"] and "notifications" not in bot
    assert (bot["broker"]["fill"], bot["broker"]["slippage"], bot["broker"]["commission"]) == ("close", 0.002, 0.001)
    assert job["data"] == {"source": "synthetic", "bars": 10_000}


def backtest(status: BacktestStatus | None = None) -> BacktestObject:
    return BacktestObject("ns", "bt", "uid-1", 2, {}, status or BacktestStatus(), deleting=False)


def test_the_pod_runs_the_job_once_without_api_access_and_with_the_runtimes_database_secret() -> None:
    settings = OperatorSettings(database_url="postgresql://x/y", runtime_env={"BOTOPS_EXCHANGE_API_URL": "http://d"})
    pod = build_backtest_pod(backtest(), '{"job": 1}', "ghcr.io/x/runtime:1", settings)
    spec, container = pod["spec"], pod["spec"]["containers"][0]
    assert spec["restartPolicy"] == "Never" and spec["automountServiceAccountToken"] is False
    assert container["command"] == ["bot-runtime", "backtest-job"]
    env = {e["name"]: e for e in container["env"]}
    assert env[JOB_ENV]["value"] == '{"job": 1}' and env["BOTOPS_EXCHANGE_API_URL"]["value"] == "http://d"
    assert env["DATABASE_URL_FILE"]["value"] == "/var/run/secrets/botops/database/url"
    (database,) = [v for v in spec["volumes"] if v["name"] == "database"]
    assert database["secret"]["secretName"] == settings.backtest_database_secret() == "tradingbot-backtest-db"
    assert pod["metadata"]["ownerReferences"][0]["kind"] == "Backtest"
    assert pod["metadata"]["annotations"]["botops.io/generation"] == "2"
    assert pod["metadata"]["labels"]["app.kubernetes.io/component"] == "runtime"  # the runtime NetworkPolicy
    assert container["securityContext"]["readOnlyRootFilesystem"] and "resources" in container


def pod(phase: str, **terminated: Any) -> dict[str, Any]:
    state = {"terminated": terminated} if terminated else {"running": {}}
    return {"metadata": {"name": "bt-backtest"}, "status": {"phase": phase, "containerStatuses": [{"state": state}]}}


def test_the_status_follows_the_pod_and_the_stored_result() -> None:
    running = observed_status(backtest(), pod("Running"), None)
    assert (running.state, running.observed_generation, running.pod) == ("Running", 2, "bt-backtest")

    metrics = {"totalReturnPct": 3.5, "maxDrawdownPct": 1.25, "trades": 7, "bars": 500, "profitFactor": None}
    done = observed_status(backtest(), pod("Succeeded", finishedAt="2026-12-01T00:00:00Z"), (42, "model", metrics))
    assert (done.state, done.result_id, done.finished_at) == ("Succeeded", 42, "2026-12-01T00:00:00Z")
    assert done.summary is not None and (done.summary.trades, done.summary.total_return_pct) == (7, 3.5)
    assert done.summary.fill_model == "model" and done.summary.profit_factor is None

    lost = observed_status(backtest(), pod("Succeeded"), None)
    assert lost.state == "Failed" and "without writing its result" in (lost.message or "")

    said = "2026-12-01 INFO ...\nbacktest failed: ValueError: no BTC/USDT 1m candles"
    failed = observed_status(backtest(), pod("Failed", exitCode=1, message=said), None)
    assert (failed.state, failed.message) == ("Failed", "backtest failed: ValueError: no BTC/USDT 1m candles")
    silent = observed_status(backtest(), pod("Failed", exitCode=137), None)
    assert silent.message == "exit code 137"


def test_the_status_schema_holds_what_the_operator_writes() -> None:
    spec = BacktestSpec.model_validate({"botRef": {"name": "a"}})
    assert spec.data.source == "synthetic" and spec.fill.model is None  # the bot's own fill model


def test_the_chart_and_the_progress_bar(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    chart = tmp_path / "equity.png"
    code = main(["backtest", "--strategy", "CustomStrategy", "--bars", "2500", "--chart", str(chart), "--progress"])
    assert code == 0
    out, err = capsys.readouterr()
    assert chart.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n" and chart.stat().st_size > 20_000  # a drawn figure
    assert f"chart written to {chart}" in out
    assert "backtest: 100%" in err and "2500/2500" in err  # tqdm's bar, on stderr
