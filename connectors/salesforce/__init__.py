"""Salesforce through simple-salesforce: login, incremental pulls, collection upserts.

The names below load their module when first used: the config reads
:mod:`connectors.salesforce.settings` for every CRM, and a HubSpot run never imports
simple-salesforce (nor its zeep and lxml) or the rest of this connector.

simple-salesforce's ``api`` module imports its Metadata API client (``metadata``, built on
zeep, lxml and httpx) whatever is called; this connector never calls the Metadata API.
:class:`_Deferred` loads that module when first used instead (``sf.mdapi``, or any name
read from it), and PyJWT (with cryptography) likewise, which its ``login`` imports for
the JWT flow only: a Salesforce run with another auth imports none of that.
"""

from __future__ import annotations

import importlib
import importlib.abc
import importlib.machinery
import sys
import threading
import types
from collections.abc import Mapping, Sequence
from typing import TYPE_CHECKING, Any, Final

if TYPE_CHECKING:
    from connectors.salesforce.client import SalesforceClient
    from connectors.salesforce.connector import AccountFields, SalesforceConnector, SurveySource
    from connectors.salesforce.errors import ApiUsage
    from connectors.salesforce.pull import ModstampCursor
    from connectors.salesforce.settings import SalesforceSettings

__all__ = [
    "AccountFields",
    "ApiUsage",
    "ModstampCursor",
    "SalesforceClient",
    "SalesforceConnector",
    "SalesforceSettings",
    "SurveySource",
]

_MODULES = {
    "AccountFields": "connectors.salesforce.connector",
    "ApiUsage": "connectors.salesforce.errors",
    "ModstampCursor": "connectors.salesforce.pull",
    "SalesforceClient": "connectors.salesforce.client",
    "SalesforceConnector": "connectors.salesforce.connector",
    "SalesforceSettings": "connectors.salesforce.settings",
    "SurveySource": "connectors.salesforce.connector",
}


def __getattr__(name: str) -> Any:
    """A public name, its module imported on first use."""
    module = _MODULES.get(name)
    if module is None:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    return getattr(importlib.import_module(module), name)


class _Deferred(importlib.abc.MetaPathFinder, importlib.abc.Loader):
    """Imports the modules in :attr:`NAMES` as modules that run their own code on first
    use: reading any name of them, or calling a name another module imports from them at
    its import (``api`` imports ``SfdcMetadataApi``). Each is then the real module, the
    same object (``sys.modules`` and its package's attribute), and such a name bound
    elsewhere the real one. Submodules import as ever (``import jwt.algorithms``)."""

    #: Module -> the names others import from it at their import, and who.
    NAMES: Final[Mapping[str, Mapping[str, str]]] = {
        # simple_salesforce.api imports it whatever is called; this connector never
        # calls the Metadata API (zeep, lxml, httpx).
        "simple_salesforce.metadata": {"SfdcMetadataApi": "simple_salesforce.api"},
        # simple_salesforce.login imports PyJWT (and with it cryptography) for its JWT
        # login; auth.jwt_assertion is our one use.
        "jwt": {},
    }

    def find_spec(
        self, fullname: str, path: Sequence[str] | None, target: types.ModuleType | None = None
    ) -> importlib.machinery.ModuleSpec | None:
        """The real module's spec with this loader, for the modules in NAMES only."""
        if fullname not in self.NAMES:
            return None
        spec = importlib.machinery.PathFinder.find_spec(fullname, path)
        if spec is None or not isinstance(spec.loader, importlib.machinery.SourceFileLoader):
            return None  # not a plain source module where we expect it: the ordinary import
        spec.loader_state = spec.loader
        spec.loader = self
        return spec

    def create_module(self, spec: importlib.machinery.ModuleSpec) -> types.ModuleType | None:
        """The default module."""
        return None

    def exec_module(self, module: types.ModuleType) -> None:
        """Give the module its names imported elsewhere and a ``__getattr__`` that loads it."""
        spec = module.__spec__
        assert spec is not None
        real: importlib.machinery.SourceFileLoader = spec.loader_state
        stand_ins: dict[str, Any] = {}
        lock = threading.RLock()  # a second thread waits for the first one's load
        loading: list[bool] = []  # [True] while this module's code runs

        def load() -> types.ModuleType:
            with lock:
                if module.__dict__.get("__getattr__") is not getattr_ or loading:
                    return module  # loaded, or loading (this thread: a name it reads of itself)
                loading.append(True)
                spec.loader = module.__loader__ = real
                try:
                    real.exec_module(module)
                except BaseException:
                    spec.loader = module.__loader__ = self
                    raise
                finally:
                    loading.clear()
                if module.__dict__.get("__getattr__") is getattr_:
                    del module.__getattr__
                for name, importer in self.NAMES[module.__name__].items():
                    other = sys.modules.get(importer)
                    if other is not None and getattr(other, name, None) is stand_ins[name]:
                        setattr(other, name, getattr(module, name))
            return module

        def getattr_(name: str) -> Any:
            if name.startswith("__"):
                raise AttributeError(name)  # import machinery and tools probing the module
            load()
            try:
                return module.__dict__[name]
            except KeyError:
                raise AttributeError(
                    f"module {module.__name__!r} has no attribute {name!r}"
                ) from None

        def stand_in(name: str) -> Any:
            def call(*args: Any, **kwargs: Any) -> Any:
                return getattr(load(), name)(*args, **kwargs)

            return call

        for name in self.NAMES[module.__name__]:
            stand_ins[name] = stand_in(name)
            setattr(module, name, stand_ins[name])
        module.__getattr__ = getattr_  # type: ignore[method-assign]


if not any(isinstance(f, _Deferred) for f in sys.meta_path):
    sys.meta_path.insert(0, _Deferred())
