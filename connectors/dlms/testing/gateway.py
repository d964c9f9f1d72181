"""The demo's real gateway process (:mod:`tb_dlms.sandbox.gateway`), under the harness's name."""

from ..sandbox.gateway import (
    DEAD_PROXY,
    GatewayError,
    GatewayProcess,
    gateway_json,
    gateway_package_dir,
    make_gateway_view,
    write_gateway_config,
)

__all__ = [
    "DEAD_PROXY",
    "GatewayError",
    "GatewayProcess",
    "gateway_json",
    "gateway_package_dir",
    "make_gateway_view",
    "write_gateway_config",
]
