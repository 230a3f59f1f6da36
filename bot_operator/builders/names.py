"""Deterministic names and labels of a bot's objects: a retried create is idempotent."""

from __future__ import annotations

import hashlib

from bot_runtime.api import constants as c

MAX_NAME = 63


def child_name(bot: str, suffix: str) -> str:
    """`<bot>-<suffix>`, shortened with a hash when it would pass 63 characters (a label-safe name)."""
    name = f"{bot}-{suffix}"
    if len(name) <= MAX_NAME:
        return name
    digest = hashlib.sha256(bot.encode()).hexdigest()[:8]
    return f"{bot[: MAX_NAME - len(suffix) - 10].rstrip('-.')}-{digest}-{suffix}"


def label_value(text: str) -> str:
    """`text` as a valid label value: at most 63 characters, shortened with a hash, ending alphanumeric."""
    if len(text) <= MAX_NAME:
        return text
    digest = hashlib.sha256(text.encode()).hexdigest()[:8]
    return f"{text[: MAX_NAME - 9].rstrip('-._')}-{digest}"


def pod_name(bot: str) -> str:
    return child_name(bot, "runtime")


def service_account_name(bot: str) -> str:
    return child_name(bot, "bot")


def bot_labels(bot: str, bot_id: int | None, source: str, user_id: int | None = None) -> dict[str, str]:
    labels = {
        c.LABEL_NAME: "tradingbot",
        c.LABEL_MANAGED_BY: c.MANAGER,
        c.LABEL_BOT: label_value(bot),
        c.LABEL_SOURCE: source,
    }
    if bot_id is not None:
        labels[c.LABEL_BOT_ID] = str(bot_id)
    if user_id is not None:
        labels[c.LABEL_USER_ID] = str(user_id)
    return labels
