"""The ValidatingWebhookConfiguration that sends TradingBot creates and updates to the operator.

The chart renders the same object (templates/webhook.yaml; a test compares them); the operator writes it
itself only in its self-managed development mode (`--webhook-url`).
"""

from __future__ import annotations

from typing import Any

from bot_runtime.api import constants as c

WEBHOOK_NAME = f"{c.PLURAL}.{c.GROUP}"
WEBHOOK_PATH = f"/{c.PLURAL}"
# Ignore: an operator outage must never block deleting or fixing a bot. Nothing unsafe gets through meanwhile:
# the reconcile validates every spec again (Stalled), and a database bot's pod follows its row, not its resource.
FAILURE_POLICY = "Ignore"
TIMEOUT_SECONDS = 5  # the apiserver's wait for an answer; an outage costs each write at most this


def webhook_rules() -> dict[str, Any]:
    """Everything but the client config: what the chart's template must render too."""
    return {
        "name": WEBHOOK_NAME,
        "admissionReviewVersions": ["v1"],
        "sideEffects": "None",
        "failurePolicy": FAILURE_POLICY,
        "timeoutSeconds": TIMEOUT_SECONDS,
        "matchPolicy": "Equivalent",
        # DELETE is not sent: deleting a bot never waits for the operator
        "rules": [
            {
                "apiGroups": [c.GROUP],
                "apiVersions": [c.VERSION],
                "operations": ["CREATE", "UPDATE"],
                "resources": [c.PLURAL],
                "scope": "Namespaced",
            }
        ],
    }


def build_webhook_configuration(name: str, client_config: dict[str, Any]) -> dict[str, Any]:
    return {
        "apiVersion": "admissionregistration.k8s.io/v1",
        "kind": "ValidatingWebhookConfiguration",
        "metadata": {"name": name, "labels": {c.LABEL_MANAGED_BY: c.MANAGER}},
        "webhooks": [{**webhook_rules(), "clientConfig": client_config}],
    }
