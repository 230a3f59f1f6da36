"""The TradingBot API: names, labels and the pydantic models that define the CRD."""

from bot_runtime.api.constants import API_VERSION, GROUP, KIND, PLURAL, VERSION

__all__ = ["API_VERSION", "GROUP", "KIND", "PLURAL", "VERSION"]
