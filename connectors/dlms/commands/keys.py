"""Key options of the commands (``tb-dlms read``, ``tb-dlms decode``): hex on the command line
or in an environment variable (command lines show up in process lists and shell histories).
An error names the option or the variable, never the value."""

from __future__ import annotations

import os

__all__ = ["AUTH_KEY_ENV", "BLOCK_KEY_ENV", "hex_option", "key_option"]

BLOCK_KEY_ENV = "TB_DLMS_BLOCK_KEY"
AUTH_KEY_ENV = "TB_DLMS_AUTH_KEY"


def hex_option(value: str, what: str, octets: int) -> bytes:
    """``value`` as ``octets`` bytes (spaces and colons allowed); ValueError naming ``what``."""
    try:
        data = bytes.fromhex(value.replace(" ", "").replace(":", ""))
    except ValueError:
        raise ValueError(f"{what}: not hexadecimal") from None
    if len(data) != octets:
        raise ValueError(f"{what}: must be {2 * octets} hex digits")
    return data


def key_option(option: str | None, name: str, env: str) -> bytes | None:
    """A 16-octet key from the option, else from ``env``; None when neither is given."""
    if option is not None:
        return hex_option(option, name, 16)
    from_env = os.environ.get(env)
    return hex_option(from_env, env, 16) if from_env else None
