from __future__ import annotations

import itertools
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from botops_dev.controlplane import ControlPlane
from tests.support.operator import OperatorProcess

_user_ids = itertools.count(5000)


@pytest.fixture
def user_id() -> int:
    """Each test syncs only its own rows (--user-id), so tests share the database safely."""
    return next(_user_ids)


@pytest.fixture
def start_operator(control_plane: ControlPlane, migrated_database_url: str, namespace: str, tmp_path: Path,
                   user_id: int) -> Iterator[Callable[..., OperatorProcess]]:
    started: list[OperatorProcess] = []

    def start(**kwargs: Any) -> OperatorProcess:
        kwargs.setdefault("user_id", user_id)
        process = OperatorProcess(control_plane, migrated_database_url, namespace, tmp_path, **kwargs)
        started.append(process)
        return process

    yield start
    for process in started:
        process.close()
