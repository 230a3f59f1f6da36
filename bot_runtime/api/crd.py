"""Build the TradingBot and Backtest CRDs from the pydantic models (pure; `hack/gen-crds.py` writes the files).

pydantic emits JSON Schema 2020-12; Kubernetes wants a structural OpenAPI v3.0 subset. The
conversion inlines references, drops titles and nulls, turns free-form maps into
`x-kubernetes-preserve-unknown-fields`, and refuses a field without a description. No CEL rules:
the test control plane is Kubernetes 1.20, and semantic checks live in `bot_runtime.api.validation`.
"""

from __future__ import annotations

import copy
from typing import Any

from bot_runtime.api import constants as c
from bot_runtime.api.backtest_resource import BacktestSpec, BacktestStatus
from bot_runtime.api.models import TradingBotSpec, TradingBotStatus

PRINTER_COLUMNS: list[dict[str, Any]] = [
    {
        "name": "Ready",
        "type": "string",
        "jsonPath": '.status.conditions[?(@.type=="Ready")].status',
        "description": "The Ready condition: the bot trades on a live feed with a fresh heartbeat.",
    },
    {"name": "Phase", "type": "string", "jsonPath": ".status.phase", "description": "Lifecycle phase."},
    {
        "name": "Strategy",
        "type": "string",
        "jsonPath": ".status.strategy",
        "description": "The strategy that runs (a paper bot with an unknown name runs CustomStrategy).",
    },
    {"name": "Symbol", "type": "string", "jsonPath": ".spec.market.symbol", "description": "Market symbol."},
    {"name": "Mode", "type": "string", "jsonPath": ".spec.mode", "description": "paper or live."},
    {"name": "PnL", "type": "number", "jsonPath": ".status.runtime.pnl", "description": "Profit and loss."},
    {
        "name": "Trading",
        "type": "string",
        "jsonPath": ".status.runtime.tradingState",
        "description": "active, reducing (exits and stops only: a halt, onStart halt, the daily-loss limit) or "
        "halted (nothing).",
    },
    {
        "name": "Heartbeat",
        "type": "date",
        "jsonPath": ".status.runtime.lastHeartbeat",
        "description": "Age of the last runtime heartbeat.",
    },
    {"name": "Age", "type": "date", "jsonPath": ".metadata.creationTimestamp"},
]

BACKTEST_PRINTER_COLUMNS: list[dict[str, Any]] = [
    {
        "name": "State",
        "type": "string",
        "jsonPath": ".status.state",
        "description": "Pending, Running, Succeeded, Failed.",
    },
    {"name": "Bot", "type": "string", "jsonPath": ".spec.botRef.name", "description": "The TradingBot backtested."},
    {"name": "Data", "type": "string", "jsonPath": ".spec.data.source", "description": "synthetic or history."},
    {
        "name": "Return",
        "type": "number",
        "jsonPath": ".status.summary.totalReturnPct",
        "description": "Total return, percent.",
    },
    {
        "name": "Drawdown",
        "type": "number",
        "jsonPath": ".status.summary.maxDrawdownPct",
        "description": "Largest fall from a peak, percent.",
    },
    {"name": "Trades", "type": "integer", "jsonPath": ".status.summary.trades", "description": "Round trips."},
    {"name": "Age", "type": "date", "jsonPath": ".metadata.creationTimestamp"},
]

MODEL_FILES = {c.KIND: "bot_runtime/api/models.py", c.BACKTEST_KIND: "bot_runtime/api/backtest_resource.py"}

_DROP = {"title", "$defs"}
_OPTIONAL = "x-optional"  # internal marker: the field may be absent (Python None); removed before output


class SchemaError(ValueError):
    """The models cannot be expressed as a structural schema (or lack descriptions)."""


def structural_schema(model: type[Any]) -> dict[str, Any]:
    raw = model.model_json_schema(by_alias=True, mode="validation")
    defs = raw.get("$defs", {})
    converted: dict[str, Any] = _convert(raw, defs)
    return converted


