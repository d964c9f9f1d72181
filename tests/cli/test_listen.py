"""``tb-dlms listen`` as a user runs it: a real process, real sockets, notifications Gurux builds
(plain and ciphered), one JSON line each; keys never printed."""

from __future__ import annotations

import datetime
import json
import os
import socket
import subprocess
import sys
import time

import pytest
from tb_dlms.testing.ports import free_port_range

pytest.importorskip("gurux_dlms")
from gurux_dlms import GXByteBuffer, GXDLMSNotify  # noqa: E402
from gurux_dlms.enums import DataType as GxType  # noqa: E402
from gurux_dlms.enums import InterfaceType, Security  # noqa: E402
from gurux_dlms.GXCiphering import GXCiphering  # noqa: E402

TITLE = bytes.fromhex("5442440000000011")
KEY, AUTH = bytes(range(16)), bytes(range(0xD0, 0xE0))


def message(counter: int, security: Security | None) -> bytes:
    notify = GXDLMSNotify(True, 1, 1, InterfaceType.WRAPPER)
    if security is not None:
        cipher = GXCiphering(TITLE)
        cipher.security = security
        cipher.blockCipherKey, cipher.authenticationKey = KEY, AUTH
        cipher.invocationCounter = counter
        notify.settings.cipher = cipher
    body = GXByteBuffer()
    body.setUInt8(GxType.STRUCTURE)
    body.setUInt8(2)
    body.setUInt8(GxType.OCTET_STRING)
    body.setUInt8(5)
    body.set(b"SER-1")
    body.setUInt8(GxType.UINT32)
    body.setUInt32(counter)
    (msg,) = notify.generateDataNotificationMessages(
        datetime.datetime(2026, 12, 4, 10, 0, 0), body)
    return bytes(msg)


def test_listen_prints_each_notification_and_refuses_a_replay() -> None:
    port = free_port_range(1)
    env = dict(os.environ, TB_DLMS_BLOCK_KEY=KEY.hex(), TB_DLMS_AUTH_KEY=AUTH.hex())
    proc = subprocess.Popen(
        [sys.executable, "-m", "tb_dlms.cli", "listen", "--port", str(port), "--host",
         "127.0.0.1", "--count", "4", "--timeout", "20"],
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env)
    try:
        deadline = time.monotonic() + 10
        while True:
            try:
                sock = socket.create_connection(("127.0.0.1", port), timeout=1)
                break
            except OSError:
                assert time.monotonic() < deadline, "tb-dlms listen did not start"
                time.sleep(0.1)
        with sock:
            sock.sendall(message(0, None))
            ciphered = message(7, Security.AUTHENTICATION_ENCRYPTION)
            sock.sendall(ciphered + ciphered + message(8, Security.ENCRYPTION))
        out, err = proc.communicate(timeout=20)
    finally:
        proc.kill()
    assert proc.returncode == 0, err
    lines = [json.loads(line) for line in out.splitlines()]
    assert [line.get("refused") for line in lines] == [None, None, "replay", None]
    assert lines[0]["body"] == ["SER-1", 0]
    assert lines[0]["system_title"] is None and lines[0]["protection"] == "none"
    assert lines[1]["system_title"] == TITLE.hex().upper()
    assert (lines[1]["invocation_counter"], lines[1]["protection"]) == (7, "auth-enc")
    assert lines[1]["date_time"].startswith("2026-12-04T10:00:00")
    assert lines[3]["protection"] == "enc" and lines[3]["body"][1] == 8
    assert KEY.hex() not in out.lower() + err.lower()
