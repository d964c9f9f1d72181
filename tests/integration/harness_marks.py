"""Skip markers of the integration tests (what each needs installed)."""

from __future__ import annotations

import importlib.util

import pytest
from tb_dlms.sandbox.broker import find_mosquitto

HAVE_GATEWAY = importlib.util.find_spec("thingsboard_gateway") is not None
HAVE_PAHO = importlib.util.find_spec("paho") is not None


def connector_available() -> bool:
    """True once the gateway connector and its converter have landed and import."""
    try:
        import tb_dlms.connector.dlms_connector
        import tb_dlms.converters.uplink  # noqa: F401
    except ImportError:
        return False
    return True


needs_gateway = pytest.mark.skipif(
    not (HAVE_GATEWAY and HAVE_PAHO), reason="needs the gateway extra (pip install '.[gateway]')"
)
needs_broker = pytest.mark.skipif(find_mosquitto() is None, reason="needs mosquitto")
needs_connector = pytest.mark.skipif(
    not connector_available(), reason="tb_dlms.connector.dlms_connector not available yet"
)
