"""ccxt without its hundred exchanges: a runtime loads only the exchange it talks to.

`import ccxt` runs ccxt/__init__.py, which imports every exchange class: 67 MiB of resident memory against 32 MiB
for ccxt's base and one exchange (measured with ccxt 4.5.90; `make bench-runtime` shows the runtime's total).
`install()` puts in its place a `ccxt` package whose submodules import as usual and whose names resolve on
first use: an exchange id to its class (importing that exchange's module only), an error class from
`ccxt.base.errors`, `exchanges` from the generated list. Called first thing by `bot-runtime`; a process that
already imported ccxt whole keeps it.
"""

from __future__ import annotations

import importlib
import importlib.util
import sys
import types
from typing import Any

from bot_runtime.api.exchanges import CCXT_VERSION, EXCHANGES


class _OneVenueCcxt(types.ModuleType):
    def __getattr__(self, name: str) -> Any:
        if name in EXCHANGES:
            value = getattr(importlib.import_module(f"ccxt.{name}"), name)
        elif name == "exchanges":
            value = sorted(EXCHANGES)
        else:
            errors = importlib.import_module("ccxt.base.errors")
            if not hasattr(errors, name):
                raise AttributeError(f"module 'ccxt' has no attribute {name!r} (loaded one venue at a time)")
            value = getattr(errors, name)
        setattr(self, name, value)
        return value


def install() -> None:
    if "ccxt" in sys.modules:
        return
    spec = importlib.util.find_spec("ccxt")
    if spec is None or spec.submodule_search_locations is None:
        return  # not installed: the import error comes where ccxt is used
    package = _OneVenueCcxt("ccxt", "CCXT: CryptoCurrency eXchange Trading Library (one venue at a time)")
    package.__path__ = list(spec.submodule_search_locations)
    package.__file__ = spec.origin
    package.__spec__ = spec
    setattr(package, "__version__", CCXT_VERSION)  # noqa: B010  (a module attribute mypy cannot see)
    sys.modules["ccxt"] = package
