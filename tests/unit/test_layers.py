"""The layers hold at run time, and every module name says one thing."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]
# each package's entry points and its settings class: the same role, named the same on purpose
SHARED_NAMES = {"__init__", "__main__", "cli", "settings"}


def test_the_operator_entry_point_imports_neither_backtrader_nor_ccxt() -> None:
    probe = (
        "import sys, bot_operator.cli, bot_operator.runner; "
        "print(sorted(m for m in ('backtrader', 'ccxt') if m in sys.modules))"
    )
    out = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True, cwd=REPO, timeout=120)
    assert out.returncode == 0, out.stderr
    assert out.stdout.strip() == "[]"


def test_no_module_name_is_used_in_two_packages() -> None:
    def names(package: str) -> set[str]:
        return {p.stem for p in (REPO / package).rglob("*.py") if "migrations" not in p.parts}

    shared = (names("bot_runtime") & names("bot_operator")) - SHARED_NAMES
    assert not shared, f"module names in both packages: {sorted(shared)}"


def test_the_operator_checks_plugin_parameters_from_their_schema_alone() -> None:
    probe = (
        "import sys; from bot_runtime.api.validation import validate_spec; "
        "_, r = validate_spec({'strategy': {'type': 'BreakoutMomentum', 'params': "
        "{'entry_period': 5, 'exit_period': 9}}, 'market': {'exchange': 'binance', 'symbol': 'BTC/USDT'}}); "
        "print(r.errors, 'backtrader' in sys.modules)"
    )
    out = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True, cwd=REPO, timeout=120)
    assert out.returncode == 0, out.stderr
    assert out.stdout.strip() == "['spec.strategy.params: exit_period (9) must not exceed entry_period (5)'] False"


def test_a_runtime_loads_only_the_exchange_it_talks_to() -> None:
    """`bot-runtime` installs the one-venue ccxt: a whole ccxt (every exchange class) costs a runtime ~35 MiB."""
    script = (
        "import sys; from bot_runtime import ccxt_one_venue; ccxt_one_venue.install()\n"
        "from bot_runtime.exchange import build_exchange, classify\n"
        "import ccxt\n"
        "exchange = build_exchange('okx')\n"
        "assert classify(ccxt.AuthenticationError('x')).value == 'fatal' and 'binance' in ccxt.exchanges\n"
        "assert exchange.id == 'okx' and isinstance(exchange, ccxt.okx)\n"
        "print(sorted(m for m in sys.modules if m.count('.') == 1 and m.startswith('ccxt.')"
        " and m.split('.')[1] in ccxt.exchanges))\n"
    )
    done = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, check=True)
    assert done.stdout.strip() == "['ccxt.okx']", done.stdout + done.stderr
