"""Salesforce through simple-salesforce: login, incremental pulls, collection upserts.

The names below load their module when first used: the config reads
:mod:`connectors.salesforce.settings` for every CRM, and a HubSpot run never imports
simple-salesforce (nor its zeep and lxml) or the rest of this connector.

simple-salesforce's ``api`` module imports its Metadata API client (``metadata``, built on
zeep, lxml and httpx) whatever is called; this connector never calls the Metadata API.
:class:`_DeferredMetadataApi` loads that module when first used instead (``sf.mdapi``,
or any name read from it), so a Salesforce run imports none of that.
"""

from __future__ import annotations

import importlib
import importlib.abc
import importlib.machinery
import sys
import types
from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

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


class _DeferredMetadataApi(importlib.abc.MetaPathFinder, importlib.abc.Loader):
    """Imports ``simple_salesforce.metadata`` as a module that runs its own code on first
    use: reading any name of it, or calling ``SfdcMetadataApi`` (which ``api`` imports by
    name at its import). It is then the real module, the same object (``sys.modules``
    and the package's attribute), and ``api.SfdcMetadataApi`` is the real class."""

    NAME = "simple_salesforce.metadata"

    def find_spec(
        self, fullname: str, path: Sequence[str] | None, target: types.ModuleType | None = None
    ) -> importlib.machinery.ModuleSpec | None:
        """The real module's spec with this loader, for that one module only."""
        if fullname != self.NAME:
            return None
        spec = importlib.machinery.PathFinder.find_spec(fullname, path)
        if spec is None or spec.loader is None:
            return None  # not where simple-salesforce 1.x has it: the ordinary import
        real = spec.loader
        spec.loader = self
        spec.loader_state = real
        return spec

    def create_module(self, spec: importlib.machinery.ModuleSpec) -> types.ModuleType | None:
        """The default module."""
        return None

    def exec_module(self, module: types.ModuleType) -> None:
        """Give the module the name ``api`` imports and a ``__getattr__`` that loads it."""

        def load() -> types.ModuleType:
            if module.__dict__.pop("__getattr__", None) is not None:
                spec = module.__spec__
                assert spec is not None
                spec.loader = spec.loader_state
                module.__loader__ = spec.loader
                try:
                    spec.loader.exec_module(module)
                except BaseException:
                    module.__getattr__ = getattr_  # type: ignore[method-assign]
                    spec.loader = self
                    raise
                api = sys.modules.get("simple_salesforce.api")
                if api is not None and getattr(api, "SfdcMetadataApi", None) is deferred:
                    api.SfdcMetadataApi = module.SfdcMetadataApi  # type: ignore[attr-defined]
            return module

        def getattr_(name: str) -> Any:
            if name.startswith("__"):
                raise AttributeError(name)  # import machinery and tools probing the module
            return getattr(load(), name)

        def deferred(*args: Any, **kwargs: Any) -> Any:
            return load().SfdcMetadataApi(*args, **kwargs)

        module.SfdcMetadataApi = deferred  # type: ignore[attr-defined]
        module.__getattr__ = getattr_  # type: ignore[method-assign]


if not any(isinstance(f, _DeferredMetadataApi) for f in sys.meta_path):
    sys.meta_path.insert(0, _DeferredMetadataApi())
