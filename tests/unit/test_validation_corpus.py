"""The bad-input corpus through semantic validation (the layer rows and the operator share)."""

from __future__ import annotations

from types import SimpleNamespace

import pytest

from bot_runtime.api.rows import row_to_spec, validate_row
from bot_runtime.api.validation import validate_spec
from tests.corpus import BASE_ROW, BASE_SPEC, CASES, Case

SPEC_CASES = [c for c in CASES if c.layer in ("apiserver", "semantic")]
ROW_CASES = [c for c in CASES if c.layer == "row"]


def test_corpus_is_large_enough() -> None:
    assert len(CASES) >= 30
    assert len({c.id for c in CASES}) == len(CASES)


def test_base_inputs_are_valid() -> None:
    spec, result = validate_spec(BASE_SPEC)
    assert spec is not None, result.errors
    spec, result = row_to_spec(
        SimpleNamespace(**BASE_ROW, description=None, notifications_config=None, suspended=False)
    )
    assert spec is not None, result.errors


def _assert_contains_all(messages: list[str], expected: list[str]) -> None:
    joined = "\n".join(messages)
    assert any(all(part in message for part in expected) for message in messages), (
        f"no single message contains all of {expected!r}; got:\n{joined}"
    )


@pytest.mark.parametrize("case", [c for c in SPEC_CASES if c.id != "no-spec"], ids=lambda c: c.id)
def test_spec_rejected_with_actionable_message(case: Case) -> None:
    spec, result = validate_spec(case.spec())
    assert spec is None
    _assert_contains_all(result.errors, case.semantic_expect or case.expect)


@pytest.mark.parametrize("case", ROW_CASES, ids=lambda c: c.id)
def test_row_rejected_with_message_naming_the_column(case: Case) -> None:
    row = SimpleNamespace(**{"description": None, "notifications_config": None, "suspended": False, **case.row()})
    spec, result = validate_row(row)
    assert spec is None
    _assert_contains_all(result.errors, case.expect)
