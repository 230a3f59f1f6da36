from __future__ import annotations

import secrets
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from kubernetes import client

from bot_runtime.db.repository import BotRepository
from botops_dev.controlplane import ControlPlane
from tests.support.bots import FAST_SPEC, Bot, RuntimeProcess


@pytest.fixture
def make_bot(control_plane: ControlPlane, kube_client: client.ApiClient, repository: BotRepository,
             namespace: str, tmp_path: Path) -> Callable[..., Bot]:
    def make(spec: dict[str, Any] | None = None, name: str | None = None) -> Bot:
        return Bot(control_plane, kube_client, repository, namespace, name or f"bot-{secrets.token_hex(3)}",
                   spec or FAST_SPEC, tmp_path)

    return make


@pytest.fixture
def start_runtime(
    migrated_database_url: str, tmp_path: Path, fake_exchange: Any,
) -> Iterator[Callable[..., RuntimeProcess]]:
    started: list[RuntimeProcess] = []

    def start(bot: Bot, database_url: str | None = None, **kwargs: Any) -> RuntimeProcess:
        kwargs.setdefault("exchange_url", fake_exchange.url)
        process = RuntimeProcess(bot, database_url or migrated_database_url, tmp_path, **kwargs)
        started.append(process)
        return process

    yield start
    for process in started:
        process.close()