def _convert(node: Any, defs: dict[str, Any]) -> Any:
    if isinstance(node, list):
        return [_convert(item, defs) for item in node]
    if not isinstance(node, dict):
        return node
    node = _resolve_ref(dict(node), defs)
    optional = False
    if "anyOf" in node:
        node, optional = _collapse_any_of(node, defs)
        if "x-kubernetes-int-or-string" not in node:  # a converted branch (converting twice loses its markers)
            return {**node, _OPTIONAL: True} if optional else node
    _normalise_keywords(node)
    out: dict[str, Any] = {}
    for key, value in node.items():
        if key in _DROP:
            continue
        if key == "properties":
            out[key] = {name: _convert(prop, defs) for name, prop in value.items()}
        elif key in ("items", "additionalProperties") and isinstance(value, dict):
            out[key] = _convert(value, defs)
        else:
            out[key] = value
    _structural_object(out)
    _default_nested_objects(out)
    if optional:
        out[_OPTIONAL] = True
    return out


def _resolve_ref(node: dict[str, Any], defs: dict[str, Any]) -> dict[str, Any]:
    if "$ref" not in node:
        return node
    target: dict[str, Any] = copy.deepcopy(defs[node.pop("$ref").rsplit("/", 1)[-1]])
    target.update(node)  # the field's own description/default win over the model's
    return target


def _collapse_any_of(node: dict[str, Any], defs: dict[str, Any]) -> tuple[dict[str, Any], bool]:
    """`X | None` becomes X marked optional; `str | int` becomes int-or-string; nothing else is structural."""
    all_branches = node.pop("anyOf")
    branches = [b for b in all_branches if b != {"type": "null"}]
    optional = len(branches) < len(all_branches)
    if len(branches) == 1:
        merged = dict(branches[0])
        merged.update(node)
        return _convert(merged, defs), optional  # converted: _convert must not convert it again
    if {b.get("type") for b in branches} == {"string", "integer"}:
        node = {k: v for k, v in node.items() if k != "pattern"}
        node["x-kubernetes-int-or-string"] = True
        return node, optional
    raise SchemaError(f"cannot express anyOf {branches} structurally")


def _normalise_keywords(node: dict[str, Any]) -> None:
    """JSON Schema 2020 keywords the apiserver reads differently (draft 4 style)."""
    if node.get("default", "") is None:
        del node["default"]
    if "const" in node:
        node["enum"] = [node.pop("const")]
    for bound, plain in (("exclusiveMinimum", "minimum"), ("exclusiveMaximum", "maximum")):
        if isinstance(node.get(bound), (int, float)) and not isinstance(node[bound], bool):
            node[plain], node[bound] = node[bound], True


def _structural_object(out: dict[str, Any]) -> None:
    if out.get("type") == "object":
        if out.get("additionalProperties") is False or "properties" in out:
            out.pop("additionalProperties", None)
        if out.get("additionalProperties") in ({}, True):
            del out["additionalProperties"]
            out["x-kubernetes-preserve-unknown-fields"] = True
    if "type" not in out and "enum" in out and all(isinstance(v, str) for v in out["enum"]):
        out["type"] = "string"


def _default_nested_objects(node: dict[str, Any]) -> None:
    """Give optional, non-nullable object properties `default: {}` so the apiserver fills their
    own defaults (structural defaulting applies only where the parent object exists)."""
    required = set(node.get("required", []))
    for name, prop in node.get("properties", {}).items():
        optional = prop.pop(_OPTIONAL, False)
        if optional or name in required or "default" in prop:
            continue
        if prop.get("type") == "object" and "properties" in prop:
            prop["default"] = {}


