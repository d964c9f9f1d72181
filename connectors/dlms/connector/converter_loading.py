"""The uplink converter the connector uses: ours, or a class that dlms.json names.

The gateway's connectors take their converter by class name and find it with the gateway's
``TBModuleLoader`` in ``extensions/<type>/``. ``"converter": "MyConverter"`` at the top of
dlms.json does the same here, so a user's subclass of ``DlmsUplinkConverter`` dropped beside the
loader files of ``tb-dlms install`` is found the way the gateway finds every converter.

Ours lives in the top-level ``converters/`` folder (``tb_dlms.converters``), beside the connector
layer rather than inside it, and is imported by name relative to this package: the connector's
code depends on the ``UplinkConverter`` interface below, not on a converter module.
"""

from __future__ import annotations

import importlib
import logging
from collections.abc import Iterable, Mapping, Sequence
from typing import Any, Protocol, cast

__all__ = ["DEFAULT_CONVERTER", "UplinkConverter", "converter_class"]

DEFAULT_CONVERTER = "DlmsUplinkConverter"


class UplinkConverter(Protocol):
    """What the connector calls on its converter (``converters/uplink.py`` documents each)."""

    def __init__(self, config: Mapping[str, Any] | None = None,
                 logger: logging.Logger | None = None) -> None: ...

    def convert(self, config: Any, data: Sequence[Any]) -> Any: ...

    def attributes(self, meter: Any, values: Iterable[tuple[Any, Any]]) -> Any: ...

    def rows(self, meter: Any, rows: Iterable[tuple[int, Mapping[str, Any]]]) -> Any: ...

    def status(self, meter: Any, telemetry: Mapping[str, Any] | None = None,
               attributes: Mapping[str, Any] | None = None, ts: int | None = None) -> Any: ...

    def pushed(self, meter: Any, ts: int, values: Iterable[tuple[Any, Any]],
               status: Mapping[str, Any] | None = None) -> Any: ...


def converter_class(connector_type: str, name: str) -> type[UplinkConverter] | None:
    """The converter class called ``name``: ours, or one the gateway's loader finds in its
    ``extensions/<connector_type>/`` folder; None when there is no such class."""
    if name == DEFAULT_CONVERTER:
        module = importlib.import_module("..converters.uplink", __package__)
        return cast("type[UplinkConverter]", module.DlmsUplinkConverter)
    from thingsboard_gateway.tb_utility.tb_loader import TBModuleLoader

    # Not found, the loader returns its list of import errors, not None.
    found = TBModuleLoader.import_module(connector_type, name)
    return cast("type[UplinkConverter]", found) if isinstance(found, type) else None
