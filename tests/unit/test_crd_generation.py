"""The committed CRD (and the chart's copy) must equal what the models generate."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import ccxt

from bot_runtime.api.crd import build_crd, check_descriptions
from bot_runtime.api.exchanges import CCXT_VERSION, EXCHANGES

REPO = Path(__file__).resolve().parents[2]


def test_committed_crds_match_the_models() -> None:
    result = subprocess.run(
        [sys.executable, str(REPO / "hack" / "gen-crds.py"), "--check"], capture_output=True, text=True, check=False
    )
    assert result.returncode == 0, result.stderr


def test_every_field_has_a_description() -> None:
    schema = build_crd()["spec"]["versions"][0]["schema"]["openAPIV3Schema"]
    assert (
        check_descriptions(
            {"properties": {"spec": schema["properties"]["spec"], "status": schema["properties"]["status"]}}
        )
        == []
    )


def test_schema_is_structural_for_1_20() -> None:
    text = str(build_crd())
    for forbidden in ("$ref", "anyOf': [{'type': 'null'", "x-kubernetes-validations", "'const'", "'title'"):
        assert forbidden not in text


def test_exchange_list_matches_installed_ccxt() -> None:
    assert ccxt.__version__ == CCXT_VERSION
    assert set(ccxt.exchanges) == EXCHANGES
