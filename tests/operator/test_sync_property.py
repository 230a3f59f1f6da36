"""Property: whatever bad rows and squatted names are mixed into a fleet, every good row gets its bot.

The real Syncer, in-process, against the real control plane and PostgreSQL (no operator loop, so each
example is two sync passes and the assertions, a few seconds)."""

from __future__ import annotations

import copy
import itertools
import secrets

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from kubernetes import client

from bot_operator.kube import Cluster
from bot_operator.metrics import OperatorMetrics
from bot_operator.settings import OperatorSettings
from bot_operator.sync import Syncer, resource_name
from bot_runtime.api import constants as c
from bot_runtime.api.models import TradingBotSpec
from bot_runtime.db.repository import BotRepository
from botops_dev.controlplane import ControlPlane
from tests.operator.helpers import apply_bot, get_bot, list_bots, sql
from tests.support.bots import FAST_SPEC
from tests.support.kube import create_namespace, delete_namespace

pytestmark = [pytest.mark.cluster, pytest.mark.db]

KINDS = ["good", "invalid", "bad_ref", "squatted", "disabled"]
_users = itertools.count(910_000)


def _row(repository: BotRepository, user_id: int, namespace: str, kind: str, index: int) -> int:
    spec = TradingBotSpec.model_validate(FAST_SPEC)
    row_id = repository.create_bot(spec, name=f"{kind} {index}", user_id=user_id, enabled=kind != "disabled")
    if kind == "invalid":
        sql(repository, "UPDATE trading_bots SET exchange = 'binanse' WHERE id = :id", id=row_id)
    elif kind == "bad_ref":
        ref = [
            f"no-slash-{row_id}",
            f"elsewhere/x-{row_id}",
            f"{namespace}/Upper_{row_id}",
            f"{namespace}/{row_id}" + "a" * 70,
        ]
        ref = ref[index % 4]
        sql(repository, "UPDATE trading_bots SET external_ref = :r WHERE id = :id", r=ref, id=row_id)
    return row_id


@settings(
    max_examples=6,
    deadline=None,
    derandomize=True,  # the same examples on every run: a failure is reproducible
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
@given(kinds=st.lists(st.sampled_from(KINDS), min_size=1, max_size=8), good=st.integers(1, 3))
def test_bad_rows_and_squatters_never_keep_a_good_row_from_its_bot(
    control_plane: ControlPlane,
    kube_client: client.ApiClient,
    repository: BotRepository,
    migrated_database_url: str,
    kinds: list[str],
    good: int,
) -> None:
    namespace, user_id = f"p-{secrets.token_hex(4)}", next(_users)
    create_namespace(control_plane, namespace)
    try:
        _check(kube_client, repository, migrated_database_url, namespace, user_id, ["good"] * good + kinds)
    finally:
        delete_namespace(control_plane, namespace)


def _check(
    api: client.ApiClient, repository: BotRepository, url: str, namespace: str, user_id: int, kinds: list[str]
) -> None:
    rows: dict[int, str] = {}
    for index, kind in enumerate(kinds):
        row_id = _row(repository, user_id, namespace, kind, index)
        rows[row_id] = kind
        row = repository.get_bot(row_id)
        if kind == "squatted" and row is not None:  # a Git-managed bot already has the name this row's bot would get
            squatter = copy.deepcopy(FAST_SPEC)
            squatter["risk"] = {"maxOpenOrders": 7}
            apply_bot(api, namespace, resource_name(row), squatter)
    syncer = Syncer(
        OperatorSettings(database_url=url, bots_namespace=namespace, user_id=user_id),
        Cluster(api, "syncer"),
        repository,
        OperatorMetrics(),
    )
    syncer.sync_once()
    assert syncer.sync_once().empty(), "a settled fleet plans nothing"

    bots = {b["metadata"]["name"]: b for b in list_bots(api, namespace)}
    for row_id, kind in rows.items():
        row = repository.get_bot(row_id)
        assert row is not None
        mine = [b for b in bots.values() if (b["metadata"].get("labels") or {}).get(c.LABEL_BOT_ID) == str(row_id)]
        if kind == "good":
            assert mine and row.external_ref == f"{namespace}/{mine[0]['metadata']['name']}", (kind, row.external_ref)
            assert row.status != "error", (kind, row.error_message)
        elif kind == "disabled":
            assert not mine and row.status == "stopped", (kind, row.status)
        elif kind == "invalid":
            assert not mine and row.status == "error" and "binanse" in (row.error_message or ""), row.error_message
        elif kind == "bad_ref":
            assert not mine and row.status == "error" and "external_ref" in (row.error_message or ""), row.error_message
        elif kind == "squatted":
            assert not mine and row.status == "error" and "already exists" in (row.error_message or "")
            squatter = get_bot(api, namespace, resource_name(row))
            assert squatter is not None and squatter["spec"]["risk"]["maxOpenOrders"] == 7
    assert all(b.get("spec") for b in bots.values())