def check_descriptions(node: dict[str, Any], path: str = "") -> list[str]:
    missing = []
    for name, prop in node.get("properties", {}).items():
        where = f"{path}.{name}"
        if not prop.get("description"):
            missing.append(where)
        missing += check_descriptions(prop, where)
        items = prop.get("items")
        if isinstance(items, dict):
            missing += check_descriptions(items, f"{where}[]")
    return missing


def _strip_defaults(node: Any) -> Any:
    if isinstance(node, dict):
        return {k: _strip_defaults(v) for k, v in node.items() if k != "default"}
    if isinstance(node, list):
        return [_strip_defaults(v) for v in node]
    return node


def build_crd() -> dict[str, Any]:
    return _crd(
        TradingBotSpec,
        TradingBotStatus,
        kind=c.KIND,
        plural=c.PLURAL,
        short_name=c.SHORT_NAME,
        description="A trading bot: one Backtrader strategy on one market, run in one pod.",
        spec_description="Desired state of a trading bot: strategy, market, mode, broker, risk limits, runtime.",
        status_description="Observed state, written by the operator (all but runtime) and the bot runtime (runtime).",
        columns=PRINTER_COLUMNS,
    )


def build_backtest_crd() -> dict[str, Any]:
    return _crd(
        BacktestSpec,
        BacktestStatus,
        kind=c.BACKTEST_KIND,
        plural=c.BACKTEST_PLURAL,
        short_name=c.BACKTEST_SHORT_NAME,
        description="A backtest of a TradingBot's strategy over synthetic or downloaded history, run in one pod.",
        spec_description="What to backtest (a named TradingBot or a bot spec), over which bars, with which fills.",
        status_description="The run's state and its main figures, written by the operator (the whole result is in "
        "the database's backtest_results).",
        columns=BACKTEST_PRINTER_COLUMNS,
    )


def _crd(
    spec_model: type[Any],
    status_model: type[Any],
    *,
    kind: str,
    plural: str,
    short_name: str,
    description: str,
    spec_description: str,
    status_description: str,
    columns: list[dict[str, Any]],
) -> dict[str, Any]:
    spec = structural_schema(spec_model)
    # Status is written by our own code, never defaulted; 1.20 also misreads a default of "" as null.
    status = _strip_defaults(structural_schema(status_model))
    spec["description"] = spec_description
    status["description"] = status_description
    missing = check_descriptions({"properties": {"spec": spec, "status": status}})
    if missing:
        raise SchemaError(f"{kind} fields without a description: " + ", ".join(missing))
    return {
        "apiVersion": "apiextensions.k8s.io/v1",
        "kind": "CustomResourceDefinition",
        "metadata": {"name": f"{plural}.{c.GROUP}", "labels": {c.LABEL_NAME: c.MANAGER}},
        "spec": {
            "group": c.GROUP,
            "scope": "Namespaced",
            "names": {
                "kind": kind,
                "listKind": f"{kind}List",
                "plural": plural,
                "singular": kind.lower(),
                "shortNames": [short_name],
                "categories": [c.CATEGORY],
            },
            "versions": [
                {
                    "name": c.VERSION,
                    "served": True,
                    "storage": True,
                    "subresources": {"status": {}},
                    "additionalPrinterColumns": columns,
                    "schema": {
                        "openAPIV3Schema": {
                            "type": "object",
                            "description": description,
                            "required": ["spec"],
                            "properties": {
                                "apiVersion": {"type": "string", "description": f"API version: {c.API_VERSION}."},
                                "kind": {"type": "string", "description": f"Kind: {kind}."},
                                "metadata": {"type": "object"},
                                "spec": spec,
                                "status": status,
                            },
                        }
                    },
                }
            ],
        },
    }


def render_crd_yaml(crd: dict[str, Any] | None = None) -> str:
    import yaml

    crd = crd or build_crd()
    source = MODEL_FILES[crd["spec"]["names"]["kind"]]
    header = f"# Generated from {source} by `make crds`. Do not edit by hand.\n"
    return header + yaml.safe_dump(crd, sort_keys=False, width=100)
